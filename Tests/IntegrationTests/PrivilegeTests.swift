import BCCRuntime
import Foundation
import Glibc
import XCTest

/// The tools run with exactly the capabilities the README names, as a user other than root
/// (65534, nobody), and a missing capability is named as such, with the fix, before anything is
/// compiled: never "failed to compile" or "tracefs is not mounted".
final class PrivilegeTests: XCTestCase {
    /// The README's set for every tool; `tcp-top`, `netevents serve` and `tcp-events --interval`
    /// add `sys_ptrace`.
    static let documented = ["bpf", "perfmon", "net_admin", "dac_read_search"]

    /// `setpriv` (util-linux) running the rest as `uid` (nil: stay root) with exactly `capabilities`.
    func setpriv(_ capabilities: [String], uid: Int? = 65534) throws -> [String] {
        guard access("/usr/bin/setpriv", X_OK) == 0 else { throw XCTSkip("no /usr/bin/setpriv (util-linux)") }
        let list = (["-all"] + capabilities.map { "+" + $0 }).joined(separator: ",")
        let user = uid.map { ["--reuid=\($0)", "--regid=\($0)", "--clear-groups"] } ?? []
        // As root, the bounding set is what limits the capabilities an exec gets.
        let bounding = uid == nil ? ["--bounding-set=\(list)"] : []
        return ["/usr/bin/setpriv"] + user + ["--inh-caps=\(list)", "--ambient-caps=\(list)"] + bounding
    }

    /// A fresh directory (mode 0755) holding copies of the tools this test runs, which user 65534
    /// reaches wherever the checkout lives (a build under /root is closed to it); removed after.
    private var staging: String?

    override func tearDown() {
        if let staging { try? FileManager.default.removeItem(atPath: staging) }
        staging = nil
        super.tearDown()
    }

    /// Whether users other than the owner reach `path`: every directory on the way searchable by
    /// them, and `path` itself granting them `mode` (`S_IXOTH` for a directory, `S_IROTH` for a
    /// library, both for an executable).
    static func reachableByOthers(_ path: String, mode: mode_t) -> Bool {
        var prefix = ""
        var status = stat()
        for component in path.split(separator: "/").dropLast() {
            prefix += "/" + component
            guard stat(prefix, &status) == 0, status.st_mode & S_IXOTH != 0 else { return false }
        }
        return stat(path, &status) == 0 && status.st_mode & mode == mode
    }

    /// The staging directory, made on first use: under /var/tmp, else the temporary directory,
    /// whichever others can reach and allows executables (not mounted noexec).
    func stagingDirectory() throws -> String {
        if let staging { return staging }
        var tried: [String] = []
        for parent in ["/var/tmp", NSTemporaryDirectory(), "/tmp"] {
            let parent = parent.hasSuffix("/") && parent.count > 1 ? String(parent.dropLast()) : parent
            var volume = statvfs()
            // ST_NOEXEC (8), which Swift's Glibc module does not import.
            guard Self.reachableByOthers(parent, mode: S_IXOTH), statvfs(parent, &volume) == 0, volume.f_flag & 8 == 0 else {
                tried.append("\(parent) (not searchable by others, or noexec)")
                continue
            }
            var template = Array((parent + "/netevents-privilege-XXXXXX").utf8CString)
            guard let made = mkdtemp(&template) else {
                tried.append("\(parent) (mkdtemp: \(String(cString: strerror(errno))))")
                continue
            }
            let directory = String(cString: made)
            guard chmod(directory, 0o755) == 0 else {
                rmdir(directory)
                tried.append("\(parent) (chmod: \(String(cString: strerror(errno))))")
                continue
            }
            staging = directory
            return directory
        }
        throw cannotRun("no directory for the tools that user 65534 can reach: tried \(tried.joined(separator: ", "))")
    }

