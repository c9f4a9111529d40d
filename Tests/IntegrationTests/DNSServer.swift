import Foundation
import XCTest

/// A real DNS server, Debian's dnsmasq (scripts/setup installs it), answering on port 53 of its
/// own network namespace's loopback (127.0.0.1 and ::1) from records the test gives, with no
/// upstream: `web.test` has A 10.1.2.3 and AAAA fd00::3, anything under `nx.test` is NXDOMAIN.
/// The namespace's `/etc/resolv.conf` (which `ip netns exec` mounts over the real one, in a mount
/// namespace of the command's own) points the C library's resolver at it.
final class DNSServer {
    let namespace: NetworkNamespace
    let process = Process()
    private let configuration: URL

    static let name = "web.test"
    static let address = "10.1.2.3"
    static let address6 = "fd00::3"

    init() throws {
        let dnsmasq = try NetworkNamespace.tool("dnsmasq")
        namespace = try NetworkNamespace()
        configuration = URL(fileURLWithPath: "/etc/netns/\(namespace.name)")
        try FileManager.default.createDirectory(at: configuration, withIntermediateDirectories: true)
        try "nameserver 127.0.0.1\noptions attempts:1 timeout:5\n"
            .write(to: configuration.appendingPathComponent("resolv.conf"), atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: try NetworkNamespace.ip())
        process.arguments = [
            "netns", "exec", namespace.name, dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
            "--listen-address=127.0.0.1", "--listen-address=::1", "--port=53", "--pid-file=", "--user=root",
            "--host-record=\(Self.name),\(Self.address),\(Self.address6)", "--address=/nx.test/",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready when it answers.
        let deadline = Date().addingTimeInterval(20)
        while (try? dig(["@127.0.0.1", Self.name, "A", "+short"]))?.output != Self.address + "\n" {
            guard Date() < deadline, process.isRunning else {
                stop()
                throw TrafficError.timeout(["dnsmasq", "not answering in \(namespace.name)"])
            }
            usleep(50_000)
        }
    }

    /// dnsmasq's pid (`ip netns exec` execs it).
    var pid: Int32 { process.processIdentifier }

    /// Runs `tool ARGUMENTS` in the namespace to its end (`ip netns exec` execs it, so the pid is
    /// the tool's): its pid, status and standard output.
    func run(_ tool: String, _ arguments: [String]) throws -> (pid: Int32, status: Int32, output: String) {
        try spawnToEnd([try NetworkNamespace.ip(), "netns", "exec", namespace.name, try NetworkNamespace.tool(tool)] + arguments)
    }

    /// `dig ARGUMENTS` in the namespace, one try, two seconds at most.
    func dig(_ arguments: [String]) throws -> (pid: Int32, status: Int32, output: String) {
        try run("dig", arguments + ["+tries=1", "+time=2"])
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: configuration)
    }

    deinit { stop() }
}
