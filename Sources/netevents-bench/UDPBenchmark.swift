import BCCRuntime
import Glibc
import Synchronization
import UDPEvent

/// `udp`: the traffic generator's `udp-flood` (N datagrams of 64 bytes sent with `sendto` to a
/// loopback sink as fast as one thread can) run untraced and under an in-process ``UDPMonitor``
/// with no filter.
///
/// Per run: the generator's own rate (datagrams/s); for the traced runs, the sum of `sentPackets`
/// and `sentBytes` over the events with the generator's pid (interval reports, then the close of its
/// socket), which must equal what it sent, and the CPU time of this process (`getrusage`) from the
/// moment the flood starts until the last datagram is counted. The kernel counts in a map, so
/// user space only sees the periodic scans and the close: the tracer's cost is almost entirely the
/// kernel program, which runs in the generator's context and shows in its rate.
enum UDPBenchmark {
    struct Options {
        var datagrams = 1_000_000
        var size = 64
        var runs = 3
    }

    struct Run {
        var rate: Double
        var seconds: Double
        var sentPackets: Int
        var sentBytes: Int
        var countedPackets: UInt64 = 0
        var countedBytes: UInt64 = 0
        var events = 0  // events with the generator's pid
        var cpuSeconds: Double = 0
        var windowSeconds: Double = 0
        var lost: UInt64 = 0
        var dropped: UInt64 = 0
        /// The monitor's eBPF programs over the window (see ``KernelProgramStats``).
        var kernel: [KernelProgramStats.Delta] = []

        var counted: Bool { countedPackets == UInt64(sentPackets) && countedBytes == UInt64(sentBytes) }
        var cpuPercent: Double { windowSeconds > 0 ? cpuSeconds / windowSeconds * 100 : 0 }
        var cpuNanosecondsPerDatagram: Double { sentPackets > 0 ? cpuSeconds * 1e9 / Double(sentPackets) : 0 }
    }

    /// Runs one flood: start it paused, call `ready(pid)`, let it go, return what it reports.
    /// `extra`: more `udp-flood` options (`--sink-port P --dns`).
    static func flood(_ traffic: String, _ options: Options, extra: [String] = [], ready: (Int32) -> Void) throws -> Run {
        let child = try Child.paused(
            traffic, ["udp-flood", "--count", String(options.datagrams), "--size", String(options.size), "--wait"] + extra,
            readyLine: "ready", ready: ready)
        let sent = child.output.waitForLine(timeout: Double(options.datagrams) / 20_000 + 60, where: { $0.hasPrefix("sent") })
        child.wait(timeout: 10)
        guard let sent else { throw BenchError("udp-flood failed: \(child.output.lastLines.joined(separator: " | "))") }
        let values = keyValues(sent)
        guard let rate = values["rate"].flatMap(Double.init), let packets = values["packets"].flatMap(Int.init),
            let bytes = values["bytes"].flatMap(Int.init), let seconds = values["seconds"].flatMap(Double.init)
        else { throw BenchError("cannot read udp-flood's line: \(sent)") }
        return Run(rate: rate, seconds: seconds, sentPackets: packets, sentBytes: bytes)
    }

    final class Tally: Sendable {
        let target = Atomic<Int32>(-1)
        let packets = Atomic<UInt64>(0)
        let bytes = Atomic<UInt64>(0)
        let events = Atomic<Int>(0)
    }

    static func traced(_ traffic: String, _ options: Options, peers: Bool = true, showReport: Bool) throws -> Run {
        var configuration = UDPMonitor.Configuration()  // no filter: every process is counted
        configuration.options.peers = peers
        let monitor = try UDPMonitor(configuration: configuration)
        let tally = Tally()
        try monitor.start { event in
            guard event.pid == tally.target.load(ordering: .relaxed) else { return }
            tally.packets.add(event.sentPackets, ordering: .relaxed)
            tally.bytes.add(event.sentBytes, ordering: .relaxed)
            tally.events.add(1, ordering: .relaxed)
        }
        defer { monitor.stop() }
        var cpu0 = 0.0
        var t0 = 0.0
        var programs0: [KernelProgramStats.Program] = []
        var run = try flood(traffic, options) { pid in
            tally.target.store(pid, ordering: .relaxed)
            programs0 = KernelProgramStats.programs(of: getpid())
            cpu0 = Clock.processCPU()
            t0 = Clock.now()
        }
        // The close of the generator's socket carries the last counts; an interval report (1 s)
        // comes even if that close were missed.
        ChurnBenchmark.settle(target: run.sentPackets, quiet: 2.5) { Int(tally.packets.load(ordering: .relaxed)) }
        run.cpuSeconds = Clock.processCPU() - cpu0
        run.windowSeconds = Clock.now() - t0
        run.kernel = KernelProgramStats.delta(from: programs0, to: KernelProgramStats.programs(of: getpid()))
        run.countedPackets = tally.packets.load(ordering: .relaxed)
        run.countedBytes = tally.bytes.load(ordering: .relaxed)
        run.events = tally.events.load(ordering: .relaxed)
        let statistics = monitor.statistics
        run.lost = statistics.lostSamples
        run.dropped = statistics.droppedEvents
        if showReport || run.events == 0, let report = monitor.report { say("UDPMonitor: \(report)") }
        return run
    }

