import Foundation
import TCPEvent
import XCTest

/// A running `netevents-traffic` process: a second (or third) real process whose traffic the
/// tests trace, and whose `key=value` output says what it did.
final class TrafficProcess: @unchecked Sendable {
    let process = Process()
    private let output = Pipe()
    private let input = Pipe()
    private var buffered = Data()

    /// `.build/<config>/netevents-traffic`, next to the test bundle.
    static var executable: URL {
        get throws { try builtExecutable("netevents-traffic") }
    }

    /// Starts `netevents-traffic ARGUMENTS`, inside `namespace` if one is given (through
    /// `ip netns exec`, which execs it: the pid stays the generator's).
    init(_ arguments: [String], namespace: NetworkNamespace? = nil) throws {
        if let namespace {
            process.executableURL = URL(fileURLWithPath: try NetworkNamespace.ip())
            process.arguments = ["netns", "exec", namespace.name, try Self.executable.path] + arguments
        } else {
            process.executableURL = try Self.executable
            process.arguments = arguments
        }
        process.standardOutput = output
        process.standardInput = input
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// The next line the process prints, as `key=value` pairs (the first word is under "event").
    func nextLine(timeout: TimeInterval = 20) throws -> [String: String] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffered.firstIndex(of: 10) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                var fields: [String: String] = [:]
                for (index, word) in line.split(separator: " ").enumerated() {
                    let parts = word.split(separator: "=", maxSplits: 1)
                    if index == 0 && parts.count == 1 { fields["event"] = String(word) } else if parts.count == 2 {
                        fields[String(parts[0])] = String(parts[1])
                    }
                }
                return fields
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                process.terminate()
                throw TrafficError.timeout(process.arguments ?? [])
            }
            // Wait with poll(2): `availableData` would block past the deadline.
            var descriptor = pollfd(fd: output.fileHandleForReading.fileDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, Int32(min(remaining, 1) * 1000)) > 0 else { continue }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty {
                waitUntilExit(process)
                throw TrafficError.exited(process.arguments ?? [], process.terminationStatus)
            }
            buffered.append(chunk)
        }
    }

    /// Sends a go-ahead line.
    func proceed() { input.fileHandleForWriting.write(Data("go\n".utf8)) }

    /// Waits for exit and checks the status was 0.
    func waitForSuccess(file: StaticString = #filePath, line: UInt = #line) {
        waitUntilExit(process, file: file, line: line)
        XCTAssertEqual(process.terminationStatus, 0, "netevents-traffic \(process.arguments ?? []) failed", file: file, line: line)
    }

    deinit { if process.isRunning { process.terminate() } }
}

enum TrafficError: Error {
    /// The generator is a separate product: `swift build` builds it, `swift test` alone may not.
    case notBuilt(String)
    case timeout([String])
    case exited([String], Int32)
}

/// A free TCP or UDP port on loopback (bound and released; the kernel does not hand it out
/// again at once).
func freePort(udp: Bool = false) -> UInt16 {
    let fd = socket(AF_INET6, Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    address.sin6_addr = in6addr_any
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return UInt16(bigEndian: address.sin6_port)
}

/// Starts `executable` with `arguments`, its standard output and error on pipes.
func startProcess(_ executable: URL, _ arguments: [String]) throws -> (Process, output: Pipe, errors: Pipe) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    return (process, output, errors)
}

/// Runs `executable ARGUMENTS` to its end; its status, standard error and standard output.
func runCapturing(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, errors: String, output: String) {
    let (process, output, errors) = try startProcess(executable, arguments)
    // Standard output is read to its end on another thread, so a full pipe cannot stall the process.
    let outputText = Collector<String>()
    let outputDone = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        outputText.add(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        outputDone.signal()
    }
    let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    waitUntilExit(process)
    XCTAssertEqual(outputDone.wait(timeout: .now() + 10), .success, "\(executable.path): standard output did not end")
    return (process.terminationStatus, text, outputText.events.joined())
}

