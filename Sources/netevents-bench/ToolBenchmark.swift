import Foundation
import Glibc
import Synchronization
import TCPEvent

/// `tools`: the command-line tools measured end to end, exactly as users run them: `tcp-events
/// --json` and `udp-events --json` from the same build directory, spawned with standard output
/// redirected as a shell's `>` does (to a regular file under /var/tmp, deleted after the run, or to
/// /dev/null) and standard error read through a pipe, with no filter, stopped with SIGINT.
///
/// Per run, interleaved (like `tcp-churn`): `netevents-traffic tcp-burst --count N` untraced, under
/// `tcp-events --json > FILE`, under `tcp-events --json > /dev/null`, under `tcp-events --json
/// --events close > FILE` (close events only: the tool's output before connect and accept events
/// existed, for comparison with older figures); then `netevents-traffic
/// udp-flood --count N --size 64` (the `udp` section's loop) untraced, under `udp-events --json >
/// FILE` and under `dns-events --json > FILE` (what tracing DNS costs the UDP traffic that is not
/// DNS); then the same count of A queries (`udp-flood --dns --sink-port P`, 28 bytes, a new id each)
/// untraced and under `dns-events --json --port P > FILE`, every datagram a DNS event (the queries'
/// traced / untraced ratio is against the untraced queries, not the 64-byte flood). Each traced run:
/// 1. spawn the tool; start-up is the wall time from the spawn to its `Tracing` line on standard
///    error (stamped by the thread reading the pipe as the line arrives);
/// 2. start the generator paused (`--wait`); just before releasing it, count the file's lines and
///    read the tool's CPU time (every thread's, see below);
/// 3. once the generator has exited, poll every 50 ms until the output has settled: the file's
///    size unchanged for 0.5 s (for /dev/null, the tool idle for 0.5 s: its CPU time growing by
///    less than 0.1 ms per poll), at most 30 s;
/// 4. read the CPU time again, then VmHWM (peak RSS) and VmRSS (steady RSS, at the end of the
///    window) from `/proc/PID/status`;
/// 5. send SIGINT and read the tool's closing summary on standard error (`N events printed; lost
///    L, dropped D, ...`), then wait for it to exit (each wait bounded).
///
/// Tool CPU per event is the window's CPU time over the events printed in it: for a file, the
/// lines added from the release to the tool's exit; for /dev/null, the summary's count, which also
/// holds the few events of other processes printed between `Tracing` and the release. The tools
/// trace every process, so both counts include other processes' events, as the CPU does. For
/// `tcp-events`, CPU is also given per connection of the burst, which compares across the kinds
/// chosen (4 events per connection by default, 2 with `--events close`). For
/// `udp-events`, CPU is per datagram the flood sent (user space only sees the per-socket interval
/// reports and the close; the in-kernel counting runs in the generator's context and shows in its
/// rate, as does the kernel side of either tracer). CPU time is the tool's process CPU-time clock
/// (`clock_getcpuclockid`, nanoseconds, every thread; `Clock.processCPU(pid:)`), not the 10 ms
/// ticks of `/proc/PID/stat`.
///
/// Counts: for `tcp-events > FILE`, the lines whose `"pid"` is the generator's, counted by their
/// `"event"` (the kind), against the kinds the tool reports for each connection: connect and close
/// of the client end, accept and close of the server end (4 per connection by default; with
/// `--events close`, the 2 closes); for `> /dev/null` the generator's events cannot be told apart, so the printed total
/// is reported and lost and dropped (from the summary) must be 0; for `udp-events > FILE`, the sum
/// of `tx_packets` over the lines with the flood's pid (interval reports, then the close) against
/// the datagrams it sent; for `dns-events`, the summary's `datagrams N` (DNS datagrams seen: none
/// for the flood to a port that is not DNS, every query for the flood to P). Every figure is the
/// median of the runs with the spread (min–max); the load average at the start of the section is
/// printed with them. Nothing here is an assertion.
enum ToolBenchmark {
    struct Options {
        var connections = 20_000
        var datagrams = 1_000_000
        var runs = 3
    }

    /// Where a tool's JSON lines go.
    enum Output {
        case file, devNull
    }

