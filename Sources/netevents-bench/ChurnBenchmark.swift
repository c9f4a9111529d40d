import Foundation
import Glibc
import Synchronization
import TCPEvent

/// `tcp-churn`: the traffic generator's `tcp-burst` (N loopback connections opened and closed as
/// fast as one thread can, one byte each way) run untraced, under our in-process TCPMonitor, and
/// under BCC's `tcplife`.
///
/// Per run: the generator's own rate (conn/s); the events delivered with the generator's pid,
/// counted by kind against what users get by default, 4 per connection (connect and close of the
/// client end, accept and close of the server end; tcplife prints only the 2 closes); the tracer's
/// CPU time during the burst and until its last event, divided by every event it handled in that
/// window (all processes, since nothing is filtered), and by the generator's connections (which
/// compares with figures from before the connect and accept events, at 2 events per connection). Our CPU is
/// `getrusage(RUSAGE_SELF)` of this process (poll thread, decoding, delivery thread, callback);
/// tcplife's is `utime + stime` of its Python process from `/proc/PID/stat`. Kernel-side BPF time
/// runs in the generator's context and shows in the rate, not in either CPU figure. For our
/// tracer, each of the generator's close events also gives a latency: from the close (the kernel's
/// timestamp, in wall-clock time) to the callback, which the drain interval bounds from below.
///
/// The kernel side of each tracer is measured too, in one extra run per tracer with the kernel's
/// BPF_ENABLE_STATS accounting on (``KernelProgramStats``; it slows every program run a little, so
/// the timed runs go without it): every program's run time and run count over the same window,
/// reported as ns per run, runs per connection, and µs of kernel time per connection.
///
/// tcplife comes from Debian's bpfcc-tools. Where it is missing, its column is skipped with the
/// reason printed (or, with `--install-tcplife`, installed with apt-get first).
enum ChurnBenchmark {
    struct Options {
        var connections = 20_000
        var runs = 3
        var tcplife = true
        /// When tcplife is missing, install it (apt-get) instead of skipping its column.
        var installTCPLife = false
        /// Also run TCPMonitor with other drain intervals (0 and 5 ms: the latency / CPU trade-off),
        /// without accept tracking, without accept and first-I/O tracking, and over a perf buffer.
        var variants = false
        /// A kernel header tree for tcplife (its BCC_KERNEL_SOURCE), tried before the others.
        var tcplifeHeaders: String?
    }

    struct Run {
        var rate: Double
        var connections = 0  // the burst's connections
        var expected = EventCounts()  // what the tracer should deliver for them
        var delivered = EventCounts()  // events with the generator's pid, by kind
        var events: Int = 0  // every event the tracer handled in the window
        var cpuSeconds: Double = 0
        var lost: UInt64 = 0
        var dropped: UInt64 = 0
        /// From the close (the kernel's timestamp) to the callback, for the generator's events; ms.
        var latencyMedian: Double?
        var latencyP99: Double?
        /// The tracer's eBPF programs over the window (nil when the kernel's statistics are off).
        var kernel: [KernelProgramStats.Delta]?

        var cpuMicrosecondsPerEvent: Double { events > 0 ? cpuSeconds * 1e6 / Double(events) : 0 }
        var cpuMicrosecondsPerConnection: Double { connections > 0 ? cpuSeconds * 1e6 / Double(connections) : 0 }
        var deliveredFraction: Double { expected.total > 0 ? Double(delivered.total) / Double(expected.total) : 0 }
        var exact: Bool { delivered == expected }
    }

    /// Runs one burst: start it paused, call `ready(pid)`, let it go, return its rate.
    static func burst(_ traffic: String, connections: Int, ready: (Int32) -> Void) throws -> Double {
        let child = try Child.paused(
            traffic, ["tcp-burst", "--count", String(connections), "--wait"], readyLine: "listening", ready: ready)
        let done = child.output.waitForLine(timeout: Double(connections) / 500 + 60, where: { $0.hasPrefix("done") })
        child.wait(timeout: 10)
        guard let done, let rate = keyValues(done)["rate"].flatMap({ Double($0) }) else {
            throw BenchError("tcp-burst failed: \(child.output.lastLines.joined(separator: " | "))")
        }
        return rate
    }

