import Foundation
import NetEventsCore
import Synchronization

/// How a tool shows its events as a human table: the columns, and how one event fills a row.
public struct EventTable<Event>: Sendable {
    /// The columns, in order.
    public var columns: [TextColumn]
    /// Fills one event's row: one ``TableRow`` cell call per column, in order.
    public var row: @Sendable (Event, inout TableRow) -> Void

    /// A table of `columns`, each event's cells written by `row`.
    public init(columns: [TextColumn], row: @escaping @Sendable (Event, inout TableRow) -> Void) {
        self.columns = columns
        self.row = row
    }
}

/// Prints events to standard output: as JSON lines (``NetEventsCore/JSONLineWriter``, the keys the
/// events list for `Codable` too) or as table rows. A batch is built in a buffer reused from batch
/// to batch and written with one `write(2)`.
///
/// Its methods are `@inlinable` so that a tool's build specializes them for its event type: the
/// per-event work then runs without generic dispatch.
public final class EventPrinter<Event: EventFields>: @unchecked Sendable {
    @usableFromInline let table: EventTable<Event>?
    // Only the delivery thread prints.
    @usableFromInline let json = JSONLineWriter(capacity: 1 << 16)
    @usableFromInline var rows: TableRow
    @usableFromInline let written = Atomic<Int>(0)

    /// A printer of JSON lines, or (`json` false) of table rows.
    @inlinable public init(json: Bool, table: EventTable<Event>) {
        self.table = json ? nil : table
        rows = TableRow(columns: table.columns)
    }

    /// How many events reached the output (a batch whose write failed is not counted).
    public var printed: Int { written.load(ordering: .relaxed) }

    @usableFromInline let headerPrinted = Atomic<Bool>(false)

    /// The table's header line, or nil for JSON.
    public var header: String? { table?.columns.header }

    /// Writes the table's header line, once, whoever calls first (the first batch, or the tool
    /// once the monitor has started). Nothing for JSON.
    @inlinable public func printHeader() {
        guard let table, !headerPrinted.exchange(true, ordering: .acquiringAndReleasing) else { return }
        StandardOutput.writeLine(table.columns.header)
    }

    /// Writes a batch of events with one `write(2)`.
    @inlinable public func print(_ events: [Event]) {
        if let table {
            printHeader()
            rows.removeAll()
            for event in events {
                table.row(event, &rows)
                rows.endRow()
            }
            if StandardOutput.write(rows.buffer) { written.add(events.count, ordering: .relaxed) }
        } else {
            json.removeAll()
            for event in events { json.append(event) }
            if StandardOutput.write(json.buffer) { written.add(events.count, ordering: .relaxed) }
        }
    }
}

extension EventTable where Event: NetworkEvent {
    /// A table that starts with what every event has (TIME, PID, UID, COMM, LOCAL and the remote
    /// endpoint, titled `remote`), followed by the kind's own `columns`, whose cells `cells` writes.
    /// - Parameter hasRemote: whether an event has a remote endpoint to show (else `-`).
    ///   - event: what happened, for kinds with more than one sort of event (a column `EVENT` after
    ///     TIME); nil: no such column.
    @inlinable public static func network(
        remote: String = "REMOTE", hasRemote: @escaping @Sendable (Event) -> Bool = { _ in true },
        event: (@Sendable (Event) -> String)? = nil, columns: [TextColumn],
        cells: @escaping @Sendable (Event, inout TableRow) -> Void
    ) -> EventTable {
        let common = [TextColumn("TIME", width: 12)] + (event == nil ? [] : [TextColumn("EVENT", width: 7)]) + [
            TextColumn("PID", width: 7, rightAligned: true),
            TextColumn("UID", width: 6, rightAligned: true), TextColumn("COMM", width: 15), TextColumn("LOCAL", width: 26),
            TextColumn(remote, width: 26),
        ]
        return EventTable(columns: common + columns) { item, row in
            let endpoints = item.endpoints
            row.clock(item.timeNanoseconds)
            if let event { row.text(event(item)) }
            if item.process == .unknown {
                // No owner is known: dashes and a question mark, not pid 0 and uid 4294967295.
                row.none()
                row.none()
                row.text("?")
            } else {
                row.number(item.process.pid)
                row.number(item.process.uid)
                row.text(item.process.command)
            }
            row.endpoint(endpoints.sourceAddress, port: endpoints.sourcePort)
            if hasRemote(item) {
                row.endpoint(endpoints.destinationAddress, port: endpoints.destinationPort)
            } else {
                row.none()
            }
            cells(item, &row)
        }
    }
}
