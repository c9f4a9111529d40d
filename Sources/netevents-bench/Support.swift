import Foundation
import Glibc
import Synchronization
import TCPEvent

// Clocks, CPU time, memory figures, child processes and small statistics for the benchmarks.

/// Monotonic time and process CPU time.
enum Clock {
    /// `CLOCK_MONOTONIC` in seconds.
    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// User + system CPU time of this process (every thread), in seconds: `getrusage(RUSAGE_SELF)`.
    static func processCPU() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    private static func seconds(_ value: timeval) -> Double { Double(value.tv_sec) + Double(value.tv_usec) / 1e6 }

    /// CPU time of the calling thread in seconds: total (`CLOCK_THREAD_CPUTIME_ID`, to the
    /// nanosecond), and its user and system parts (`getrusage(RUSAGE_THREAD)`, which splits the
    /// total by the ticks that fell in each: only a sum over many calls splits it well).
    static func threadCPU() -> (total: Double, user: Double, system: Double) {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        var usage = rusage()
        getrusage(__rusage_who_t(1), &usage)  // RUSAGE_THREAD (glibc declares it only with _GNU_SOURCE)
        return (Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9, seconds(usage.ru_utime), seconds(usage.ru_stime))
    }

    /// CPU time of another process (every thread, those that ended included), in seconds, to the
    /// nanosecond: its CPU-time clock (`clock_getcpuclockid` + `clock_gettime`), not the 10 ms
    /// ticks of `/proc/PID/stat`, which it falls back to. Nil when the process is gone.
    static func processCPU(pid: pid_t) -> Double? {
        var clock = clockid_t()
        var spec = timespec()
        if clock_getcpuclockid(pid, &clock) == 0, clock_gettime(clock, &spec) == 0 {
            return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
        }
        return processCPUTicks(pid: pid)
    }

    /// User + system CPU time of another process from `/proc/PID/stat` (fields 14 and 15, in clock
    /// ticks), in seconds; nil when the process is gone.
    static func processCPUTicks(pid: pid_t) -> Double? {
        guard let text = readProcFile("/proc/\(pid)/stat"),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm) ": field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func sleep(_ seconds: Double) { usleep(UInt32(max(0, seconds) * 1e6)) }
}

/// The whole text of a file read with read(2) until end of file (procfs files report size 0,
/// and Foundation's whole-file readers may stop early on them).
func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if got < 0 && errno == EINTR { continue }
        if got <= 0 { break }
        bytes += buffer[..<got]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Memory figures of a process from `/proc/PID/status`, in kB.
struct MemoryStatus {
    var peakRSS = 0  // VmHWM
    var rss = 0  // VmRSS
    var anonymous = 0  // RssAnon
    var file = 0  // RssFile

    /// This process's figures (`/proc/self/status`).
    static func current() -> MemoryStatus { read("/proc/self/status") ?? MemoryStatus() }

    /// Another process's figures (`/proc/PID/status`); nil when the process is gone.
    static func of(pid: pid_t) -> MemoryStatus? { read("/proc/\(pid)/status") }

    private static func read(_ path: String) -> MemoryStatus? {
        var status = MemoryStatus()
        guard let text = readProcFile(path), !text.isEmpty else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let kB = Int(parts[1]) else { continue }
            switch parts[0] {
            case "VmHWM:": status.peakRSS = kB
            case "VmRSS:": status.rss = kB
            case "RssAnon:": status.anonymous = kB
            case "RssFile:": status.file = kB
            default: break
            }
        }
        return status
    }

    var summary: String {
        "VmRSS \(megabytes(rss)) MB (anon \(megabytes(anonymous)), file \(megabytes(file))), VmHWM \(megabytes(peakRSS)) MB"
    }
}

func megabytes(_ kB: Int) -> String { String(format: "%.1f", Double(kB) / 1024) }

/// The median (the mean of the middle two for an even count); 0 for none.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

func format(_ value: Double, _ decimals: Int = 2) -> String { String(format: "%.\(decimals)f", value) }

