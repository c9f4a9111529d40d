import Foundation
import XCTest

/// A real DNS server, Debian's dnsmasq (scripts/setup installs it), answering on port 53 of its
/// own network namespace's loopback (127.0.0.1 and ::1) from records the test gives, with no
/// upstream: `web.test` has A 10.1.2.3 and AAAA fd00::3, anything under `nx.test` is NXDOMAIN.
/// ``resolve(_:_:)`` runs a client whose `/etc/resolv.conf` points the C library's resolver at it:
/// a file of the test's own, mounted over the real one in a mount namespace of the client's own
/// (so it works on a read-only root too, as in the kernel matrix's guests).
final class DNSServer {
    let namespace: NetworkNamespace
    /// dnsmasq's pid (`ip netns exec` execs it), spawned directly (see `spawn`).
    let pid: pid_t
    private var running = true
    private let resolvConf: URL

    static let name = "web.test"
    static let address = "10.1.2.3"
    static let address6 = "fd00::3"

    init() throws {
        let dnsmasq = try NetworkNamespace.tool("dnsmasq")
        namespace = try NetworkNamespace()
        resolvConf = FileManager.default.temporaryDirectory.appendingPathComponent("netevents-resolv-\(namespace.name).conf")
        try "nameserver 127.0.0.1\noptions attempts:1 timeout:5\n".write(to: resolvConf, atomically: true, encoding: .utf8)
        pid = try spawn([
            try NetworkNamespace.ip(), "netns", "exec", namespace.name, dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts",
            "--bind-interfaces", "--listen-address=127.0.0.1", "--listen-address=::1", "--port=53", "--pid-file=", "--user=root",
            "--host-record=\(Self.name),\(Self.address),\(Self.address6)", "--address=/nx.test/",
        ])
        // Ready when it answers.
        let deadline = Date().addingTimeInterval(20)
        while (try? dig(["@127.0.0.1", Self.name, "A", "+short"]))?.output != Self.address + "\n" {
            guard Date() < deadline, kill(pid, 0) == 0 else {
                stop()
                throw TrafficError.timeout(["dnsmasq", "not answering in \(namespace.name)"])
            }
            usleep(50_000)
        }
    }

    /// Runs `tool ARGUMENTS` in the namespace to its end (`ip netns exec` execs it, so the pid is
    /// the tool's): its pid, status and standard output.
    func run(_ tool: String, _ arguments: [String]) throws -> (pid: Int32, status: Int32, output: String) {
        try spawnToEnd([try NetworkNamespace.ip(), "netns", "exec", namespace.name, try NetworkNamespace.tool(tool)] + arguments)
    }

    /// Runs `tool ARGUMENTS` in the namespace with the resolver pointed at the server (`unshare`
    /// and `sh` exec in turn, so the pid is the tool's).
    func resolve(_ tool: String, _ arguments: [String]) throws -> (pid: Int32, status: Int32, output: String) {
        try spawnToEnd(
            [try NetworkNamespace.ip(), "netns", "exec", namespace.name, try NetworkNamespace.tool("unshare"), "--mount", "--propagation", "private",
             "/bin/sh", "-c", #"mount --bind "$0" /etc/resolv.conf && exec "$@""#, resolvConf.path, try NetworkNamespace.tool(tool)] + arguments)
    }

    /// `dig ARGUMENTS` in the namespace, one try, two seconds at most.
    func dig(_ arguments: [String]) throws -> (pid: Int32, status: Int32, output: String) {
        try run("dig", arguments + ["+tries=1", "+time=2"])
    }

    func stop() {
        defer { try? FileManager.default.removeItem(at: resolvConf) }
        guard running else { return }
        running = false
        kill(pid, SIGTERM)
        reap(pid)
    }

    deinit { stop() }
}