    /// The path of a copy of `tool` that user 65534 can run: the built executable copied into the
    /// staging directory with mode 0755, with any shared library it loads from a place closed to
    /// others (next to it through its `$ORIGIN` run path, or a toolchain under /root) copied
    /// beside it, where `$ORIGIN` finds it.
    func toolForOthers(_ tool: String) throws -> String {
        let built = try builtExecutable(tool).standardizedFileURL.path
        let directory = try stagingDirectory()
        let copy = directory + "/" + tool
        guard access(copy, F_OK) != 0 else { return copy }
        var files = [built]
        // ldd: "libswiftCore.so => /PATH/libswiftCore.so (0x...)". Libraries others can read
        // stay where they are.
        if let ldd = runToEnd("/usr/bin/ldd", [built]), ldd.status == 0 {
            for line in String(decoding: ldd.output, as: UTF8.self).split(separator: "\n") {
                let words = line.split(separator: " ")
                guard let arrow = words.firstIndex(of: "=>"), arrow + 1 < words.count, words[arrow + 1].hasPrefix("/") else { continue }
                let library = String(words[arrow + 1])
                if !Self.reachableByOthers(library, mode: S_IROTH) { files.append(library) }
            }
        }
        for file in files {
            let target = directory + "/" + (file == built ? tool : URL(fileURLWithPath: file).lastPathComponent)
            if access(target, F_OK) == 0 { continue }
            do {
                // The file itself, not a symbolic link to where others cannot reach.
                try FileManager.default.copyItem(atPath: URL(fileURLWithPath: file).resolvingSymlinksInPath().path, toPath: target)
            } catch {
                throw cannotRun("cannot copy \(file) to \(directory) for user 65534: \(error)")
            }
            guard chmod(target, 0o755) == 0 else {
                throw cannotRun("cannot make \(target) readable by user 65534: \(String(cString: strerror(errno)))")
            }
        }
        guard Self.reachableByOthers(copy, mode: S_IROTH | S_IXOTH) else {
            throw cannotRun("\(copy) is not reachable by user 65534")
        }
        return copy
    }