/// Runs `executable ARGUMENTS` to its end, standard error discarded: its status and standard
/// output; nil when it could not start.
func runToEnd(_ executable: String, _ arguments: [String]) -> (status: Int32, output: Data)? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    waitUntilExit(process)
    return (process.terminationStatus, data)
}

/// Starts `arguments[0] ARGUMENTS...` with posix_spawn, standard input on /dev/null, standard
/// output on `output` and standard error on `errors` (each /dev/null if nil); its pid. The caller
/// reaps it (`waitpid`): Foundation's `Process` can miss a child's exit while another child it
/// started still runs, so a long-lived server and the clients run beside it are spawned this way.
func spawn(_ arguments: [String], output: Int32? = nil, errors: Int32? = nil) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    if let output { posix_spawn_file_actions_adddup2(&actions, output, 1) } else { posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0) }
    if let errors { posix_spawn_file_actions_adddup2(&actions, errors, 2) } else { posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0) }
    var pid: pid_t = 0
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let spawned = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
    guard spawned == 0 else { throw TrafficError.notBuilt("posix_spawn \(arguments[0]): \(spawned)") }
    return pid
}

/// The status of a spawned child, once it has ended.
@discardableResult
func reap(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status
}

/// Spawns `arguments[0] ARGUMENTS...` (see `spawn`) with its standard output on a pipe: its pid
/// and the pipe's read end, which the caller closes.
func spawnWithOutputPipe(_ arguments: [String]) throws -> (pid: pid_t, output: Int32) {
    var pipe: [Int32] = [0, 0]
    guard pipe.withUnsafeMutableBufferPointer({ Glibc.pipe($0.baseAddress!) }) == 0 else { throw TrafficError.notBuilt("pipe: \(errno)") }
    // Not inherited by processes other threads start meanwhile: they would hold the write end open.
    for descriptor in pipe { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
    defer { close(pipe[1]) }
    do {
        return (try spawn(arguments, output: pipe[1]), pipe[0])
    } catch {
        close(pipe[0])
        throw error
    }
}

/// Starts a generator that holds sockets until SIGTERM (`netevents-traffic udp-sockets` or
/// `tcp-sockets`) and waits for its `ready` line: its pid and that line's `key=value` words. The
/// caller ends it (SIGTERM) and reaps it.
func startHolding(_ arguments: [String]) throws -> (pid: pid_t, fields: [String: String]) {
    let (pid, output) = try spawnWithOutputPipe(arguments)
    defer { close(output) }
    // Up to the `ready` line (a `limited` line may come first), or the end of its output.
    var line: [UInt8] = []
    var byte: UInt8 = 0
    while read(output, &byte, 1) == 1 {
        if byte != UInt8(ascii: "\n") {
            line.append(byte)
        } else if line.starts(with: Array("ready".utf8)) {
            break
        } else {
            line = []
        }
    }
    var fields: [String: String] = [:]
    for word in String(decoding: line, as: UTF8.self).split(separator: " ") {
        let parts = word.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
    }
    return (pid, fields)
}

/// Runs `arguments[0] ARGUMENTS...` to its end (spawned and reaped directly, see `spawn`): its
/// pid, status and standard output.
func spawnToEnd(_ arguments: [String]) throws -> (pid: Int32, status: Int32, output: String) {
    let (pid, descriptor) = try spawnWithOutputPipe(arguments)
    defer { close(descriptor) }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(descriptor, &buffer, buffer.count)
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { break }
        output += buffer[..<count]
    }
    return (pid, reap(pid), String(decoding: output, as: UTF8.self))
}

/// Waits up to `seconds` for `process` to end; whether it did.
func waitForExit(_ process: Process, seconds: Double) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    return !process.isRunning
}

