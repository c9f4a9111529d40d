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
        let printer = TCPEventPrinter(json: json)
        let monitor: TCPMonitor
        do {
            monitor = try TCPMonitor(configuration: configuration)
        } catch {
            TracerRun.fail("tcp-events", error)
        }
        TracerRun.run(
            name: "tcp-events", what: "TCP connections", duration: duration,
            start: {
                try monitor.start { printer.print($0) }
                if !json { StandardOutput.writeLine(printer.header) }
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

