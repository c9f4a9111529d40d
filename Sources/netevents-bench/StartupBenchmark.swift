import Foundation
import Glibc
import Synchronization
import TCPEvent
import UDPEvent

/// `startup`: time from `TCPMonitor.start` to attached and to the first event of a loopback
/// connection made right after, plus peak and steady RSS. The runtime gives back the compiler's
/// memory itself after every compile (`CompilerMemory.release()`: `bcc_free_memory`,
/// `malloc_trim`, dropping libLLVM/libclang-cpp code pages), so "as shipped" includes it; the
/// bench's own experiments with those calls were removed once they changed nothing (< 0.5 MB).
///
/// Each measurement runs in a fresh process (`startup --once ...`), since peak RSS is a
/// high-water mark and BCC keeps state between compiles.
enum StartupBenchmark {
    struct Options {
        var runs = 3
        var once = false
        /// Print the mappings that hold the most resident memory, 1 s after start.
        var showMappings = false
        /// Instead of a monitor, time BCC compiling an empty program: its fixed cost.
        var emptyCompile = false
        /// Start a TCPMonitor and a UDPMonitor in the one process, as an agent does.
        var both = false
    }

    final class FirstEvent: Sendable {
        let port = Atomic<Int32>(-1)
        let time = Locked<Double?>(nil)
    }

    /// One measurement, in this process; prints a RESULT line.
    static func once(_ options: Options) throws {
        if options.emptyCompile {
            let t0 = Clock.now()
            let module = try BPFModule(source: "int empty(void *ctx) { return 0; }")
            let seconds = Clock.now() - t0
            say("BCC compiled an empty program in \(format(seconds * 1000, 1)) ms: \(MemoryStatus.current().summary)")
            _ = module
            sayResult("startup_once", ["empty_compile_ms": format(seconds * 1000, 1), "peak_kb": String(MemoryStatus.current().peakRSS)])
            return
        }
        if options.both { return try onceWithBoth() }
        let before = MemoryStatus.current()
        let monitor = try TCPMonitor()
        let first = FirstEvent()
        let t0 = Clock.now()
        try monitor.start { event in
            let port = first.port.load(ordering: .relaxed)
            if port >= 0 && (Int32(event.sourcePort) == port || Int32(event.destinationPort) == port) {
                first.time.withLock { if $0 == nil { $0 = Clock.now() } }
            }
        }
        let attached = Clock.now() - t0
        let afterStart = MemoryStatus.current()

        // One loopback connection, opened and closed right after start returns.
        let port = try loopbackConnection { first.port.store(Int32($0), ordering: .relaxed) }
        let deadline = Clock.now() + 10
        while first.time.withLock({ $0 }) == nil && Clock.now() < deadline { usleep(200) }
        guard let firstTime = first.time.withLock({ $0 }) else {
            throw BenchError("no event for the loopback connection on port \(port) within 10 s")
        }
        let toFirstEvent = firstTime - t0

        // Steady state: a second after start.
        Clock.sleep(max(0, 1 - (Clock.now() - t0)))
        let steady = MemoryStatus.current()
        if options.showMappings { printLargestMappings() }
        monitor.stop()

        say("before start: \(before.summary)")
        say("start returned (attached) after \(format(attached * 1000, 1)) ms: \(afterStart.summary)")
        say("first event of the loopback connection after \(format(toFirstEvent * 1000, 1)) ms")
        say("1 s after start: \(steady.summary)")
        sayResult("startup_once", [
            "attach_ms": format(attached * 1000, 1), "first_event_ms": format(toFirstEvent * 1000, 1),
            "rss_before_kb": String(before.rss), "rss_after_start_kb": String(afterStart.rss),
            "peak_kb": String(steady.peakRSS), "steady_kb": String(steady.rss),
            "steady_anon_kb": String(steady.anonymous), "steady_file_kb": String(steady.file),
        ])
    }

    /// A TCPMonitor and a UDPMonitor started one after the other in this process (what an agent
    /// tracing both runs): the time until both are attached, and the peak and steady (1 s after
    /// the second start) RSS.
    static func onceWithBoth() throws {
        let before = MemoryStatus.current()
        let t0 = Clock.now()
        let tcp = try TCPMonitor()
        try tcp.start { _ in }
        let udp = try UDPMonitor()
        try udp.start { _ in }
        let attached = Clock.now() - t0
        Clock.sleep(1)
        let steady = MemoryStatus.current()
        udp.stop()
        tcp.stop()
        say("TCP and UDP monitors attached after \(format(attached * 1000, 1)) ms; 1 s later: \(steady.summary)")
        sayResult("startup_once", [
            "both_attach_ms": format(attached * 1000, 1), "both_peak_kb": String(steady.peakRSS), "both_steady_kb": String(steady.rss),
            "rss_before_kb": String(before.rss),
        ])
    }

