import ArgumentParser
import BCCRuntime
import EventOutput
import UDPEvent

@main
struct UDPEventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp-events",
        abstract: "Print UDP packet and byte counts per socket and process: every interval, at close, and at exit.",
        discussion: """
            Needs root. Counting happens in the kernel; each line carries the counts since the \
            previous line for the same socket and process, so they add up exactly. Prints `Tracing ...` \
            to standard error once attached; SIGINT or SIGTERM reports what is left and exits 0.
            """)

    @Flag(name: .long, help: "Print one JSON object per line.")
    var json = false

    @Option(name: .long, help: "Only traffic of this process id.")
    var pid: Int32?

    @Option(name: .long, help: "Only traffic of this user id.")
    var uid: UInt32?

    @Option(name: .long, help: "Only sockets with this local port, or connected to this remote port.")
    var port: UInt16?

    @Flag(name: .customShort("4"), help: "Only IPv4.")
    var ipv4Only = false

    @Flag(name: .customShort("6"), help: "Only IPv6.")
    var ipv6Only = false

    @Option(name: .long, help: "Seconds between reports of sockets that moved data.")
    var interval: Double = 1

    @Option(name: .long, help: "Stop after this many seconds.")
    var duration: Double?

    @Option(name: .long, help: "Force the counting hook: tracepoint, fentry or kprobe.")
    var hook: UDPMonitor.Hook?

    @Option(name: .customLong("close-hook"), help: "Force the close hook: cgroup, kprobe or none.")
    var closeHook: UDPMonitor.CloseHook?

    func validate() throws {
        if ipv4Only && ipv6Only { throw ValidationError("-4 and -6 exclude each other") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
    }

    func run() throws {
        let configuration = UDPMonitor.Configuration(
            pid: pid, uid: uid, port: port, family: ipv4Only ? .ipv4 : ipv6Only ? .ipv6 : nil, interval: interval,
            hook: hook, closeHook: closeHook)
        let printer = UDPEventPrinter(json: json)
        let monitor: UDPMonitor
        do {
            monitor = try UDPMonitor(configuration: configuration)
        } catch {
            TracerRun.fail("udp-events", error)
        }
        TracerRun.run(
            name: "udp-events", what: "UDP traffic", duration: duration,
            start: {
                try monitor.start { printer.print($0) }
                if !json { StandardOutput.writeLine(printer.header) }
                return monitor.report.map(String.init(describing:)) ?? ""
            },
            stop: monitor.stop,
            summary: {
                let s = monitor.statistics
                return "lost \(s.lostSamples), dropped \(s.droppedEvents), malformed \(s.malformedSamples), "
                    + "unattributed \(s.unattributedPackets) packets / \(s.unattributedBytes) bytes, idle evictions \(s.idleEvictions)"
            })
    }
}

extension UDPMonitor.Hook: ExpressibleByArgument {}
extension UDPMonitor.CloseHook: ExpressibleByArgument {}