/// Prints a line at once (the `all` command reads children through pipes).
func say(_ line: String) {
    var text = line
    text.append("\n")
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(1, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}

/// Prints the machine-readable summary line the `all` command collects: `RESULT key=value ...`.
func sayResult(_ section: String, _ values: KeyValuePairs<String, String>) {
    say("RESULT section=\(section) " + values.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
}

/// The same, for values gathered in a dictionary (keys sorted).
func sayResult(_ section: String, _ values: [String: String]) {
    say("RESULT section=\(section) " + values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A pipe whose both ends are close-on-exec (pipe2 is a GNU extension the Glibc module lacks;
/// only the main thread spawns children, so the window before fcntl is harmless).
func closeOnExecPipe(_ fds: inout [Int32]) -> Bool {
    guard pipe(&fds) == 0 else { return false }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return true
}

/// Reads a descriptor line by line on its own thread until end of file.
///
/// Keeps the first 200 lines (for waiting on a header or a status line) and the last 40 (for
/// error messages); `onLine` sees every line, on the reader thread.
final class LineReader: Sendable {
    private struct State {
        var head: [String] = []
        var tail: [String] = []
        var count = 0
        var ended = false
    }
    private let state = Locked(State())

    init(fd: Int32, onLine: (@Sendable (Substring) -> Void)? = nil) {
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            var partial: [UInt8] = []
            func deliver(_ bytes: ArraySlice<UInt8>) {
                let line = String(decoding: bytes, as: UTF8.self)
                onLine?(Substring(line))
                self.state.withLock { state in
                    state.count += 1
                    if state.head.count < 200 { state.head.append(line) }
                    state.tail.append(line)
                    if state.tail.count > 40 { state.tail.removeFirst() }
                }
            }
            while true {
                let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if got < 0 && errno == EINTR { continue }
                if got <= 0 { break }
                var start = 0
                for index in 0..<got where buffer[index] == 10 {
                    if partial.isEmpty {
                        deliver(buffer[start..<index])
                    } else {
                        partial += buffer[start..<index]
                        deliver(partial[...])
                        partial.removeAll(keepingCapacity: true)
                    }
                    start = index + 1
                }
                partial += buffer[start..<got]
            }
            if !partial.isEmpty { deliver(partial[...]) }
            Glibc.close(fd)
            self.state.withLock { $0.ended = true }
        }
        thread.name = "line reader"
        thread.start()
    }

    /// Waits for a line among the first 200 that satisfies `predicate`; nil on timeout or end of file.
    func waitForLine(timeout: Double, where predicate: (String) -> Bool) -> String? {
        let deadline = Clock.now() + timeout
        var checked = 0
        while Clock.now() < deadline {
            let (lines, ended) = state.withLock { ($0.head, $0.ended) }
            if let match = lines[checked...].first(where: predicate) { return match }
            checked = lines.count
            if ended { return nil }
            usleep(2000)
        }
        return nil
    }

    /// Waits (bounded) for end of file.
    func waitForEnd(timeout: Double) {
        let deadline = Clock.now() + timeout
        while Clock.now() < deadline && !state.withLock({ $0.ended }) { usleep(5000) }
    }

    var lastLines: [String] { state.withLock { $0.tail } }
    var allKeptLines: [String] { state.withLock { $0.head } }
}

/// A child process started with `posix_spawn`, its standard output (and optionally standard
/// error) read by a ``LineReader``, its standard input an optional pipe. With `standardOutput`,
/// its standard output goes to that file instead and the reader gets its standard error alone.
final class Child: Sendable {
    /// Starts a generator that waits on standard input: waits for its line starting with `prefix`
    /// (which carries `pid=`), calls `ready` with that pid, then lets it go.
    static func paused(_ path: String, _ arguments: [String], readyLine prefix: String, ready: (Int32) -> Void) throws -> Child {
        let child = try Child(path, arguments, stdin: true)
        guard let line = child.output.waitForLine(timeout: 10, where: { $0.hasPrefix(prefix) }),
            let pid = keyValues(line)["pid"].flatMap({ Int32($0) })
        else {
            child.wait(timeout: 1)
            throw BenchError("\(arguments[0]) did not start: \(child.output.lastLines.joined(separator: " | "))")
        }
        ready(pid)
        child.send("go")
        return child
    }

    let pid: pid_t
    let output: LineReader
    private let stdinFD: Int32

    init(
        _ path: String, _ arguments: [String], environment overrides: [String: String] = [:], stdin: Bool = false,
        mergeStandardError: Bool = true, standardOutput: String? = nil, onLine: (@Sendable (Substring) -> Void)? = nil
    ) throws {
        var outPipe: [Int32] = [-1, -1]
        var inPipe: [Int32] = [-1, -1]
        guard closeOnExecPipe(&outPipe) else { throw BenchError("pipe: \(String(cString: strerror(errno)))") }
        if stdin {
            guard closeOnExecPipe(&inPipe) else { throw BenchError("pipe: \(String(cString: strerror(errno)))") }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The pipes are close-on-exec: dup2 makes the child's own copies, which are not.
        if let standardOutput {
            // What a shell's `> FILE` does: created if missing, truncated, write-only.
            posix_spawn_file_actions_addopen(&actions, 1, standardOutput, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&actions, outPipe[1], 2)
        } else {
            posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
            if mergeStandardError { posix_spawn_file_actions_adddup2(&actions, outPipe[1], 2) }
        }
        if stdin {
            posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }

        var environment = ProcessInfo.processInfo.environment
        for (key, value) in overrides { environment[key] = value }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, nil, argv, envp)
        close(outPipe[1])
        if stdin { close(inPipe[0]) }
        guard result == 0 else {
            close(outPipe[0])
            if stdin { close(inPipe[1]) }
            throw BenchError("cannot start \(path): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        self.stdinFD = stdin ? inPipe[1] : -1
        self.output = LineReader(fd: outPipe[0], onLine: onLine)
    }

    /// Writes a line to the child's standard input.
    func send(_ line: String) {
        guard stdinFD >= 0 else { return }
        let text = line + "\n"
        _ = text.withCString { write(stdinFD, $0, strlen($0)) }
    }

    func signal(_ number: Int32) { kill(pid, number) }

    /// Waits for the child to exit, up to `timeout` seconds, then kills it. Returns the wait status.
    @discardableResult
    func wait(timeout: Double) -> Int32 {
        let deadline = Clock.now() + timeout
        var status: Int32 = 0
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid || (done < 0 && errno != EINTR) { break }
            if Clock.now() > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                break
            }
            usleep(5000)
        }
        if stdinFD >= 0 { close(stdinFD) }
        return status
    }
}

/// The executable next to this one (`.build/release/netevents-traffic`).
func siblingExecutable(_ name: String) throws -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard length > 0 else { throw BenchError("cannot read /proc/self/exe") }
    let me = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let path = (me as NSString).deletingLastPathComponent + "/" + name
    guard access(path, X_OK) == 0 else {
        throw BenchError("\(path) not found: build it with `swift build -c release --static-swift-stdlib --product \(name)`")
    }
    return path
}

/// How the executable at `path` carries Swift's runtime: `static` (built with
/// `--static-swift-stdlib`, as `scripts/run` builds the tools users run) or `shared` (the
/// toolchain's libswiftCore.so). The dynamic loader lists the libraries without running the
/// program (`LD_TRACE_LOADED_OBJECTS`, as ldd does).
func swiftRuntimeLinkage(_ path: String) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.environment = ["LD_TRACE_LOADED_OBJECTS": "1"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return "unknown" }
    let listed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return listed.contains("libswiftCore.so") ? "shared" : "static"
}

/// Says how each of `paths` carries Swift's runtime, and warns when they differ or are not what
/// users run (a partial rebuild without `--static-swift-stdlib` leaves a mix).
func sayRuntimeLinkage(_ paths: [String]) {
    let linkages = paths.map { ("\(($0 as NSString).lastPathComponent)", swiftRuntimeLinkage($0)) }
    say("Swift runtime: " + linkages.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
    if linkages.contains(where: { $0.1 != "static" }) {
        say("**warning:** not every tool is built as `scripts/run` builds it (`--static-swift-stdlib`): start-up and memory differ")
    }
}

/// `key=value` words of a line, as the traffic generator and the RESULT lines print them.
func keyValues(_ line: some StringProtocol) -> [String: String] {
    var values: [String: String] = [:]
    for word in line.split(separator: " ") {
        guard let equals = word.firstIndex(of: "=") else { continue }
        values[String(word[..<equals])] = String(word[word.index(after: equals)...])
    }
    return values
}

/// A TCP tracer's events counted by kind (`TCPConnectionEvent.Kind`, JSON key `event`), so that a
/// missing or extra kind shows, not only the total.
struct EventCounts: Equatable {
    typealias Kind = TCPConnectionEvent.Kind
    private var counts: [Kind: Int] = [:]

    init(_ counts: [Kind: Int] = [:]) { self.counts = counts.filter { $0.value != 0 } }

    /// What `tcp-burst` yields for `connections` loopback connections, of the kinds reported: a
    /// connect and a close for the client end, an accept and a close for the server end (4 per
    /// connection by default). `accepts` is false when neither accept(2) nor first I/O claims the
    /// server end, which then gives no accept.
    static func burst(connections: Int, kinds: Set<Kind> = Set(Kind.allCases), accepts: Bool = true) -> EventCounts {
        var expected = EventCounts()
        if kinds.contains(.connect) { expected[.connect] = connections }
        if kinds.contains(.accept) && accepts { expected[.accept] = connections }
        if kinds.contains(.close) { expected[.close] = 2 * connections }
        return expected
    }

    subscript(kind: Kind) -> Int {
        get { counts[kind, default: 0] }
        set { counts[kind] = newValue == 0 ? nil : newValue }
    }

    var total: Int { counts.values.reduce(0, +) }

    /// Each kind's median over runs.
    static func medians(of runs: [EventCounts]) -> EventCounts {
        var result = EventCounts()
        for kind in Kind.allCases { result[kind] = Int(median(runs.map { Double($0[kind]) })) }
        return result
    }

    /// "4000/4000 (connect 1000, accept 1000, close 2000)"; a kind that differs from `expected`
    /// reads "accept 0 of 1000".
    func summary(of expected: EventCounts) -> String {
        let kinds = Kind.allCases.filter { self[$0] != 0 || expected[$0] != 0 }.map { kind in
            self[kind] == expected[kind] ? "\(kind) \(self[kind])" : "\(kind) \(self[kind]) of \(expected[kind])"
        }
        return "\(total)/\(expected.total) (\(kinds.isEmpty ? "none" : kinds.joined(separator: ", ")))"
    }

    /// For RESULT lines (no spaces): "connect:1000,accept:1000,close:2000"; "none" when empty.
    var resultValue: String {
        let kinds = Kind.allCases.filter { self[$0] != 0 }.map { "\($0):\(self[$0])" }
        return kinds.isEmpty ? "none" : kinds.joined(separator: ",")
    }

    /// Reads ``resultValue`` back; nil for anything else.
    init?(resultValue text: String) {
        self.init()
        guard text != "none" else { return }
        for part in text.split(separator: ",") {
            let pair = part.split(separator: ":")
            guard pair.count == 2, let kind = Kind(rawValue: String(pair[0])), let count = Int(pair[1]) else { return nil }
            self[kind] = count
        }
    }
}

/// 127.0.0.1:`port` as the `sockaddr` that bind, connect and getsockname take (with its length,
/// which getsockname may update).
func withLoopback<Result>(port: UInt16 = 0, _ body: (UnsafeMutablePointer<sockaddr>, inout socklen_t) throws -> Result) rethrows -> Result {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return try withUnsafeMutablePointer(to: &address) { pointer in
        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, &length) }
    }
}

/// The port of a `sockaddr_in` that ``withLoopback(port:_:)`` handed out.
func loopbackPort(_ address: UnsafeMutablePointer<sockaddr>) -> UInt16 {
    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
}
