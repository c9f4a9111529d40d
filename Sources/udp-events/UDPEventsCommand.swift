import ArgumentParser
import EventOutput
import UDPEvent

@main
struct UDPEventsCommand: TracerCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp-events",
        abstract: "Print UDP packet and byte counts per socket, process and peer: every interval, at close, and at exit.",
        discussion: """
            \(CapabilityNeed.helpText()) Counting happens in the kernel; each line carries the counts since the \
            previous line for the same socket, process and peer (the address an unconnected socket's \
            datagrams went to or came from), so they add up exactly. A close with nothing new makes \
            no line. Prints `Tracing ...` \
            to standard error once attached; SIGINT or SIGTERM reports what is left and exits 0.
            """)

    typealias Kind = UDPKind
    static let what = "UDP traffic"

    @OptionGroup var options: TracerOptions

    @Option(name: .long, parsing: .unconditional, help: "Seconds between reports of sockets that moved data.")
    var interval: Double = 1

    @Option(name: .long, help: "Force the counting hook: tracepoint, fentry or kprobe.")
    var hook: UDPMonitor.Hook?

    @Option(name: .customLong("close-hook"), help: "Force the close hook: cgroup, kprobe or none.")
    var closeHook: UDPMonitor.CloseHook?

    @Flag(
        name: .customLong("no-peers"),
        help: "Count per socket and process only: an unconnected socket's datagrams get no peer (no cgroup sendmsg/recvmsg programs).")
    var noPeers = false

    func validate() throws {
        guard interval.isFinite, interval >= 0.01, interval <= 86_400 else {
            throw ValidationError("--interval must be between 0.01 and 86400 seconds")
        }
    }

    var kindOptions: UDPKind.Options {
        var options = UDPKind.Options(interval: interval, hook: hook, closeHook: closeHook)
        options.peers = !noPeers
        return options
    }
    var forcedHookFlags: [String] { (hook == nil ? [] : ["--hook"]) + (closeHook == nil ? [] : ["--close-hook"]) }

    static func summary(_ counters: UDPKind.Counters) -> String {
        "unattributed \(counters.unattributedPackets) packets / \(counters.unattributedBytes) bytes, "
            + "idle evictions \(counters.idleEvictions), deferred closes \(counters.deferredCloses)"
    }

    static let table = EventTable<UDPTrafficEvent>.network(
        remote: "PEER", hasRemote: \.hasPeer,
        columns: [
            TextColumn("TX_PKTS", width: 8, rightAligned: true), TextColumn("TX_BYTES", width: 10, rightAligned: true),
            TextColumn("RX_PKTS", width: 8, rightAligned: true), TextColumn("RX_BYTES", width: 10, rightAligned: true),
            TextColumn("WHY", width: 8),
        ],
        cells: { event, row in
            row.number(event.sentPackets)
            row.number(event.sentBytes)
            row.number(event.receivedPackets)
            row.number(event.receivedBytes)
            row.text(event.reason.rawValue)
        })
}

extension UDPKind.CloseHook: ExpressibleByArgument {}