    /// The floor of any tracer that counts each datagram on this machine: the flood under a
    /// program that returns at once, on the hook the monitor counts sends on
    /// (`sock:sock_send_length`), attached as a tracepoint (as the monitor attaches it: the
    /// kernel builds the trace record, then runs the program) and as a raw tracepoint (no record).
    static func underEmptyProgram(_ traffic: String, _ options: Options, raw: Bool) throws -> Run {
        let module = try BPFModule(
            source: raw ? "RAW_TRACEPOINT_PROBE(sock_send_length) { return 0; }" : "TRACEPOINT_PROBE(sock, sock_send_length) { return 0; }")
        let link = try module.attachTracepoint(category: "sock", name: "sock_send_length")
        defer { link.close() }
        return try flood(traffic, options) { _ in }
    }

    static func run(_ options: Options) throws {
        let traffic = try siblingExecutable("netevents-traffic")
        say("## udp")
        say("")
        say("`netevents-traffic udp-flood --count \(options.datagrams) --size \(options.size)` (sendto to a loopback sink), "
            + "\(options.runs) runs per configuration, interleaved; median reported")
        var untraced: [Run] = []
        var underMonitor: [Run] = []
        var withoutPeers: [Run] = []  // what the peers of unconnected sends cost: the flood is all sendto
        var emptyTracepoint: [Run] = []
        var emptyRawTracepoint: [Run] = []
        for index in 1...options.runs {
            let plain = try flood(traffic, options) { _ in }
            untraced.append(plain)
            say("run \(index) none: \(Int(plain.rate)) datagrams/s (\(plain.sentPackets) in \(format(plain.seconds, 3)) s)")
            let run = try traced(traffic, options, showReport: index == 1)
            underMonitor.append(run)
            say("run \(index) UDPMonitor: \(Int(run.rate)) datagrams/s (\(run.sentPackets) in \(format(run.seconds, 3)) s), "
                + "counted \(run.countedPackets)/\(run.sentPackets) datagrams, \(run.countedBytes)/\(run.sentBytes) bytes in \(run.events) events, "
                + "CPU \(format(run.cpuSeconds, 3)) s over \(format(run.windowSeconds, 2)) s (\(format(run.cpuPercent, 1))% of a core), "
                + "lost \(run.lost), dropped \(run.dropped)"
                + (run.kernel.isEmpty ? "" : "; kernel: " + KernelProgramStats.describe(run.kernel, per: run.sentPackets, unit: "datagram")))
            let bare = try traced(traffic, options, peers: false, showReport: index == 1)
            withoutPeers.append(bare)
            say("run \(index) UDPMonitor, peers off: \(Int(bare.rate)) datagrams/s, counted \(bare.countedPackets)/\(bare.sentPackets) datagrams, "
                + "\(bare.countedBytes)/\(bare.sentBytes) bytes")
            let empty = try underEmptyProgram(traffic, options, raw: false)
            emptyTracepoint.append(empty)
            let emptyRaw = try underEmptyProgram(traffic, options, raw: true)
            emptyRawTracepoint.append(emptyRaw)
            say("run \(index) an empty program on sock:sock_send_length: \(Int(empty.rate)) datagrams/s as a tracepoint, "
                + "\(Int(emptyRaw.rate)) as a raw tracepoint")
        }
        let baseline = median(untraced.map(\.rate))
        let rate = median(underMonitor.map(\.rate))
        let ratio = median(underMonitor.map { $0.rate / baseline })
        let cpuPercent = median(underMonitor.map(\.cpuPercent))
        let cpuPerDatagram = median(underMonitor.map(\.cpuNanosecondsPerDatagram))
        let cpuSeconds = median(underMonitor.map(\.cpuSeconds))
        let ratioWithoutPeers = median(withoutPeers.map { $0.rate / baseline })
        let countedWithoutPeers = withoutPeers.filter(\.counted).count
        let countedRuns = underMonitor.filter(\.counted).count
        let middle = underMonitor.sorted { $0.rate < $1.rate }[underMonitor.count / 2]
        say("")
        say("| tracer | datagrams/s | traced / untraced | counted / sent (datagrams; bytes) | tracer CPU |")
        say("| --- | ---: | ---: | ---: | ---: |")
        say("| none | \(Int(baseline)) | 1.00 | - | - |")
        say("| UDPMonitor (in-process, no filter) | \(Int(rate)) | \(format(ratio)) | "
            + "\(countedRuns) of \(underMonitor.count) runs exact (median run: \(middle.countedPackets) / \(middle.sentPackets); \(middle.countedBytes) / \(middle.sentBytes)) | "
            + "\(format(cpuSeconds, 3)) s = \(format(cpuPercent, 2))% of a core, \(format(cpuPerDatagram, 1)) ns/datagram |")
        say("| UDPMonitor, peers off (`Options.peers = false`) | \(Int(median(withoutPeers.map(\.rate)))) | \(format(ratioWithoutPeers)) | "
            + "\(countedWithoutPeers) of \(withoutPeers.count) runs exact | - |")
        let ratioEmpty = median(emptyTracepoint.map { $0.rate / baseline })
        let ratioEmptyRaw = median(emptyRawTracepoint.map { $0.rate / baseline })
        say("| floor: a program that returns at once on `sock:sock_send_length`, as a tracepoint (the monitor's hook) | "
            + "\(Int(median(emptyTracepoint.map(\.rate)))) | \(format(ratioEmpty)) | counts nothing | - |")
        say("| floor: the same program as a raw tracepoint | \(Int(median(emptyRawTracepoint.map(\.rate)))) | \(format(ratioEmptyRaw)) | counts nothing | - |")
        // The kernel side: one more traced run with the kernel's per-program run time on
        // (BPF_ENABLE_STATS slows every program run a little, so the runs above go without it).
        var kernelPerDatagram: Double?
        do {
            let statistics = try KernelProgramStats.enable()
            defer { close(statistics) }
            let run = try traced(traffic, options, showReport: false)
            kernelPerDatagram = Double(run.kernel.reduce(0) { $0 + $1.nanoseconds }) / Double(max(run.sentPackets, 1))
            say("")
            say("Kernel side (one extra run with BPF_ENABLE_STATS on), ns per run × runs per datagram: "
                + KernelProgramStats.describe(run.kernel, per: run.sentPackets, unit: "datagram"))
        } catch {
            say("kernel-side program times not measured: \(error)")
        }
        say("")
        var values: [String: String] = [
            "datagrams": String(options.datagrams), "size": String(options.size),
            "untraced_rate": String(Int(baseline)), "traced_rate": String(Int(rate)), "ratio": format(ratio, 3),
            "ratio_without_peers": format(ratioWithoutPeers, 3), "ratio_empty_tracepoint": format(ratioEmpty, 3),
            "ratio_empty_raw_tracepoint": format(ratioEmptyRaw, 3), "counted_runs_without_peers": String(countedWithoutPeers),
            "counted_runs": String(countedRuns), "runs": String(underMonitor.count),
            "counted_packets": String(middle.countedPackets), "sent_packets": String(middle.sentPackets),
            "counted_bytes": String(middle.countedBytes), "sent_bytes": String(middle.sentBytes),
            "cpu_s": format(cpuSeconds, 4), "cpu_percent": format(cpuPercent, 3), "cpu_ns_per_datagram": format(cpuPerDatagram, 2),
            "lost": String(underMonitor.map(\.lost).reduce(0, +)), "dropped": String(underMonitor.map(\.dropped).reduce(0, +)),
        ]
        if let kernelPerDatagram { values["kernel_ns_per_datagram"] = format(kernelPerDatagram, 1) }  // only when measured
        sayResult("udp", values)
    }
}