    /// One traced run of a generator under a tool.
    struct Run {
        var rate = 0.0  // the generator's rate, conn/s or datagrams/s
        var startup = 0.0  // spawn → `Tracing`, s
        var cpuSeconds = 0.0  // the tool's CPU time in the window
        var windowSeconds = 0.0  // from the release to the second CPU reading
        var windowEvents = 0  // events printed in the window (see the method above)
        var counted = 0  // the generator's events (TCP) or datagrams (UDP) the tool printed; file only
        var expected = 0  // events for the burst's connections, or the datagrams sent
        var connections = 0  // the burst's connections (TCP)
        var kinds: EventCounts?  // the generator's events by kind (TCP, file only)
        var expectedKinds: EventCounts?  // the kinds the tool reports for the burst (TCP)
        var printed: Int?  // the summary's "N events printed"
        var lost: UInt64?
        var dropped: UInt64?
        var peakKB = 0
        var steadyKB = 0
        var settleSeconds = 0.0
        var settled = true

        var cpuMicrosecondsPerEvent: Double { windowEvents > 0 ? cpuSeconds * 1e6 / Double(windowEvents) : 0 }
        var cpuMicrosecondsPerConnection: Double { connections > 0 ? cpuSeconds * 1e6 / Double(connections) : 0 }
        var cpuNanosecondsPerDatagram: Double { expected > 0 ? cpuSeconds * 1e9 / Double(expected) : 0 }
        var missed: Bool { (lost ?? 1) != 0 || (dropped ?? 1) != 0 }
        /// Every expected event printed, and nothing else (by kind, for TCP).
        var exact: Bool { kinds.map { $0 == expectedKinds } ?? (counted == expected) }
    }

    /// The executables the section runs, next to this one.
    struct Tools {
        var tcpEvents: String
        var udpEvents: String
        var dnsEvents: String
        var traffic: String
    }

    /// Finds the tools; a missing one fails the section with how to build it.
    static func locate() throws -> Tools {
        var found: [String: String] = [:]
        var missing: [String] = []
        for name in ["tcp-events", "udp-events", "dns-events", "netevents-traffic"] {
            do {
                found[name] = try siblingExecutable(name)
            } catch {
                say("| \(name) | missing: \(error) |")
                missing.append("\(error)")
            }
        }
        guard missing.isEmpty, let tcp = found["tcp-events"], let udp = found["udp-events"], let dns = found["dns-events"],
            let traffic = found["netevents-traffic"]
        else {
            throw BenchError("tools: " + missing.joined(separator: "; "))
        }
        sayRuntimeLinkage([tcp, udp, dns])
        return Tools(tcpEvents: tcp, udpEvents: udp, dnsEvents: dns, traffic: traffic)
    }

    /// When the tool's `Tracing` line arrived, stamped on the reader thread.
    final class Stamp: Sendable {
        let time = Locked<Double?>(nil)
    }

    /// A tool process, started and attached (its `Tracing` line seen).
    final class Tool {
        let child: Child
        let startup: Double
        private var stopped = false

        init(_ path: String, _ arguments: [String], output: String) throws {
            let stamp = Stamp()
            let t0 = Clock.now()
            child = try Child(path, arguments, standardOutput: output) { line in
                if line.hasPrefix("Tracing") { stamp.time.withLock { if $0 == nil { $0 = Clock.now() } } }
            }
            guard child.output.waitForLine(timeout: 120, where: { $0.hasPrefix("Tracing") }) != nil,
                let attached = stamp.time.withLock({ $0 })
            else {
                child.signal(SIGKILL)
                child.wait(timeout: 5)
                throw BenchError("\(path) did not print `Tracing` within 120 s: \(child.output.lastLines.joined(separator: " | "))")
            }
            startup = attached - t0
        }

        var pid: pid_t { child.pid }

        /// SIGINT, then the closing summary line (nil if none came within 30 s); waits for the exit.
        func stop() -> String? {
            stopped = true
            child.signal(SIGINT)
            let summary = child.output.waitForLine(timeout: 30, where: { $0.contains("lost ") && $0.contains("dropped ") })
            child.output.waitForEnd(timeout: 10)
            child.wait(timeout: 10)
            return summary
        }

        deinit {
            if !stopped {
                child.signal(SIGKILL)
                child.wait(timeout: 5)
            }
        }
    }