    /// Waits until `count()` reaches `target`, or has not grown for `quiet` seconds (bounded).
    static func settle(target: Int, quiet: Double = 1.0, limit: Double = 60, _ count: () -> Int) {
        let deadline = Clock.now() + limit
        var last = count()
        var lastChange = Clock.now()
        while Clock.now() < deadline {
            let now = count()
            if now >= target { return }
            if now != last {
                last = now
                lastChange = Clock.now()
            } else if Clock.now() - lastChange > quiet {
                return
            }
            usleep(20_000)
        }
    }

    static func untraced(_ traffic: String, _ options: Options) throws -> Run {
        Run(rate: try burst(traffic, connections: options.connections) { _ in })
    }

    /// The cross-check's own cost, alone (no program): the perf events counting the TCP closes
    /// that `unseenEvents` holds against the program's runs, open for the burst.
    static func closeCountOnly(_ traffic: String, _ options: Options) throws -> Run {
        let counter = try TracepointCounter(TCPKind.closeCrossCheck)
        defer { counter.freeze() }
        return Run(rate: try burst(traffic, connections: options.connections) { _ in })
    }

    final class Tally: Sendable {
        struct Mine {
            var kinds = EventCounts()
            /// Delivery latencies of the generator's close events, in ns.
            var latencies: [Int64] = []
        }
        let target = Atomic<Int32>(-1)
        let total = Atomic<Int>(0)
        /// The generator's events.
        let mine = Locked(Mine())
    }

