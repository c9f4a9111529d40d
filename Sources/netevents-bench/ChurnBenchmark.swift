import BCCRuntime
import Foundation
import Glibc
import Synchronization
import TCPEvent

/// `tcp-churn`: the traffic generator's `tcp-burst` (N loopback connections opened and closed as
/// fast as one thread can, one byte each way) run untraced, under our in-process TCPMonitor, and
/// under BCC's `tcplife`.
///
/// Per run: the generator's own rate (conn/s); connection ends delivered with the generator's pid
/// (2 per connection); the tracer's CPU time during the burst and until its last event, divided by
/// every event it handled in that window (all processes, since nothing is filtered). Our CPU is
/// `getrusage(RUSAGE_SELF)` of this process (poll thread, decoding, delivery thread, callback);
/// tcplife's is `utime + stime` of its Python process from `/proc/PID/stat`. Kernel-side BPF time
/// runs in the generator's context and shows in the rate, not in either CPU figure.
enum ChurnBenchmark {
    struct Options {
        var connections = 20_000
        var runs = 3
        var tcplife = true
        /// Also run TCPMonitor without accept tracking, without accept and first-I/O tracking, and
        /// over a perf buffer, to see where the kernel-side cost goes.
        var variants = false
    }

    struct Run {
        var rate: Double
        var delivered: Int = 0  // connection ends with the generator's pid
        var events: Int = 0  // every event the tracer handled in the window
        var cpuSeconds: Double = 0
        var lost: UInt64 = 0
        var dropped: UInt64 = 0

        var cpuMicrosecondsPerEvent: Double { events > 0 ? cpuSeconds * 1e6 / Double(events) : 0 }
    }