    /// The closing summary's figures: `N events printed; lost L, dropped D, ...`.
    static func parseSummary(_ line: String) -> (printed: Int?, lost: UInt64?, dropped: UInt64?) {
        var printed: Int?
        var values: [Substring: UInt64] = [:]
        for part in line.split(whereSeparator: { $0 == ";" || $0 == "," }) {
            let words = part.split(separator: " ")
            guard words.count >= 2 else { continue }
            if words.count >= 3, words[1] == "events", words[2] == "printed" {
                printed = Int(words[0])
            } else if let value = UInt64(words[1]) {
                values[words[0]] = value
            }
        }
        return (printed, values["lost"], values["dropped"])
    }

    /// Polls `value` every 50 ms until it has not changed for 0.5 s (`same` says when two
    /// consecutive readings count as unchanged), at most 30 s. Returns the seconds waited and whether it settled.
    static func settle<Value>(_ value: () -> Value, same: (Value, Value) -> Bool) -> (seconds: Double, settled: Bool) {
        let start = Clock.now()
        var last = value()
        var lastChange = start
        while Clock.now() - start < 30 {
            usleep(50_000)
            // Each reading is compared with the one before it (50 ms earlier), so small steps
            // that `same` accepts do not add up to a change.
            let now = value()
            defer { last = now }
            if !same(now, last) {
                lastChange = Clock.now()
            } else if Clock.now() - lastChange >= 0.5 {
                return (Clock.now() - start, true)
            }
        }
        return (Clock.now() - start, false)
    }