    /// `tcp-events` as user 65534 with exactly CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and
    /// CAP_DAC_READ_SEARCH traces a loopback connection field by field (socket ids included:
    /// the cgroup programs ran), and ends at SIGINT with status 0.
    func testTheDocumentedCapabilitiesAloneTraceALoopbackConnection() throws {
        try requireBPF()
        let port = freePort()
        let tool = try ToolProcess(try setpriv(Self.documented) + [try toolForOthers("tcp-events"), "--json", "--port", "\(port)"], keepOutput: true)
        XCTAssertNotNil(tool.errors.first(timeout: 60) { $0.hasPrefix("Tracing") }, "no Tracing line: \(tool.errors.events)")
        let status = try String(contentsOfFile: "/proc/\(tool.pid)/status", encoding: .utf8)
        XCTAssertEqual(CapabilitySet.effective(inStatus: status), CapabilitySet([.bpf, .perfmon, .netAdmin, .dacReadSearch]), status)
        XCTAssertTrue(status.split(separator: "\n").contains { $0.hasPrefix("Uid:") && $0.split(separator: "\t").dropFirst().allSatisfy { $0 == "65534" } }, status)

        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "5", "--send", "7"])
        _ = try server.nextLine()
        let client = try TrafficProcess(["tcp-client", "--port", "\(port)", "--send", "5", "--receive", "7"])
        client.waitForSuccess()
        server.waitForSuccess()
        let closes = tool.output.wait(timeout: 20) { $0.filter { $0.contains(#""event":"close""#) }.count >= 2 }
            .filter { $0.contains(#""event":"close""#) }
        XCTAssertEqual(closes.count, 2, "\(tool.output.events)")
        for line in closes {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
            let isServer = (object["sport"] as? NSNumber)?.intValue == Int(port)
            // tcp_info's counts: the data, plus the FIN received, plus (client) the SYN and FIN sent.
            XCTAssertEqual((object["pid"] as? NSNumber)?.int32Value, isServer ? server.pid : client.pid, line)
            XCTAssertEqual((object["tx_bytes"] as? NSNumber)?.intValue, isServer ? 8 : 7, line)
            XCTAssertEqual((object["rx_bytes"] as? NSNumber)?.intValue, isServer ? 6 : 8, line)
            XCTAssertNotNil(object["socket_id"] as? NSNumber, "no socket id: the cgroup programs did not run: \(line)")
        }
        tool.signal(SIGINT)
        XCTAssertEqual(tool.waitForExit(seconds: 30), 0, "\(tool.errors.events)")
        XCTAssertNotNil(tool.errors.first(timeout: 5) { $0.hasPrefix("4 events printed; lost 0") }, "\(tool.errors.events)")
    }

    /// `tcp-top` lists the connections open at its start, whose owners it finds in other users'
    /// `/proc/PID/fd`: with the README's set and `sys_ptrace` it runs as user 65534.
    func testTCPTopRunsWithTheDocumentedSetAndSysPtrace() throws {
        try requireBPF()
        let tool = try ToolProcess(try setpriv(Self.documented + ["sys_ptrace"]) + [try toolForOthers("tcp-top"), "--json"])
        XCTAssertNotNil(tool.errors.first(timeout: 60) { $0.hasPrefix("Tracing") }, "no Tracing line: \(tool.errors.events)")
        tool.signal(SIGTERM)
        XCTAssertEqual(tool.waitForExit(seconds: 30), 0, "\(tool.errors.events)")
    }

    /// With one capability short, each tool stops before compiling with status 1 and an error that
    /// names what is missing, what it is for and the whole set to run with.
    func testAMissingCapabilityIsNamedBeforeAnythingIsCompiled() throws {
        try requireBPF()
        let fullSet = "setpriv --inh-caps=+bpf,+perfmon,+net_admin,+dac_read_search --ambient-caps=+bpf,+perfmon,+net_admin,+dac_read_search"
        let cases: [(capabilities: [String], uid: Int?, tool: String, arguments: [String], expected: [String], absent: [String])] = [
            (["bpf", "perfmon", "dac_read_search"], 65534, "tcp-events", [], ["needs CAP_NET_ADMIN (cgroup socket programs)", fullSet], ["CAP_DAC_READ_SEARCH ("]),
            (["bpf", "perfmon", "net_admin"], 65534, "udp-events", [], ["needs CAP_DAC_READ_SEARCH (reading tracefs", fullSet], ["CAP_NET_ADMIN ("]),
            // What the README used to promise.
            (["bpf", "perfmon"], 65534, "dns-events", [], ["CAP_NET_ADMIN (cgroup socket programs)", "CAP_DAC_READ_SEARCH (reading tracefs", fullSet], []),
            // Root whose capabilities were taken away: root's uid alone does not load programs.
            ([], nil, "tcp-events", [], ["needs CAP_BPF (eBPF maps and programs), CAP_PERFMON", "CAP_NET_ADMIN (cgroup socket programs)", "Run it as root"], ["CAP_DAC_READ_SEARCH ("]),
            (Self.documented, 65534, "tcp-events", ["--interval", "1"], ["needs CAP_SYS_PTRACE (owners of connections open before the start", "+sys_ptrace"], []),
            (Self.documented, 65534, "tcp-top", ["--json"], ["needs CAP_SYS_PTRACE", "+sys_ptrace"], []),
        ]
        for item in cases {
            let tool = try ToolProcess(try setpriv(item.capabilities, uid: item.uid) + [try toolForOthers(item.tool)] + item.arguments)
            let status = tool.waitForExit(seconds: 30)
            let text = tool.errors.wait(timeout: 5) { $0.contains { $0.contains("needs") } }.joined(separator: "\n")
            let label = "\(item.tool) \(item.arguments) with \(item.capabilities) as \(item.uid.map(String.init) ?? "root")"
            XCTAssertEqual(status.map { $0 >> 8 }, 1, "\(label): wait status \(String(describing: status)): \(text)")
            for fragment in item.expected { XCTAssertTrue(text.contains(fragment), "\(label): no '\(fragment)' in: \(text)") }
            for fragment in item.absent { XCTAssertFalse(text.contains(fragment), "\(label): '\(fragment)' in: \(text)") }
            for wrong in ["failed to compile", "not mounted", "Operation not permitted"] {
                XCTAssertFalse(text.contains(wrong), "\(label): '\(wrong)' in: \(text)")
            }
        }
    }
}
