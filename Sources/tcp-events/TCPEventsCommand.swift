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

    @OptionGroup var options: TracerOptions

    @Option(name: .long, help: "Force the kernel hook: tracepoint, fentry or kprobe.")
    var hook: TCPMonitor.Hook?

    @Option(name: .long, help: "Force the transport: ringBuffer or perfBuffer.")
    var transport: TCPMonitor.Transport?

    func run() throws {
        let configuration = TCPMonitor.Configuration(
            pid: options.pid, uid: options.uid, port: options.port, family: options.family,
            hook: hook, transport: transport)
        let printer = TCPEventPrinter(json: options.json)
        let monitor: TCPMonitor
        do {
            monitor = try TCPMonitor(configuration: configuration)
        } catch {
            TracerRun.fail("tcp-events", error)
        }
        TracerRun.run(
            name: "tcp-events", what: "TCP connections", duration: options.duration,
            start: {
                try monitor.start { printer.print($0) }
                if !options.json { StandardOutput.writeLine(printer.header) }
                return monitor.report.map(String.init(describing:)) ?? ""
            },
            stop: monitor.stop,
            summary: {
                let s = monitor.statistics
                return "lost \(s.lostSamples), dropped \(s.droppedEvents), malformed \(s.malformedSamples), "
                    + "evicted \(s.evictedSockets), untracked closes \(s.untrackedCloses)"
            })
    }
}

extension TCPMonitor.Hook: ExpressibleByArgument {}
extension TCPMonitor.Transport: ExpressibleByArgument {}