    /// Listens on an ephemeral loopback port, tells `announce` the port, connects, accepts,
    /// exchanges a byte and closes both ends.
    static func loopbackConnection(announce: (UInt16) -> Void) throws -> UInt16 {
        func check(_ result: Int32, _ what: String) throws -> Int32 {
            guard result >= 0 else { throw BenchError("\(what): \(String(cString: strerror(errno)))") }
            return result
        }
        let listener = try check(socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0), "socket")
        defer { close(listener) }
        let port = try withLoopback { raw, length in
            _ = try check(bind(listener, raw, length), "bind")
            _ = try check(listen(listener, 4), "listen")
            _ = try check(getsockname(listener, raw, &length), "getsockname")
            return loopbackPort(raw)
        }
        announce(port)
        let client = try check(socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0), "socket")
        _ = try withLoopback(port: port) { try check(connect(client, $0, $1), "connect") }
        let server = try check(accept(listener, nil, nil), "accept")
        var byte: UInt8 = 1
        _ = send(client, &byte, 1, Int32(MSG_NOSIGNAL))
        _ = recv(server, &byte, 1, 0)
        close(client)
        close(server)
        return port
    }

    /// The mappings of this process with the most resident memory, summed per file (from
    /// `/proc/self/smaps`): where the steady RSS lives.
    static func printLargestMappings(limit: Int = 15) {
        guard let smaps = readProcFile("/proc/self/smaps") else { return }
        var perName: [String: (rss: Int, anonymous: Int)] = [:]
        var current = ""
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5, !first.hasSuffix(":") {
                current = fields.count >= 6 ? fields[5...].joined(separator: " ") : "[anonymous]"
            } else if fields.count >= 2, let kB = Int(fields[1]) {
                if fields[0] == "Rss:" { perName[current, default: (0, 0)].rss += kB }
                if fields[0] == "Anonymous:" { perName[current, default: (0, 0)].anonymous += kB }
            }
        }
        say("largest resident mappings (Rss kB, of which Anonymous kB):")
        for (name, value) in perName.sorted(by: { $0.value.rss > $1.value.rss }).prefix(limit) {
            say("  \(value.rss)\t\(value.anonymous)\t\(name)")
        }
    }

    /// Runs `startup --once` with `extra` options in `runs` fresh processes; the median of each
    /// value of their RESULT lines, by key.
    static func medians(_ me: String, _ extra: [String], runs: Int) throws -> (String) -> Double {
        var results: [[String: String]] = []
        for _ in 0..<runs {
            let child = try Child(me, ["startup", "--once"] + extra)
            child.output.waitForEnd(timeout: 120)
            let status = child.wait(timeout: 10)
            guard let line = child.output.allKeptLines.first(where: { $0.hasPrefix("RESULT section=startup_once") }) else {
                throw BenchError("startup --once \(extra.joined(separator: " ")) failed (status \(status)): \(child.output.lastLines.joined(separator: " | "))")
            }
            results.append(keyValues(line))
        }
        return { key in median(results.compactMap { $0[key].flatMap(Double.init) }) }
    }

    /// Runs `once` in fresh processes, `runs` times, then times an empty compile.
    static func run(_ options: Options) throws {
        if options.once { return try once(options) }
        let me = try siblingExecutable("netevents-bench")
        say("## startup")
        say("")
        sayRuntimeLinkage([me])
        say("")
        say("| variant | runs | start → attached | start → first event | peak RSS (VmHWM) | steady RSS 1 s after start | of which anon / file |")
        say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        var plain: [String: Double] = [:]
        do {
            let name = "as shipped (TCPMonitor(), CompilerMemory.release() after load)"
            let runs = options.runs
            let value = try medians(me, [], runs: runs)
            say("| \(name) | \(runs) | \(format(value("attach_ms"), 0)) ms | \(format(value("first_event_ms"), 0)) ms | "
                + "\(megabytes(Int(value("peak_kb")))) MB | \(megabytes(Int(value("steady_kb")))) MB | "
                + "\(megabytes(Int(value("steady_anon_kb")))) / \(megabytes(Int(value("steady_file_kb")))) MB |")
            for key in ["attach_ms", "first_event_ms", "peak_kb", "steady_kb", "steady_anon_kb", "steady_file_kb", "rss_before_kb"] {
                plain[key] = value(key)
            }
            say("| before `start` (the process's libraries loaded; libbcc, LLVM and clang only at the first compile) | \(runs) | - | - | - | \(megabytes(Int(value("rss_before_kb")))) MB | - |")
        }
        do {
            let value = try medians(me, ["--both"], runs: options.runs)
            say("| TCPMonitor and UDPMonitor in one process (both started) | \(options.runs) | \(format(value("both_attach_ms"), 0)) ms (both) | - | "
                + "\(megabytes(Int(value("both_peak_kb")))) MB | \(megabytes(Int(value("both_steady_kb")))) MB | - |")
            for key in ["both_attach_ms", "both_peak_kb", "both_steady_kb"] { plain[key] = value(key) }
        }
        let empty = try Child(me, ["startup", "--once", "--empty-compile"])
        empty.output.waitForEnd(timeout: 120)
        empty.wait(timeout: 10)
        let emptyValues = empty.output.allKeptLines.first(where: { $0.hasPrefix("RESULT section=startup_once") }).map(keyValues) ?? [:]
        let emptyMilliseconds = emptyValues["empty_compile_ms"] ?? "?"
        say("| BCC fixed cost: compile `int empty(void *ctx) { return 0; }` | 1 | \(emptyMilliseconds) ms (compile only) | - | "
            + "\(megabytes(Int(emptyValues["peak_kb"] ?? "0") ?? 0)) MB | - | - |")
        say("")
        var line = "RESULT section=startup empty_compile_ms=\(emptyMilliseconds)"
        for key in plain.keys.sorted() { line += " \(key)=\(format(plain[key]!, 1))" }
        say(line)
    }
}
