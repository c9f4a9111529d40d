import ArgumentParser
import DNSEvent
import EventOutput

@main
struct DNSEventsCommand: TracerCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns-events",
        abstract: "Print a line per DNS query and response sent or received over UDP: process, peer, name, type, rcode, answers, latency.",
        discussion: """
            \(CapabilityNeed.helpText()) Each process's side is its own line: a client's query is a line it sent, \
            the server's copy a line it received. A response's latency runs from its query on the \
            same socket (for a client, the time to its answer; for a server, the time it took to \
            answer); `-` when the query was not seen. --port chooses the DNS ports (default 53), \
            matched against the socket's own port and the peer's. Prints `Tracing ...` to standard \
            error once attached; SIGINT or SIGTERM drains what is buffered and exits 0.
            """)

    typealias Kind = DNSKind
    static let what = "DNS"

    @OptionGroup var options: TracerOptions

    @Option(name: .long, help: "Force the hook that sees datagrams: tracepoint, fentry or kprobe.")
    var hook: DNSMonitor.Hook?

    @Option(name: .customLong("query-timeout"), parsing: .unconditional, help: "Seconds a query waits for its response (default 30).")
    var queryTimeout: Double = 30

    func validate() throws {
        guard queryTimeout.isFinite, queryTimeout > 0, queryTimeout <= 3600 else {
            throw ValidationError("--query-timeout must be between 0 and 3600 seconds")
        }
    }

    /// `--port` (a filter for the other tools) names the DNS ports here; the filter it also sets
    /// matches the same datagrams.
    var kindOptions: DNSKind.Options {
        let ports = (try? options.filter.ports) ?? []
        var kind = DNSKind.Options(dnsPorts: ports.isEmpty ? [53] : Set(ports), hook: hook)
        kind.queryTimeout = queryTimeout
        return kind
    }
    var forcedHookFlags: [String] { hook == nil ? [] : ["--hook"] }

    static func summary(_ counters: DNSKind.Counters) -> String {
        "datagrams \(counters.datagrams), without payload \(counters.withoutPayload), not DNS \(counters.malformed), "
            + "queries forgotten \(counters.forgottenQueries)"
    }

    static let table = EventTable<DNSMessageEvent>.network(
        remote: "PEER",
        event: { $0.kind == .query ? ($0.isSent ? "Q>" : "Q<") : ($0.isSent ? "R>" : "R<") },
        columns: [
            TextColumn("ID", width: 5, rightAligned: true), TextColumn("QTYPE", width: 6), TextColumn("RCODE", width: 8),
            TextColumn("MS", width: 8, rightAligned: true), TextColumn("NAME", width: 30), TextColumn("ANSWERS", width: 0),
        ],
        cells: { event, row in
            row.number(event.id)
            row.text(event.queryType.description)
            row.text(event.responseCode?.description ?? "-")
            row.milliseconds(event.latencyNanoseconds)
            row.text(event.name)
            row.text(event.answers.map(\.description).joined(separator: ",") + (event.answersIncomplete ? ",..." : ""))
        })
}
