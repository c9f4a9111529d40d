import ArgumentParser
import BCCRuntime
import EventOutput
import Foundation
import TCPEvent

@main
struct TCPEventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcp-events",
        abstract: "Print one line per TCP connection as it closes: owner, endpoints, bytes, segments, duration.",
        discussion: """
            Needs root. Prints `Tracing ...` to standard error once attached; SIGINT or SIGTERM \
            drains what is buffered and exits 0. Byte counts are the kernel's tcp_info counters \
            (they include one for the SYN and one for the FIN).
            """)

    @Flag(name: .long, help: "Print one JSON object per line.")
    var json = false

    @Option(name: .long, help: "Only connections owned by this process id.")
    var pid: Int32?

    @Option(name: .long, help: "Only connections owned by this user id.")
    var uid: UInt32?

    @Option(name: .long, help: "Only connections with this local or remote port.")
    var port: UInt16?

    @Flag(name: .customShort("4"), help: "Only IPv4.")
    var ipv4Only = false

    @Flag(name: .customShort("6"), help: "Only IPv6.")
    var ipv6Only = false

    @Option(name: .long, help: "Stop after this many seconds.")
    var duration: Double?

    @Option(name: .long, help: "Force the kernel hook: tracepoint, fentry or kprobe.")
    var hook: TCPMonitor.Hook?

    @Option(name: .long, help: "Force the transport: ringBuffer or perfBuffer.")
    var transport: TCPMonitor.Transport?

    func validate() throws {
        if ipv4Only && ipv6Only { throw ValidationError("-4 and -6 exclude each other") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
    }

    func run() throws {
        let configuration = TCPMonitor.Configuration(
            pid: pid, uid: uid, port: port, family: ipv4Only ? .ipv4 : ipv6Only ? .ipv6 : nil,
            hook: hook, transport: transport)
        signal(SIGPIPE, SIG_IGN)

        let monitor: TCPMonitor
        do {
            monitor = try TCPMonitor(configuration: configuration)
        } catch {
            fail(error)
        }
        let printer = TCPEventPrinter(json: json)
        if !json { StandardOutput.writeLine(printer.header) }
        do {
            try monitor.start { printer.print($0) }
        } catch {
            fail(error)
        }
        FileHandle.standardError.write(Data("Tracing TCP connections (\(monitor.report.map(String.init(describing:)) ?? "")). Ctrl-C to end.\n".utf8))

        let done = DispatchSemaphore(value: 0)
        let trap = SignalTrap { _ in done.signal() }
        if let duration {
            DispatchQueue.global().asyncAfter(deadline: .now() + duration) { done.signal() }
        }
        done.wait()
        _ = trap
        monitor.stop()
        let s = monitor.statistics
        FileHandle.standardError.write(Data(
            "lost \(s.lostSamples), dropped \(s.droppedEvents), malformed \(s.malformedSamples), evicted \(s.evictedSockets), untracked closes \(s.untrackedCloses)\n".utf8))
    }

    private func fail(_ error: any Error) -> Never {
        FileHandle.standardError.write(Data("tcp-events: \(error)\n".utf8))
        Foundation.exit(1)
    }
}

extension TCPMonitor.Hook: ExpressibleByArgument {}
extension TCPMonitor.Transport: ExpressibleByArgument {}

/// Formats events as table rows or JSON lines.
struct TCPEventPrinter: Sendable {
    let json: Bool
    let columns = [
        TextColumn("TIME", width: 12), TextColumn("PID", width: 7, rightAligned: true), TextColumn("UID", width: 6, rightAligned: true),
        TextColumn("COMM", width: 15), TextColumn("LOCAL", width: 26), TextColumn("REMOTE", width: 26),
        TextColumn("TX_BYTES", width: 10, rightAligned: true), TextColumn("RX_BYTES", width: 10, rightAligned: true),
        TextColumn("SEGS_OUT", width: 8, rightAligned: true), TextColumn("SEGS_IN", width: 8, rightAligned: true),
        TextColumn("MS", width: 9, rightAligned: true), TextColumn("OWNER", width: 7),
    ]

    var header: String { columns.header }

    func print(_ event: TCPConnectionEvent) {
        StandardOutput.writeLine(json ? jsonLine(event) : row(event))
    }

    func row(_ event: TCPConnectionEvent) -> String {
        let seconds = event.timeNanoseconds / 1_000_000_000
        var time = tm()
        var raw = time_t(seconds)
        localtime_r(&raw, &time)
        let clock = String(format: "%02d:%02d:%02d.%03d", time.tm_hour, time.tm_min, time.tm_sec, Int(event.timeNanoseconds / 1_000_000 % 1000))
        let ms = event.durationNanoseconds.map { String(format: "%.2f", Double($0) / 1e6) } ?? "-"
        return columns.row([
            clock, String(event.pid), String(event.uid), event.command,
            endpoint(event.sourceAddress, event.sourcePort), endpoint(event.destinationAddress, event.destinationPort),
            String(event.sentBytes), String(event.receivedBytes), String(event.segmentsOut), String(event.segmentsIn), ms,
            ownerName(event.ownerSource),
        ])
    }

    func jsonLine(_ event: TCPConnectionEvent) -> String {
        var line = JSONLine()
        line.add("time_ns", event.timeNanoseconds)
        line.add("pid", event.pid)
        line.add("uid", event.uid)
        line.add("comm", event.command)
        line.add("family", event.family.rawValue)
        line.add("saddr", event.sourceAddress.description)
        line.add("sport", event.sourcePort)
        line.add("daddr", event.destinationAddress.description)
        line.add("dport", event.destinationPort)
        line.add("rx_bytes", event.receivedBytes)
        line.add("tx_bytes", event.sentBytes)
        line.add("segs_in", event.segmentsIn)
        line.add("segs_out", event.segmentsOut)
        line.add("data_segs_in", event.dataSegmentsIn)
        line.add("data_segs_out", event.dataSegmentsOut)
        line.add("duration_ns", event.durationNanoseconds)
        line.add("cgroup_id", event.cgroupID)
        line.add("netns", event.networkNamespace)
        line.add("owner", ownerName(event.ownerSource))
        line.add("prev_state", event.previousState.description)
        return line.line
    }

    private func endpoint(_ address: IPAddress, _ port: UInt16) -> String {
        address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    private func ownerName(_ source: TCPConnectionEvent.OwnerSource) -> String {
        switch source {
        case .connect: return "connect"
        case .accept: return "accept"
        case .firstIO: return "io"
        case .closingTask: return "close"
        }
    }
}