    /// The value below which `fraction` of `values` lie (nearest rank); nil for none.
    static func percentile(_ values: [Int64], _ fraction: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return Double(sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)])
    }

    static func ours(_ traffic: String, _ options: Options, _ configuration: TCPMonitor.Configuration) throws -> Run {
        let monitor = try TCPMonitor(configuration: configuration)  // no filter: trace every process
        let tally = Tally()
        tally.mine.withLock { $0.latencies.reserveCapacity(2 * options.connections) }
        try monitor.start { event in
            tally.total.add(1, ordering: .relaxed)
            if event.pid == tally.target.load(ordering: .relaxed) {
                // Close latencies only, as before connect and accept events existed.
                let latency = event.kind == .close ? WallClock.now(CLOCK_REALTIME) - Int64(bitPattern: event.timeNanoseconds) : nil
                tally.mine.withLock { mine in
                    mine.kinds[event.kind] += 1
                    if let latency { mine.latencies.append(latency) }
                }
            }
        }
        defer { monitor.stop() }
        var cpu0 = 0.0
        var total0 = 0
        var programs0: [KernelProgramStats.Program] = []
        var run = Run(
            rate: try burst(traffic, connections: options.connections) { pid in
                tally.target.store(pid, ordering: .relaxed)
                total0 = tally.total.load(ordering: .relaxed)
                programs0 = KernelProgramStats.programs(of: getpid())
                cpu0 = Clock.processCPU()
            })
        run.connections = options.connections
        // No accept without a claim: accept(2) or the first I/O marks the server end's accept.
        run.expected = EventCounts.burst(
            connections: options.connections, kinds: configuration.events, accepts: configuration.tracksAccept || configuration.tracksFirstIO)
        settle(target: run.expected.total) { tally.mine.withLock { $0.kinds.total } }
        run.cpuSeconds = Clock.processCPU() - cpu0
        run.kernel = KernelProgramStats.delta(from: programs0, to: KernelProgramStats.programs(of: getpid()))
        run.events = tally.total.load(ordering: .relaxed) - total0
        let (delivered, latencies) = tally.mine.withLock { ($0.kinds, $0.latencies) }
        run.delivered = delivered
        run.latencyMedian = percentile(latencies, 0.5).map { $0 / 1e6 }
        run.latencyP99 = percentile(latencies, 0.99).map { $0 / 1e6 }
        let statistics = monitor.statistics
        run.lost = statistics.lostSamples
        run.dropped = statistics.droppedEvents
        return run
    }

    final class LineTally: Sendable {
        let started = Atomic<Bool>(false)
        let perPID = Locked<[Int32: Int]>([:])
        let total = Atomic<Int>(0)
    }

    /// BCC's tcplife as Debian's bpfcc-tools installs it (`NETEVENTS_BENCH_TCPLIFE` overrides it).
    static let tcplifePath = ProcessInfo.processInfo.environment["NETEVENTS_BENCH_TCPLIFE"] ?? "/usr/sbin/tcplife-bpfcc"

    /// The header tree tcplife compiled with last time (BCC 0.26's tcplife fails on some newer
    /// trees, e.g. Debian's 6.12 headers, where our own program compiles).
    static let tcplifeHeaders = Locked<String?>(nil)

    /// A header tree for tcplife given on the command line (`--tcplife-headers`).
    static let tcplifeGiven = Locked<String?>(nil)

    /// Header trees to try for tcplife: `--tcplife-headers` if given, the one our library picks, then
    /// every merged tree in its cache, newest first.
    static func headerCandidates() throws -> [String?] {
        let cache = "/var/cache/swift-net-events"
        let merged = ((try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? [])
            .filter { $0.hasPrefix("kernel-headers-") && FileManager.default.fileExists(atPath: "\(cache)/\($0)/include") }
            .sorted { KernelVersion(release: String($0.dropFirst(15))) > KernelVersion(release: String($1.dropFirst(15))) }
            .map { "\(cache)/\($0)" }
        var candidates: [String?] = []
        // A tree given by hand (--tcplife-headers) is tried first.
        if let given = tcplifeGiven.withLock({ $0 }) { candidates.append(given) }
        if let known = tcplifeHeaders.withLock({ $0 }), !candidates.contains(known) { candidates.append(known) }
        if let located = try? KernelHeaders.locate() { candidates.append(located.path) } else { candidates.append(nil) }
        for path in merged where !candidates.contains(path) { candidates.append(path) }
        return candidates
    }

    /// Starts tcplife and waits for its header line, trying header trees until one compiles.
    static func startTCPLife(_ tally: LineTally) throws -> Child {
        guard access(tcplifePath, X_OK) == 0 else { throw BenchError("\(tcplifePath) is missing") }
        var failures: [String] = []
        for headers in try headerCandidates() {
            var environment = ["PYTHONUNBUFFERED": "1"]
            if let headers { environment["BCC_KERNEL_SOURCE"] = headers }
            let tracer = try Child(tcplifePath, [], environment: environment) { line in
                if !tally.started.load(ordering: .relaxed) {
                    if line.hasPrefix("PID") { tally.started.store(true, ordering: .relaxed) }
                    return
                }
                tally.total.add(1, ordering: .relaxed)
                guard let first = line.split(separator: " ", maxSplits: 1).first, let pid = Int32(first) else { return }
                tally.perPID.withLock { $0[pid, default: 0] += 1 }
            }
            if tracer.output.waitForLine(timeout: 120, where: { $0.hasPrefix("PID") }) != nil {
                if tcplifeHeaders.withLock({ $0 }) != headers {
                    say("tcplife compiles with BCC_KERNEL_SOURCE=\(headers ?? "(unset)")")
                    tcplifeHeaders.withLock { $0 = headers }
                }
                return tracer
            }
            tracer.signal(SIGKILL)
            tracer.wait(timeout: 5)
            failures.append("\(headers ?? "(unset)"): \(tracer.output.lastLines.suffix(2).joined(separator: " | "))")
        }
        throw BenchError("tcplife did not start with any header tree: " + failures.joined(separator: "; "))
    }

    /// Makes sure tcplife can run: installs it if asked to, then starts it once (which also finds
    /// the header tree it compiles with). Returns nil when it runs, else why its column is skipped.
    static func prepareTCPLife(_ options: Options) -> String? {
        if access(tcplifePath, X_OK) != 0 {
            let install = "apt-get install -y bpfcc-tools python3-bpfcc"
            guard options.installTCPLife else {
                return "\(tcplifePath) not found; install it with `\(install)` (Debian/Ubuntu) or run with --install-tcplife"
            }
            say("tcplife: \(tcplifePath) not found; installing it: \(install)")
            guard getuid() == 0, access("/usr/bin/apt-get", X_OK) == 0 else {
                return "\(tcplifePath) not found and cannot install it (needs root and /usr/bin/apt-get)"
            }
            do {
                let apt = try Child(
                    "/usr/bin/apt-get", ["install", "-y", "bpfcc-tools", "python3-bpfcc"],
                    environment: ["DEBIAN_FRONTEND": "noninteractive"]) { line in say("  apt-get: \(line)") }
                apt.output.waitForEnd(timeout: 900)
                let status = apt.wait(timeout: 10)
                if status != 0 { return "`\(install)` failed (wait status \(status)); tcplife skipped" }
            } catch {
                return "`\(install)` could not run: \(error)"
            }
            guard access(tcplifePath, X_OK) == 0 else { return "\(install) did not provide \(tcplifePath)" }
        }
        do {
            let tracer = try startTCPLife(LineTally())
            tracer.signal(SIGINT)
            tracer.wait(timeout: 10)
            return nil
        } catch {
            return "\(error)"
        }
    }

    static func tcplife(_ traffic: String, _ options: Options) throws -> Run {
        let tally = LineTally()
        let tracer = try startTCPLife(tally)
        defer {
            tracer.signal(SIGINT)
            tracer.wait(timeout: 10)
        }
        var cpu0 = 0.0
        var total0 = 0
        var burstPID: Int32 = 0
        var programs0: [KernelProgramStats.Program] = []
        var run = Run(
            rate: try burst(traffic, connections: options.connections) { pid in
                burstPID = pid
                total0 = tally.total.load(ordering: .relaxed)
                programs0 = KernelProgramStats.programs(of: tracer.pid)
                cpu0 = Clock.processCPU(pid: tracer.pid) ?? 0
            })
        let target = burstPID
        // tcplife prints a line per closed socket: 2 closes per connection, no other kind.
        run.connections = options.connections
        run.expected = EventCounts.burst(connections: options.connections, kinds: [.close])
        settle(target: run.expected.total, quiet: 2) { tally.perPID.withLock { $0[target] ?? 0 } }
        run.cpuSeconds = (Clock.processCPU(pid: tracer.pid) ?? cpu0) - cpu0
        run.kernel = KernelProgramStats.delta(from: programs0, to: KernelProgramStats.programs(of: tracer.pid))
        run.events = tally.total.load(ordering: .relaxed) - total0
        run.delivered[.close] = tally.perPID.withLock { $0[target] ?? 0 }
        return run
    }

    /// "2 ms" for a whole number of milliseconds.
    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let value = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        return value == value.rounded() ? "\(Int(value)) ms" : "\(format(value, 3)) ms"
    }

    struct Tracer {
        var name: String
        var key: String
        /// Whether it delivers events to count (not the untraced run, not the close count alone).
        var delivers = true
        var measure: () throws -> Run
    }

    static func run(_ options: Options) throws {
        let traffic = try siblingExecutable("netevents-traffic")
        tcplifeGiven.withLock { $0 = options.tcplifeHeaders }
        say("## tcp-churn")
        say("")
        say("`netevents-traffic tcp-burst --count \(options.connections)`, \(options.runs) runs per configuration, interleaved; median reported; "
            + "events of the generator counted by kind: TCPMonitor's default configuration reports all kinds, "
            + "4 per connection (connect, accept, 2 closes); tcplife prints the 2 closes")
        let defaults = TCPMonitor.Configuration()
        var tracers = [
            Tracer(name: "none", key: "untraced", delivers: false) { try untraced(traffic, options) },
            Tracer(name: "the kernel's count of TCP closes alone (perf events, no program: the cost of `unseenEvents`)", key: "closecount", delivers: false) {
                try closeCountOnly(traffic, options)
            },
            Tracer(name: "TCPMonitor (in-process, no filter, drainInterval \(milliseconds(defaults.drainInterval)))", key: "ours") {
                try ours(traffic, options, defaults)
            },
        ]
        var tcplifeSkipped: String?
        if options.tcplife {
            if let reason = prepareTCPLife(options) {
                // A short form for the RESULT line (one word); the reason itself is printed here.
                tcplifeSkipped = access(tcplifePath, X_OK) != 0 ? "not_installed" : "did_not_start"
                say("tcplife column skipped: \(reason)")
            } else {
                tracers.append(Tracer(name: "BCC tcplife (Python)", key: "tcplife") { try tcplife(traffic, options) })
            }
        } else {
            tcplifeSkipped = "--no-tcplife"
            say("tcplife column skipped: --no-tcplife")
        }
        if options.variants {
            var drainNone = defaults
            drainNone.drainInterval = .zero
            var drainFive = defaults
            drainFive.drainInterval = .milliseconds(5)
            var noAccept = defaults
            noAccept.tracksAccept = false
            var noClaims = noAccept
            noClaims.tracksFirstIO = false
            var perf = defaults
            perf.transport = .perfBuffer
            tracers += [
                Tracer(name: "TCPMonitor, drainInterval 0 (a drain per wakeup)", key: "ours_drain0") { try ours(traffic, options, drainNone) },
                Tracer(name: "TCPMonitor, drainInterval 5 ms", key: "ours_drain5") { try ours(traffic, options, drainFive) },
                Tracer(name: "TCPMonitor, tracksAccept off", key: "ours_noaccept") { try ours(traffic, options, noAccept) },
                Tracer(name: "TCPMonitor, tracksAccept and tracksFirstIO off", key: "ours_noclaims") { try ours(traffic, options, noClaims) },
                Tracer(name: "TCPMonitor, perf buffer", key: "ours_perf") { try ours(traffic, options, perf) },
            ]
        }
        var runs = [[Run]](repeating: [], count: tracers.count)
        for index in 1...options.runs {
            for (slot, tracer) in tracers.enumerated() {
                let run = try tracer.measure()
                runs[slot].append(run)
                var line = "run \(index) \(tracer.name): \(Int(run.rate)) conn/s"
                if slot > 0 && tracer.delivers {
                    line += ", events delivered \(run.delivered.summary(of: run.expected)), \(run.events) events in all, "
                        + "CPU \(format(run.cpuSeconds, 3)) s = \(format(run.cpuMicrosecondsPerEvent)) µs/event, "
                        + "\(format(run.cpuMicrosecondsPerConnection)) µs/connection"
                    if tracer.key != "tcplife" { line += ", lost \(run.lost), dropped \(run.dropped)" }
                    if let p50 = run.latencyMedian, let p99 = run.latencyP99 {
                        line += ", latency median \(format(p50, 2)) ms, p99 \(format(p99, 2)) ms"
                    }
                    if let kernel = run.kernel, !kernel.isEmpty {
                        line += "; kernel: " + KernelProgramStats.describe(kernel, per: options.connections, unit: "connection")
                    }
                }
                say(line)
            }
        }
        // The kernel side: one more run of each tracer with the kernel's per-program run time on
        // (BPF_ENABLE_STATS slows every program run a little, so the runs above go without it).
        var kernelRuns: [String: [KernelProgramStats.Delta]] = [:]
        do {
            let statistics = try KernelProgramStats.enable()
            defer { close(statistics) }
            for tracer in tracers.dropFirst() where tracer.key == "ours" || tracer.key == "tcplife" {
                let run = try tracer.measure()
                kernelRuns[tracer.key] = run.kernel
                say("kernel run \(tracer.name): " + (run.kernel.map { KernelProgramStats.describe($0, per: options.connections, unit: "connection") } ?? "-"))
            }
        } catch {
            say("kernel-side program times not measured: \(error)")
        }
        let baseline = median(runs[0].map(\.rate))
        say("")
        var kernelRows: [String] = []
        say("| tracer | conn/s | traced / untraced | events delivered (median per kind) | tracer CPU µs/event | tracer CPU µs/connection | close → callback median / p99 |")
        say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        say("| none | \(Int(baseline)) | 1.00 | - | - | - | - |")
        var result = "RESULT section=churn connections=\(options.connections) runs=\(options.runs) untraced_rate=\(Int(baseline))"
        if let tcplifeSkipped { result += " tcplife_skipped=" + tcplifeSkipped }
        for (slot, tracer) in tracers.enumerated().dropFirst() {
            let rate = median(runs[slot].map(\.rate))
            let ratio = median(runs[slot].map { $0.rate / baseline })
            guard tracer.delivers else {
                say("| \(tracer.name) | \(Int(rate)) | \(format(ratio)) | - | - | - | - |")
                result += " \(tracer.key)_rate=\(Int(rate)) \(tracer.key)_ratio=\(format(ratio, 3))"
                continue
            }
            let delivered = median(runs[slot].map(\.deliveredFraction))
            let kinds = EventCounts.medians(of: runs[slot].map(\.delivered))
            let expected = runs[slot][0].expected
            let exactRuns = runs[slot].filter(\.exact).count
            let cpu = median(runs[slot].map(\.cpuMicrosecondsPerEvent))
            let cpuPerConnection = median(runs[slot].map(\.cpuMicrosecondsPerConnection))
            let p50 = runs[slot].compactMap(\.latencyMedian)
            let p99 = runs[slot].compactMap(\.latencyP99)
            let latency = p50.isEmpty ? "-" : "\(format(median(p50), 2)) / \(format(median(p99), 2)) ms"
            say("| \(tracer.name) | \(Int(rate)) | \(format(ratio)) | \(format(delivered * 100, 2))%: \(kinds.summary(of: expected)); "
                + "\(exactRuns) of \(options.runs) runs exact | \(format(cpu)) | \(format(cpuPerConnection)) | \(latency) |")
            result += " \(tracer.key)_rate=\(Int(rate)) \(tracer.key)_ratio=\(format(ratio, 3))"
                + " \(tracer.key)_delivered=\(format(delivered, 5)) \(tracer.key)_kinds=\(kinds.resultValue)"
                + " \(tracer.key)_expected_kinds=\(expected.resultValue) \(tracer.key)_exact_runs=\(exactRuns)"
                + " \(tracer.key)_cpu_us=\(format(cpu, 3)) \(tracer.key)_cpu_us_per_conn=\(format(cpuPerConnection, 3))"
            if let kernel = kernelRuns[tracer.key], !kernel.isEmpty {
                // µs of kernel time per connection, and each program's ns per run.
                let perConnection = Double(kernel.reduce(0) { $0 + $1.nanoseconds }) / Double(options.connections) / 1000
                result += " \(tracer.key)_kernel_us_per_conn=\(format(perConnection, 3))"
                for delta in kernel {
                    result += " \(tracer.key)_ns_per_run_\(delta.name.isEmpty ? "unnamed" : delta.name)=\(format(delta.nanosecondsPerRun, 0))"
                }
                kernelRows.append("| \(tracer.name) | " + KernelProgramStats.describe(kernel, per: options.connections, unit: "connection") + " |")
            }
            if tracer.key.hasPrefix("ours") {
                result += " \(tracer.key)_lost=\(runs[slot].map(\.lost).reduce(0, +)) \(tracer.key)_dropped=\(runs[slot].map(\.dropped).reduce(0, +))"
                if !p50.isEmpty { result += " \(tracer.key)_latency_p50_ms=\(format(median(p50), 3)) \(tracer.key)_latency_p99_ms=\(format(median(p99), 3))" }
            }
        }
        if !kernelRows.isEmpty {
            say("")
            say("Kernel side (one extra run with BPF_ENABLE_STATS on): each program's ns per run × runs per connection")
            say("")
            say("| tracer | programs |")
            say("| --- | --- |")
            for row in kernelRows { say(row) }
        }
        say("")
        say(result)
    }
}
