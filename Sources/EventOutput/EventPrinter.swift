import Foundation
import NetEventsCore

/// How a tool shows its events as a human table: the columns, and one row's values.
public struct EventTable<Event>: Sendable {
    /// The columns, in order.
    public var columns: [TextColumn]
    /// The values of one event's row, one per column.
    public var row: @Sendable (Event) -> [String]

    /// A table of `columns`, each event's values given by `row`.
    public init(columns: [TextColumn], row: @escaping @Sendable (Event) -> [String]) {
        self.columns = columns
        self.row = row
    }
}

/// Prints events to standard output: as JSON lines through ``NetEventsCore/EventJSONEncoder``
/// (the events' own `Codable` keys), or as table rows.
public final class EventPrinter<Event: Encodable>: @unchecked Sendable {
    private let table: EventTable<Event>?
    private let encoder = EventJSONEncoder()
    // Only the delivery thread prints; the buffer is reused from event to event.
    private var buffer: [UInt8] = []

    /// A printer of JSON lines, or (`json` false) of table rows.
    public init(json: Bool, table: EventTable<Event>) {
        self.table = json ? nil : table
    }

    /// The table's header line, or nil for JSON.
    public var header: String? { table?.columns.header }

    /// Writes a batch of events with one `write(2)`, built in a buffer reused from batch to batch.
    public func print(_ events: [Event]) {
        buffer.removeAll(keepingCapacity: true)
        for event in events { append(event) }
        StandardOutput.write(buffer)
    }

    private func append(_ event: Event) {
        if let table {
            buffer.append(contentsOf: table.columns.row(table.row(event)).utf8)
            buffer.append(UInt8(ascii: "\n"))
        } else {
            do {
                try encoder.append(event, to: &buffer)
            } catch {
                buffer.append(contentsOf: "{\"error\":\"cannot encode an event\"}\n".utf8)
            }
        }
    }
}

/// `HH:MM:SS.mmm` in local time.
public func clockTime(_ nanoseconds: UInt64) -> String {
    var time = tm()
    var raw = time_t(nanoseconds / 1_000_000_000)
    localtime_r(&raw, &time)
    return String(format: "%02d:%02d:%02d.%03d", time.tm_hour, time.tm_min, time.tm_sec, Int(nanoseconds / 1_000_000 % 1000))
}

/// `1.2.3.4:80` or `[::1]:80`.
public func endpoint(_ address: IPAddress, _ port: UInt16) -> String {
    address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
}

extension EventTable where Event: NetworkEvent {
    /// A table that starts with what every event has (TIME, PID, UID, COMM, LOCAL and the remote
    /// endpoint, titled `remote`), followed by the kind's own `columns` and their `values`.
    /// - Parameter hasRemote: whether an event has a remote endpoint to show (else `-`).
    public static func network(
        remote: String = "REMOTE", hasRemote: @escaping @Sendable (Event) -> Bool = { _ in true }, columns: [TextColumn],
        values: @escaping @Sendable (Event) -> [String]
    ) -> EventTable {
        let common = [
            TextColumn("TIME", width: 12), TextColumn("PID", width: 7, rightAligned: true),
            TextColumn("UID", width: 6, rightAligned: true), TextColumn("COMM", width: 15), TextColumn("LOCAL", width: 26),
            TextColumn(remote, width: 26),
        ]
        return EventTable(columns: common + columns) { event in
            let endpoints = event.endpoints
            let remote = hasRemote(event) ? endpoint(endpoints.destinationAddress, endpoints.destinationPort) : "-"
            return [
                clockTime(event.timeNanoseconds), String(event.process.pid), String(event.process.uid), event.process.command,
                endpoint(endpoints.sourceAddress, endpoints.sourcePort), remote,
            ] + values(event)
        }
    }
}