    static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : -1
    }

    /// A JSON-lines file's complete lines: how many, how many carry `"pid":pid`, the sum of the
    /// number after `"key":` over those, and those counted by their `"event"` string (the TCP kind;
    /// a plain byte scan: the tools print one object per line, every key once).
    static func scan(_ path: String, pid: Int32, sum key: String? = nil) -> (lines: Int, matching: Int, sum: UInt64, kinds: EventCounts) {
        guard let data = FileManager.default.contents(atPath: path) else { return (0, 0, 0, EventCounts()) }
        let pidPattern = Array("\"pid\":".utf8)
        let sumPattern = key.map { Array("\"\($0)\":".utf8) }
        let eventPattern = Array("\"event\":\"".utf8)
        var lines = 0
        var matching = 0
        var sum: UInt64 = 0
        var kinds = EventCounts()
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            /// Where the bytes right after `pattern` start in bytes[from..<to], if the pattern is there.
            func end(of pattern: [UInt8], from: Int, to: Int) -> Int? {
                guard to - from >= pattern.count else { return nil }
                var index = from
                while index <= to - pattern.count {
                    if bytes[index] == pattern[0] {
                        var same = true
                        for offset in 1..<pattern.count where bytes[index + offset] != pattern[offset] {
                            same = false
                            break
                        }
                        if same { return index + pattern.count }
                    }
                    index += 1
                }
                return nil
            }
            /// The number right after `pattern` in bytes[from..<to], if the pattern is there.
            func number(after pattern: [UInt8], from: Int, to: Int) -> UInt64? {
                guard var cursor = end(of: pattern, from: from, to: to) else { return nil }
                var value: UInt64 = 0
                var digits = 0
                while cursor < to, bytes[cursor] >= 48, bytes[cursor] <= 57 {
                    value = value &* 10 &+ UInt64(bytes[cursor] - 48)
                    cursor += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            /// The kind named by the string right after `"event":"` in bytes[from..<to].
            func kind(from: Int, to: Int) -> TCPConnectionEvent.Kind? {
                guard let first = end(of: eventPattern, from: from, to: to) else { return nil }
                var cursor = first
                while cursor < to, bytes[cursor] != 34 { cursor += 1 }  // the closing quote
                return TCPConnectionEvent.Kind(rawValue: String(decoding: bytes[first..<cursor], as: UTF8.self))
            }
            var start = 0
            for index in 0..<bytes.count where bytes[index] == 10 {
                lines += 1
                if pid >= 0, let found = number(after: pidPattern, from: start, to: index), found == UInt64(pid) {
                    matching += 1
                    if let sumPattern, let value = number(after: sumPattern, from: start, to: index) { sum += value }
                    if let kind = kind(from: start, to: index) { kinds[kind] += 1 }
                }
                start = index + 1
            }
        }
        return (lines, matching, sum, kinds)
    }

    /// Stops the tool and fills in what the end of a run reads (CPU, window, memory, summary,
    /// file counts); returns the tool's closing summary line.
    @discardableResult
    static func finish(
        _ tool: Tool, _ run: inout Run, output: Output, path: String, cpu0: Double?, released: Double, lines0: Int, generator: Int32,
        sum key: String?
    ) throws -> String {
        guard let cpu0 else { throw BenchError("the tool (pid \(tool.pid)) was gone before the generator started") }
        // A file settles when its size stops changing; for /dev/null, when the tool is idle: its
        // CPU time (to the nanosecond) grows by less than 0.1 ms per 50 ms poll. Its idle wake-ups
        // use far less; draining a burst (about 1.5 µs per event) uses far more.
        let settled =
            output == .file
            ? settle({ fileSize(path) }, same: ==)
            : settle({ Clock.processCPU(pid: tool.pid) ?? 0 }, same: { abs($0 - $1) < 0.000_1 })
        (run.settleSeconds, run.settled) = settled
        guard let cpu1 = Clock.processCPU(pid: tool.pid), let memory = MemoryStatus.of(pid: tool.pid) else {
            throw BenchError("the tool (pid \(tool.pid)) exited during the run: \(tool.child.output.lastLines.joined(separator: " | "))")
        }
        run.cpuSeconds = cpu1 - cpu0
        run.windowSeconds = Clock.now() - released
        run.peakKB = memory.peakRSS
        run.steadyKB = memory.rss
        guard let summary = tool.stop() else {
            throw BenchError("no closing summary from the tool after SIGINT: \(tool.child.output.lastLines.joined(separator: " | "))")
        }
        (run.printed, run.lost, run.dropped) = parseSummary(summary)
        switch output {
        case .file:
            let counts = scan(path, pid: generator, sum: key)
            run.windowEvents = counts.lines - lines0
            run.counted = key == nil ? counts.matching : Int(counts.sum)
            if run.expectedKinds != nil { run.kinds = counts.kinds }
        case .devNull:
            run.windowEvents = run.printed ?? 0
        }
        return summary
    }

    /// The file the tools write to (a regular file, as users redirect to).
    static let outputFile = "/var/tmp/netevents-bench-tools-\(getpid()).jsonl"

    /// A burst under `tcp-events --json`, reporting `kinds` (nil: the tool's default, every kind).
    static func tcpRun(_ tools: Tools, _ options: Options, _ output: Output, kinds: Set<TCPConnectionEvent.Kind>? = nil) throws -> Run {
        let path = output == .file ? outputFile : "/dev/null"
        defer { if output == .file { unlink(path) } }
        let chosen = kinds.map { ["--events", TCPConnectionEvent.Kind.allCases.filter($0.contains).map(\.description).joined(separator: ",")] } ?? []
        let tool = try Tool(tools.tcpEvents, ["--json"] + chosen, output: path)
        let expected = EventCounts.burst(connections: options.connections, kinds: kinds ?? Set(TCPConnectionEvent.Kind.allCases))
        var run = Run(startup: tool.startup, expected: expected.total, connections: options.connections, expectedKinds: expected)
        var cpu0: Double?
        var released = 0.0
        var lines0 = 0
        var generator: Int32 = -1
        run.rate = try ChurnBenchmark.burst(tools.traffic, connections: options.connections) { pid in
            generator = pid
            if output == .file { lines0 = scan(path, pid: -1).lines }
            cpu0 = Clock.processCPU(pid: tool.pid)
            released = Clock.now()
        }
        try finish(tool, &run, output: output, path: path, cpu0: cpu0, released: released, lines0: lines0, generator: generator, sum: nil)
        return run
    }

    /// A flood under `tool --json > FILE`. `udp-events`: the flood's datagrams are the sum of
    /// `tx_packets` over its lines. `dns-events` (`dnsPort` given: the tool's `--port` and the
    /// flood's sink; else the flood goes to a port that is not DNS): the summary's `datagrams N`.
    static func floodRun(_ tool: String, _ tools: Tools, _ options: UDPBenchmark.Options, dnsPort: UInt16? = nil) throws -> Run {
        let path = outputFile
        defer { unlink(path) }
        let isDNS = tool == tools.dnsEvents
        let tool = try Tool(tool, ["--json"] + (dnsPort.map { ["--port", String($0)] } ?? []), output: path)
        var run = Run(startup: tool.startup)
        var cpu0: Double?
        var released = 0.0
        var lines0 = 0
        var generator: Int32 = -1
        let extra = (dnsPort.map { ["--sink-port", String($0), "--dns"] } ?? [])
        let flood = try UDPBenchmark.flood(tools.traffic, options, extra: extra) { pid in
            generator = pid
            lines0 = scan(path, pid: -1).lines
            cpu0 = Clock.processCPU(pid: tool.pid)
            released = Clock.now()
        }
        run.rate = flood.rate
        run.expected = flood.sentPackets
        let summary = try finish(
            tool, &run, output: .file, path: path, cpu0: cpu0, released: released, lines0: lines0, generator: generator,
            sum: isDNS ? nil : "tx_packets")
        if isDNS {
            // Every datagram the tool saw on a DNS port (the flood's, when it goes to one).
            let seen = keyValues(summary.replacingOccurrences(of: "datagrams ", with: "datagrams=")
                .replacingOccurrences(of: ",", with: " "))["datagrams"].flatMap(Int.init) ?? -1
            run.counted = seen
            if dnsPort == nil { run.expected = 0 }
        }
        return run
    }

    /// A median with its spread: "1.90 (1.80–2.00)".
    static func spread(_ values: [Double], _ decimals: Int = 2, scale: Double = 1) -> String {
        let scaled = values.map { $0 * scale }
        return "\(format(median(scaled), decimals)) (\(format(scaled.min() ?? 0, decimals))–\(format(scaled.max() ?? 0, decimals)))"
    }

    struct Row {
        var name: String
        var key: String
        var runs: [Run] = []
        /// The kinds given to `tcp-events --events` (nil: its default, every kind).
        var kinds: Set<TCPConnectionEvent.Kind>? = nil
    }

    static func run(_ options: Options) throws {
        say("## tools")
        say("")
        let tools = try locate()
        let load = readProcFile("/proc/loadavg").map { $0.split(separator: " ").prefix(3).joined(separator: " ") } ?? "?"
        let udpOptions = UDPBenchmark.Options(datagrams: options.datagrams, size: 64, runs: options.runs)
        say("`tcp-events --json` and `udp-events --json` as users run them (no filter, stopped with SIGINT), during "
            + "`netevents-traffic tcp-burst --count \(options.connections)` and `netevents-traffic udp-flood --count \(options.datagrams) --size 64`; "
            + "\(options.runs) runs per configuration, interleaved; median (min–max) reported; FILE is \(outputFile), deleted after each run; "
            + "tcp-events reports every kind by default (4 events per connection: connect, accept, 2 closes), "
            + "and close events only (2 per connection) with `--events close`")
        // The bench runs whatever was built last: say when, so a stale tool shows.
        for path in [tools.tcpEvents, tools.udpEvents, tools.traffic] {
            let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date).map { "\($0)" } ?? "?"
            say("using \(path) (built \(modified))")
        }
        var tcpUntraced: [Double] = []
        var udpUntraced: [Double] = []
        var dnsUntraced: [Double] = []
        var tcpFile = Row(name: "`tcp-events --json > FILE`", key: "tcp_file")
        var tcpNull = Row(name: "`tcp-events --json > /dev/null`", key: "tcp_null")
        var tcpCloseOnly = Row(
            name: "`tcp-events --json --events close > FILE` (close events only, as before connect and accept events)", key: "tcp_file_close_only",
            kinds: [.close])
        var udpFile = Row(name: "`udp-events --json > FILE`", key: "udp_file")
        var dnsOther = Row(name: "`dns-events --json > FILE`, the flood to a port that is not DNS", key: "dns_other")
        var dnsFlood = Row(name: "`dns-events --json --port P > FILE`, the flood of A queries to P", key: "dns_flood")

        func describe(_ run: Run) -> String {
            var text = "start-up \(format(run.startup * 1000, 0)) ms, CPU \(format(run.cpuSeconds, 3)) s over \(format(run.windowSeconds, 2)) s, \(run.windowEvents) events printed in the window, "
            text += "summary: \(run.printed.map(String.init) ?? "?") printed, lost \(run.lost.map(String.init) ?? "?"), dropped \(run.dropped.map(String.init) ?? "?"); "
            text += "VmHWM \(megabytes(run.peakKB)) MB, VmRSS \(megabytes(run.steadyKB)) MB; "
            text += run.settled ? "settled after \(format(run.settleSeconds, 1)) s" : "**did not settle within 30 s**"
            return text
        }

        for index in 1...options.runs {
            let plain = try ChurnBenchmark.burst(tools.traffic, connections: options.connections) { _ in }
            tcpUntraced.append(plain)
            say("run \(index) tcp-burst untraced: \(Int(plain)) conn/s")
            func tcp(_ row: inout Row, _ output: Output) throws {
                let run = try tcpRun(tools, options, output, kinds: row.kinds)
                row.runs.append(run)
                let counts = run.kinds.map { "generator's events printed \($0.summary(of: run.expectedKinds ?? EventCounts())), " } ?? ""
                say("run \(index) \(row.name): \(Int(run.rate)) conn/s, \(counts)\(format(run.cpuMicrosecondsPerEvent)) µs/event, "
                    + "\(format(run.cpuMicrosecondsPerConnection)) µs/connection; " + describe(run))
            }
            try tcp(&tcpFile, .file)
            try tcp(&tcpNull, .devNull)
            try tcp(&tcpCloseOnly, .file)
            let flood = try UDPBenchmark.flood(tools.traffic, udpOptions) { _ in }
            udpUntraced.append(flood.rate)
            say("run \(index) udp-flood untraced: \(Int(flood.rate)) datagrams/s")
            let udp = try floodRun(tools.udpEvents, tools, udpOptions)
            udpFile.runs.append(udp)
            say("run \(index) \(udpFile.name): \(Int(udp.rate)) datagrams/s, flood's datagrams counted \(udp.counted)/\(udp.expected), "
                + "\(format(udp.cpuNanosecondsPerDatagram, 1)) ns/datagram; " + describe(udp))
            let other = try floodRun(tools.dnsEvents, tools, udpOptions)
            dnsOther.runs.append(other)
            say("run \(index) \(dnsOther.name): \(Int(other.rate)) datagrams/s, DNS datagrams seen \(other.counted) (none sent), "
                + "\(format(other.cpuNanosecondsPerDatagram, 1)) ns/datagram; " + describe(other))
            let plainQueries = try UDPBenchmark.flood(
                tools.traffic, udpOptions, extra: ["--sink-port", String(try AgentBenchmark.freePort()), "--dns"]) { _ in }
            dnsUntraced.append(plainQueries.rate)
            say("run \(index) udp-flood --dns untraced: \(Int(plainQueries.rate)) queries/s")
            let queries = try floodRun(tools.dnsEvents, tools, udpOptions, dnsPort: try AgentBenchmark.freePort())
            dnsFlood.runs.append(queries)
            say("run \(index) \(dnsFlood.name): \(Int(queries.rate)) queries/s, seen \(queries.counted)/\(queries.expected), "
                + "\(format(queries.cpuMicrosecondsPerEvent, 2)) µs/event; " + describe(queries))
        }

        let tcpBaseline = median(tcpUntraced)
        let udpBaseline = median(udpUntraced)
        let dnsBaseline = median(dnsUntraced)
        func ratios(_ row: Row, _ baseline: Double) -> [Double] { row.runs.map { baseline > 0 ? $0.rate / baseline : 0 } }
        func missed(_ row: Row) -> String {
            let lost = row.runs.map(\.lost)
            let dropped = row.runs.map(\.dropped)
            let total = { (values: [UInt64?]) in values.contains(nil) ? "?" : String(values.compactMap { $0 }.reduce(0, +)) }
            return "\(total(lost)) / \(total(dropped))"
        }
        func exactRuns(_ row: Row) -> Int { row.runs.filter(\.exact).count }
        /// Each kind's median over the runs, against what the tool reports for the burst.
        func kinds(_ row: Row) -> String {
            EventCounts.medians(of: row.runs.compactMap(\.kinds)).summary(of: row.runs.first?.expectedKinds ?? EventCounts())
        }
        /// "1.61 (1.33–1.92) µs/event, 6.44 (5.32–7.68) µs/connection"
        func tcpCPU(_ row: Row) -> String {
            "\(spread(row.runs.map(\.cpuMicrosecondsPerEvent))) µs/event, \(spread(row.runs.map(\.cpuMicrosecondsPerConnection))) µs/connection"
        }
        func unsettled(_ row: Row) -> String {
            let count = row.runs.filter { !$0.settled }.count
            return count == 0 ? "" : " (**\(count) run(s) did not settle within 30 s**)"
        }
        let runs = options.runs
        say("")
        say("Median (min–max) of \(runs) runs; load average at the start of the section: \(load).")
        say("")
        say("| tool | generator rate | traced / untraced | tool CPU | printed / expected | lost / dropped (all runs) |")
        say("| --- | ---: | ---: | ---: | ---: | ---: |")
        say("| none (`tcp-burst --count \(options.connections)`) | \(spread(tcpUntraced, 0)) conn/s | 1.00 | - | - | - |")
        for row in [tcpFile, tcpNull, tcpCloseOnly] {
            let counts: String
            if row.runs.contains(where: { $0.kinds != nil }) {
                counts = "generator's events (median per kind) \(kinds(row)) (\(exactRuns(row)) of \(runs) runs exact)"
            } else {
                let clean = !row.runs.contains(where: \.missed)
                counts = "\(spread(row.runs.map { Double($0.printed ?? 0) }, 0)) printed (every process; the generator caused "
                    + "\(row.runs.first?.expected ?? 0)), lost and dropped must be 0: \(clean ? "yes" : "**no**")"
            }
            say("| \(row.name) | \(spread(row.runs.map(\.rate), 0)) conn/s | \(spread(ratios(row, tcpBaseline))) | \(tcpCPU(row)) | "
                + "\(counts)\(unsettled(row)) | \(missed(row)) |")
        }
        say("| none (`udp-flood --count \(options.datagrams) --size 64`) | \(spread(udpUntraced, 0)) datagrams/s | 1.00 | - | - | - |")
        say("| \(udpFile.name) | \(spread(udpFile.runs.map(\.rate), 0)) datagrams/s | \(spread(ratios(udpFile, udpBaseline))) | "
            + "\(spread(udpFile.runs.map(\.cpuNanosecondsPerDatagram), 1)) ns/datagram (CPU \(spread(udpFile.runs.map(\.cpuSeconds), 2)) s over "
            + "\(spread(udpFile.runs.map(\.windowSeconds), 1)) s, \(spread(udpFile.runs.map { Double($0.windowEvents) }, 0)) events printed) | "
            + "flood's datagrams \(spread(udpFile.runs.map { Double($0.counted) }, 0)) / \(options.datagrams) (\(exactRuns(udpFile)) of \(runs) runs exact)\(unsettled(udpFile)) | "
            + "\(missed(udpFile)) |")
        say("| \(dnsOther.name) | \(spread(dnsOther.runs.map(\.rate), 0)) datagrams/s | \(spread(ratios(dnsOther, udpBaseline))) | "
            + "\(spread(dnsOther.runs.map(\.cpuNanosecondsPerDatagram), 1)) ns/datagram | DNS datagrams seen \(spread(dnsOther.runs.map { Double($0.counted) }, 0)) "
            + "(must be 0: \(dnsOther.runs.allSatisfy { $0.counted == 0 } ? "yes" : "**no**"))\(unsettled(dnsOther)) | \(missed(dnsOther)) |")
        say("| none (`udp-flood --dns --count \(options.datagrams) --sink-port P`) | \(spread(dnsUntraced, 0)) queries/s | 1.00 | - | - | - |")
        say("| \(dnsFlood.name) | \(spread(dnsFlood.runs.map(\.rate), 0)) queries/s | \(spread(ratios(dnsFlood, dnsBaseline))) | "
            + "\(spread(dnsFlood.runs.map(\.cpuMicrosecondsPerEvent))) µs/event (\(spread(dnsFlood.runs.map { Double($0.windowEvents) }, 0)) events printed) | "
            + "queries seen \(spread(dnsFlood.runs.map { Double($0.counted) }, 0)) / \(options.datagrams) (\(exactRuns(dnsFlood)) of \(runs) runs exact)\(unsettled(dnsFlood)) | "
            + "\(missed(dnsFlood)) |")
        say("")
        say("Tool CPU: its process CPU-time clock (clock_getcpuclockid, nanoseconds, every thread) over the window.")
        say("")
        say("| tool | spawn → `Tracing` | peak RSS (VmHWM) | steady RSS (VmRSS, end of window) |")
        say("| --- | ---: | ---: | ---: |")
        for row in [tcpFile, tcpNull, tcpCloseOnly, udpFile, dnsOther, dnsFlood] {
            say("| \(row.name) | \(spread(row.runs.map(\.startup), 0, scale: 1000)) ms | \(spread(row.runs.map { Double($0.peakKB) }, 1, scale: 1 / 1024)) MB | "
                + "\(spread(row.runs.map { Double($0.steadyKB) }, 1, scale: 1 / 1024)) MB |")
        }
        say("")

        var result = "RESULT section=tools connections=\(options.connections) datagrams=\(options.datagrams) runs=\(runs)"
        result += " load=" + load.split(separator: " ").joined(separator: "/")
        func add(_ key: String, _ value: String) { result += " \(key)=\(value)" }
        func add(_ key: String, _ values: [Double], _ decimals: Int) {
            add(key, format(median(values), decimals))
            add(key + "_min", format(values.min() ?? 0, decimals))
            add(key + "_max", format(values.max() ?? 0, decimals))
        }
        add("tcp_untraced_rate", tcpUntraced, 0)
        add("udp_untraced_rate", udpUntraced, 0)
        add("dns_untraced_rate", dnsUntraced, 0)
        for (row, baseline) in [
            (tcpFile, tcpBaseline), (tcpNull, tcpBaseline), (tcpCloseOnly, tcpBaseline), (udpFile, udpBaseline), (dnsOther, udpBaseline),
            (dnsFlood, dnsBaseline),
        ] {
            let key = row.key
            add(key + "_rate", row.runs.map(\.rate), 0)
            add(key + "_ratio", ratios(row, baseline), 3)
            if key == "udp_file" || key == "dns_other" {
                add(key + "_cpu_ns", row.runs.map(\.cpuNanosecondsPerDatagram), 2)
            } else {
                add(key + "_cpu_us", row.runs.map(\.cpuMicrosecondsPerEvent), 3)
                add(key + "_cpu_us_per_conn", row.runs.map(\.cpuMicrosecondsPerConnection), 3)
            }
            add(key + "_cpu_s", row.runs.map(\.cpuSeconds), 3)
            add(key + "_window_s", format(median(row.runs.map(\.windowSeconds)), 2))
            add(key + "_window_events", format(median(row.runs.map { Double($0.windowEvents) }), 0))
            add(key + "_printed", format(median(row.runs.map { Double($0.printed ?? 0) }), 0))
            if key != "tcp_null" {
                add(key + "_counted", format(median(row.runs.map { Double($0.counted) }), 0))
                add(key + "_expected", String(row.runs.first?.expected ?? 0))
                add(key + "_exact_runs", String(exactRuns(row)))
            }
            if let expected = row.runs.first?.expectedKinds {
                if row.runs.contains(where: { $0.kinds != nil }) {
                    add(key + "_kinds", EventCounts.medians(of: row.runs.compactMap(\.kinds)).resultValue)
                }
                add(key + "_expected_kinds", expected.resultValue)
            }
            let missedParts = missed(row).split(separator: "/").map { $0.trimmingCharacters(in: .whitespaces) }
            add(key + "_lost", missedParts.first ?? "?")
            add(key + "_dropped", missedParts.last ?? "?")
            add(key + "_unsettled", String(row.runs.filter { !$0.settled }.count))
            add(key + "_startup_ms", row.runs.map { $0.startup * 1000 }, 0)
            add(key + "_peak_kb", row.runs.map { Double($0.peakKB) }, 0)
            add(key + "_steady_kb", row.runs.map { Double($0.steadyKB) }, 0)
        }
        say(result)
    }
}
