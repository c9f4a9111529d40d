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
        abstract: "Print a line per TCP connect, accept, failed connect and close: owner, endpoints, bytes, segments, RTT, retransmits.",
        discussion: """
            \(CapabilityNeed.helpText(ptrace: true, when: "with --interval")) Prints `Tracing ...` to standard error once attached; SIGINT or SIGTERM \
            drains what is buffered and exits 0. Byte counts are the kernel's tcp_info counters \
            (they include one for the SYN and one for the FIN); RTT and retransmits are what \
            `ss -ti` shows. MS is the connect latency of a connect and the lifetime of a close or \
            a failure. With --interval, open connections are listed (sock_diag) at start and every \
            interval: each record holds what the connection moved since its previous one.
            """)

    @OptionGroup var options: TracerOptions

    @Option(name: .long, help: "Force the kernel hook: tracepoint, fentry or kprobe.")
    var hook: TCPMonitor.Hook?

    @Option(
        name: .long, parsing: .unconditional,
        help: "Only these kinds of event, comma-separated: connect, accept, fail, close, interval (default: all).",
        transform: TCPEventsCommand.parseKinds)
    var events: Set<TCPConnectionEvent.Kind>?

    @Option(
        name: .long, parsing: .unconditional,
        help: "Every this many seconds, an interval record for each open connection that moved data, after a snapshot of every open connection at start (default 0: none).")
    var interval: Double = 0

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "Live sockets whose owners the kernel keeps (default: the size of the kernel's table of established sockets, \(TCPKind.Options.defaultMaxTrackedSockets) here; about 200 bytes each).",
            valueName: "n"))
    var maxSockets: Int?

    func validate() throws {
        guard interval == 0 || TCPKind.Options.intervals.contains(interval) else {
            throw ValidationError("--interval must be 0 (off) or \(TCPKind.Options.intervalsText) seconds")
        }
        if let maxSockets, !TCPKind.Options.trackedSocketLimits.contains(maxSockets) {
            throw ValidationError("--max-sockets must be \(TCPKind.Options.trackedSocketLimitsText)")
        }
    }

    var kindOptions: TCPKind.Options {
        var options = TCPKind.Options(hook: hook, interval: interval)
        if let events { options.events = events }
        if let maxSockets { options.maxTrackedSockets = maxSockets }
        return options
    }

    static func parseKinds(_ text: String) throws -> Set<TCPConnectionEvent.Kind> {
        var kinds: Set<TCPConnectionEvent.Kind> = []
        for name in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = name.trimmingCharacters(in: .whitespaces)
            guard let kind = TCPConnectionEvent.Kind(rawValue: name) else {
                let known = TCPConnectionEvent.Kind.allCases.map(\.description).joined(separator: ", ")
                throw ValidationError("--events: unknown kind '\(name)' (known: \(known))")
            }
            kinds.insert(kind)
        }
        return kinds
    }
    var forcedHookFlags: [String] { hook == nil ? [] : ["--hook"] }

    static func summary(_ counters: TCPKind.Counters) -> String {
        "evicted \(counters.evictedSockets), untracked closes \(counters.untrackedCloses), adopted \(counters.adoptedSockets)"
            + (counters.unownedConnections > 0 ? ", unowned open connections \(counters.unownedConnections)" : "")
            + (counters.failedPolls > 0 ? ", failed polls \(counters.failedPolls) (\(counters.lastPollFailure.map { "\($0)" } ?? ""))" : "")
    }

    static let table = EventTable<TCPConnectionEvent>.network(
        event: \.kind.description,
        columns: [
            TextColumn("TX_BYTES", width: 10, rightAligned: true), TextColumn("RX_BYTES", width: 10, rightAligned: true),
            TextColumn("SEGS_OUT", width: 8, rightAligned: true), TextColumn("SEGS_IN", width: 8, rightAligned: true),
            TextColumn("SRTT_US", width: 8, rightAligned: true), TextColumn("RETRANS", width: 7, rightAligned: true),
            TextColumn("MS", width: 9, rightAligned: true), TextColumn("OWNER", width: 7), TextColumn("ERROR", width: 12),
        ],
        cells: { event, row in
            row.number(event.sentBytes)
            row.number(event.receivedBytes)
            row.number(event.segmentsOut)
            row.number(event.segmentsIn)
            row.number(event.health.smoothedRTTMicroseconds)
            row.number(event.health.retransmits)
            row.milliseconds(event.latencyNanoseconds ?? event.durationNanoseconds)
            row.text(event.ownerSource.description)
            if let error = event.error { row.text(error.name) } else { row.none() }
        })
}