    /// Runs one burst: start it paused, call `ready(pid)`, let it go, return its rate.
    static func burst(_ traffic: String, connections: Int, ready: (Int32) -> Void) throws -> Double {
        let child = try Child(traffic, ["tcp-burst", "--count", String(connections), "--wait"], stdin: true)
        guard let listening = child.output.waitForLine(timeout: 10, where: { $0.hasPrefix("listening") }),
            let pid = keyValues(listening)["pid"].flatMap({ Int32($0) })
        else {
            child.wait(timeout: 1)
            throw BenchError("tcp-burst did not start: \(child.output.lastLines.joined(separator: " | "))")
        }
        ready(pid)
        child.send("go")
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

    final class Tally: Sendable {
        let target = Atomic<Int32>(-1)
        let total = Atomic<Int>(0)
        let mine = Atomic<Int>(0)
    }

    static func ours(_ traffic: String, _ options: Options, _ configuration: TCPMonitor.Configuration) throws -> Run {
        let monitor = try TCPMonitor(configuration: configuration)  // no filter: trace every process
        let tally = Tally()
        try monitor.start { event in
            tally.total.add(1, ordering: .relaxed)
            if event.pid == tally.target.load(ordering: .relaxed) { tally.mine.add(1, ordering: .relaxed) }
        }
        defer { monitor.stop() }
        var cpu0 = 0.0
        var total0 = 0
        var run = Run(
            rate: try burst(traffic, connections: options.connections) { pid in
                tally.target.store(pid, ordering: .relaxed)
                total0 = tally.total.load(ordering: .relaxed)
                cpu0 = Clock.processCPU()
            })
        settle(target: 2 * options.connections) { tally.mine.load(ordering: .relaxed) }
        run.cpuSeconds = Clock.processCPU() - cpu0
        run.events = tally.total.load(ordering: .relaxed) - total0
        run.delivered = tally.mine.load(ordering: .relaxed)
        let statistics = monitor.statistics
        run.lost = statistics.lostSamples
        run.dropped = statistics.droppedEvents
        return run
    }

    final class LineTally: Sendable {
        let started = Atomic<Bool>(false)
        let perPID = Mutex<[Int32: Int]>([:])
        let total = Atomic<Int>(0)
    }

    static let tcplifePath = "/usr/sbin/tcplife-bpfcc"

    /// The header tree tcplife compiled with last time (BCC 0.26's tcplife fails on some newer
    /// trees, e.g. Debian's 6.12 headers, where our own program compiles).
    static let tcplifeHeaders = Mutex<String?>(nil)

    /// Header trees to try for tcplife: the one our library picks, then every merged tree in its
    /// cache, newest first.
    static func headerCandidates() throws -> [String?] {
        let cache = "/var/cache/swift-net-events"
        let merged = ((try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? [])
            .filter { $0.hasPrefix("kernel-headers-") && FileManager.default.fileExists(atPath: "\(cache)/\($0)/include") }
            .sorted { KernelVersion(release: String($0.dropFirst(15))) > KernelVersion(release: String($1.dropFirst(15))) }
            .map { "\(cache)/\($0)" }
        var candidates: [String?] = []
        if let known = tcplifeHeaders.withLock({ $0 }) { candidates.append(known) }
        candidates.append(try KernelHeaders.locate().path)
        for path in merged where !candidates.contains(path) { candidates.append(path) }
        return candidates
    }

    /// Starts tcplife and waits for its header line, trying header trees until one compiles.
    static func startTCPLife(_ tally: LineTally) throws -> Child {
        guard access(tcplifePath, X_OK) == 0 else {
            throw BenchError("\(tcplifePath) is missing: apt-get install bpfcc-tools python3-bpfcc")
        }
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
        var run = Run(
            rate: try burst(traffic, connections: options.connections) { pid in
                burstPID = pid
                total0 = tally.total.load(ordering: .relaxed)
                cpu0 = Clock.processCPU(pid: tracer.pid) ?? 0
            })
        let target = burstPID
        settle(target: 2 * options.connections, quiet: 2) { tally.perPID.withLock { $0[target] ?? 0 } }
        run.cpuSeconds = (Clock.processCPU(pid: tracer.pid) ?? cpu0) - cpu0
        run.events = tally.total.load(ordering: .relaxed) - total0
        run.delivered = tally.perPID.withLock { $0[target] ?? 0 }
        return run
    }

    struct Tracer {
        var name: String
        var key: String
        var measure: () throws -> Run
    }

    static func run(_ options: Options) throws {
        let traffic = try siblingExecutable("netevents-traffic")
        say("## tcp-churn")
        say("")
        say("`netevents-traffic tcp-burst --count \(options.connections)`, \(options.runs) runs per configuration, interleaved; median reported")
        var tracers = [
            Tracer(name: "none", key: "untraced") { try untraced(traffic, options) },
            Tracer(name: "TCPMonitor (in-process, no filter)", key: "ours") { try ours(traffic, options, .init()) },
        ]
        if options.tcplife {
            tracers.append(Tracer(name: "BCC tcplife (Python)", key: "tcplife") { try tcplife(traffic, options) })
        }
        if options.variants {
            var noAccept = TCPMonitor.Configuration()
            noAccept.tracksAccept = false
            var noClaims = noAccept
            noClaims.tracksFirstIO = false
            tracers += [
                Tracer(name: "TCPMonitor, tracksAccept off", key: "ours_noaccept") { try ours(traffic, options, noAccept) },
                Tracer(name: "TCPMonitor, tracksAccept and tracksFirstIO off", key: "ours_noclaims") { try ours(traffic, options, noClaims) },
                Tracer(name: "TCPMonitor, perf buffer", key: "ours_perf") { try ours(traffic, options, .init(transport: .perfBuffer)) },
            ]
        }
        var runs = [[Run]](repeating: [], count: tracers.count)
        for index in 1...options.runs {
            for (slot, tracer) in tracers.enumerated() {
                let run = try tracer.measure()
                runs[slot].append(run)
                var line = "run \(index) \(tracer.name): \(Int(run.rate)) conn/s"
                if slot > 0 {
                    line += ", delivered \(run.delivered)/\(2 * options.connections), \(run.events) events, "
                        + "CPU \(format(run.cpuSeconds, 3)) s = \(format(run.cpuMicrosecondsPerEvent)) µs/event"
                    if tracer.key != "tcplife" { line += ", lost \(run.lost), dropped \(run.dropped)" }
                }
                say(line)
            }
        }
        let baseline = median(runs[0].map(\.rate))
        let expected = Double(2 * options.connections)
        say("")
        say("| tracer | conn/s | traced / untraced | ends delivered (of \(Int(expected))) | tracer CPU µs/event |")
        say("| --- | ---: | ---: | ---: | ---: |")
        say("| none | \(Int(baseline)) | 1.00 | - | - |")
        var result = "RESULT section=churn connections=\(options.connections) untraced_rate=\(Int(baseline))"
        for (slot, tracer) in tracers.enumerated().dropFirst() {
            let rate = median(runs[slot].map(\.rate))
            let ratio = median(runs[slot].map { $0.rate / baseline })
            let delivered = median(runs[slot].map { Double($0.delivered) / expected })
            let cpu = median(runs[slot].map(\.cpuMicrosecondsPerEvent))
            say("| \(tracer.name) | \(Int(rate)) | \(format(ratio)) | \(format(delivered * 100, 2))% | \(format(cpu)) |")
            result += " \(tracer.key)_rate=\(Int(rate)) \(tracer.key)_ratio=\(format(ratio, 3))"
                + " \(tracer.key)_delivered=\(format(delivered, 5)) \(tracer.key)_cpu_us=\(format(cpu, 3))"
            if tracer.key.hasPrefix("ours") {
                result += " \(tracer.key)_lost=\(runs[slot].map(\.lost).reduce(0, +)) \(tracer.key)_dropped=\(runs[slot].map(\.dropped).reduce(0, +))"
            }
        }
        say("")
        say(result)
    }
}
