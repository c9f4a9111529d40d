import ArgumentParser
import EventOutput
import Foundation
import TCPEvent

@main
struct TCPEventsCommand: TracerCommand {
    typealias Kind = TCPKind
    static let what = "TCP connections"
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

    var kindOptions: TCPKind.Options { .init(hook: hook) }
    var forcedHookFlags: [String] { hook == nil ? [] : ["--hook"] }

    static func summary(_ counters: TCPKind.Counters) -> String {
        "evicted \(counters.evictedSockets), untracked closes \(counters.untrackedCloses)"
    }

    static let table = EventTable<TCPConnectionEvent>.network(
        columns: [
            TextColumn("TX_BYTES", width: 10, rightAligned: true), TextColumn("RX_BYTES", width: 10, rightAligned: true),
            TextColumn("SEGS_OUT", width: 8, rightAligned: true), TextColumn("SEGS_IN", width: 8, rightAligned: true),
            TextColumn("MS", width: 9, rightAligned: true), TextColumn("OWNER", width: 7),
        ],
        cells: { event, row in
            row.number(event.sentBytes)
            row.number(event.receivedBytes)
            row.number(event.segmentsOut)
            row.number(event.segmentsIn)
            row.milliseconds(event.durationNanoseconds)
            row.text(event.ownerSource.description)
        })
}

