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

    @OptionGroup var options: TracerOptions

    @Option(name: .long, help: "Seconds between reports of sockets that moved data.")
    var interval: Double = 1

    @Option(name: .long, help: "Force the counting hook: tracepoint, fentry or kprobe.")
    var hook: UDPMonitor.Hook?

    @Option(name: .customLong("close-hook"), help: "Force the close hook: cgroup, kprobe or none.")
    var closeHook: UDPMonitor.CloseHook?

    func run() throws {
        let configuration = UDPMonitor.Configuration(
            pid: options.pid, uid: options.uid, port: options.port, family: options.family, interval: interval,
            hook: hook, closeHook: closeHook)
        let printer = UDPEventPrinter(json: options.json)
        let monitor: UDPMonitor
        do {
            monitor = try UDPMonitor(configuration: configuration)
        } catch {
            TracerRun.fail("udp-events", error)
        }
        TracerRun.run(
            name: "udp-events", what: "UDP traffic", duration: options.duration,
            start: {
                try monitor.start { printer.print($0) }
                if !options.json { StandardOutput.writeLine(printer.header) }
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