/// `process.waitUntilExit()` with a bound: a child that has not ended after `seconds` (or whose
/// end Foundation missed) is killed and the test fails, naming it, instead of hanging the run.
func waitUntilExit(_ process: Process, seconds: Double = 120, file: StaticString = #filePath, line: UInt = #line) {
    // Ended: Foundation's own wait returns at once, and runs the run loop that frees what it
    // kept for the process (a pipe), as the tests that count descriptors expect.
    guard !waitForExit(process, seconds: seconds) else { return process.waitUntilExit() }
    XCTFail("\(process.executableURL?.path ?? "?") \(process.arguments ?? []) still running after \(seconds) s: killed", file: file, line: line)
    kill(process.processIdentifier, SIGKILL)
    _ = waitForExit(process, seconds: 10)
}

/// `.build/<config>/NAME`: an executable of this package, built next to the test bundle.
func builtExecutable(_ name: String) throws -> URL {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for directory in [bundle, bundle.deletingLastPathComponent()] {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw TrafficError.notBuilt(bundle.path)
}

/// Collects events from a callback (or lines from a pipe), for waiting on them with a deadline.
final class Collector<Event: Sendable>: @unchecked Sendable {
    private let lock = NSCondition()
    private var items: [Event] = []

    func add(_ event: Event) {
        lock.lock()
        items.append(event)
        lock.broadcast()
        lock.unlock()
    }

    var events: [Event] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }

    /// How many there are so far (no copy of them).
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return items.count
    }

    /// Waits until `predicate` holds for the collected events, or `timeout` passes; returns them.
    @discardableResult
    func wait(timeout: TimeInterval = 20, until predicate: ([Event]) -> Bool) -> [Event] {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while !predicate(items) && lock.wait(until: deadline) {}
        return items
    }

    /// Waits until some event satisfies `match`; returns the first that does, or nil after `timeout` seconds.
    func first(timeout: TimeInterval = 20, where match: (Event) -> Bool) -> Event? {
        wait(timeout: timeout) { $0.contains(where: match) }.first(where: match)
    }
}

extension Collector<String> {
    /// Collects the lines read from `handle` on a background thread, until it ends.
    convenience init(lines handle: FileHandle) {
        self.init()
        Thread.detachNewThread { [self] in
            var partial = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { return }
                partial.append(chunk)
                while let newline = partial.firstIndex(of: 10) {
                    add(String(decoding: partial[partial.startIndex..<newline], as: UTF8.self))
                    partial.removeSubrange(partial.startIndex...newline)
                }
            }
        }
    }
}

/// A started TCP monitor of `configuration`, and the collector its events go to.
func collectingTCPMonitor(_ configuration: TCPMonitor.Configuration) throws -> (TCPMonitor, Collector<TCPConnectionEvent>) {
    let monitor = try TCPMonitor(configuration: configuration)
    let collector = Collector<TCPConnectionEvent>()
    try monitor.start { collector.add($0) }
    return (monitor, collector)
}

/// A TCP client socket of this process, connected to 127.0.0.1:`port`.
final class LoopbackClient: @unchecked Sendable {
    let fd: Int32
    /// The local port (read at connect: a closed socket has none).
    let port: UInt16
    init(port server: UInt16) throws {
        // Close-on-exec: a child started later must not hold it open (its close would send no FIN).
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = server.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = UInt16(bigEndian: local.sin_port)
    }
    func send(_ count: Int) {
        let bytes = [UInt8](repeating: 0x61, count: count)
        var sent = 0
        while sent < count {
            let result = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard result > 0 else { return }
            sent += result
        }
    }
    /// Reads until `count` bytes came or the peer closed: how many came.
    func receive(_ count: Int) -> Int {
        var buffer = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let result = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress! + received, count - received, 0) }
            guard result > 0 else { break }
            received += result
        }
        return received
    }
    /// Closes with a reset (SO_LINGER 0): no FIN, so the close totals are the data alone.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
    }
}
