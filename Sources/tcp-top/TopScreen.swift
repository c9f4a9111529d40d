import EventOutput
import Foundation
import TCPEvent

/// The text of one `tcp-top` frame: two lines of state, the column titles, then as many rows as
/// fit, every line cut to the terminal's width (80 columns show every field but the local
/// address; 118 and more show it whole).
struct TopScreen {
    var byProcess: Bool
    var order: TopRow.Order
    var interval: Double

    func lines(_ rows: [TopRow], measured: Bool, connections: Int, width: Int, height: Int, time: Date = Date()) -> [String] {
        let clock = DateFormatter.localizedString(from: time, dateStyle: .none, timeStyle: .medium)
        let processes = Set(rows.map(\.process.pid)).count
        var lines = [
            "tcp-top  \(clock)  \(connections) connection\(connections == 1 ? "" : "s"), every \(Self.seconds(interval))"
                + (byProcess ? ", \(processes) process\(processes == 1 ? "" : "es")" : ""),
            "view: \(byProcess ? "processes" : "connections") [p]  sort: \(order.rawValue) [s]  quit [q]"
                + (measured ? "" : "  (measuring...)"),
        ]
        let columns = self.columns(width: width)
        lines.append(columns.map(\.column).header)
        for row in rows.prefix(max(0, height - lines.count)) {
            lines.append(zip(columns, columns.map { $0.value(row, measured) }).map { Self.fit($1, $0.column) }.joined(separator: " "))
        }
        return lines.map { Self.cut($0, to: width) }
    }

    /// A column and how a row fills it.
    struct Cell {
        var column: TextColumn
        var value: (TopRow, Bool) -> String
    }

    func columns(width: Int) -> [Cell] {
        let wide = width >= 118
        // An unknown owner (a close whose owner was pushed out of the kernel's map) shows as such.
        var cells = [Cell(column: TextColumn("PID", width: 7, rightAligned: true)) { row, _ in row.process == .unknown ? "-" : "\(row.process.pid)" }]
        if wide || byProcess {
            cells.append(Cell(column: TextColumn("UID", width: 6, rightAligned: true)) { row, _ in row.process == .unknown ? "-" : "\(row.process.uid)" })
        }
        cells.append(Cell(column: TextColumn("COMM", width: wide || byProcess ? 15 : 12)) { row, _ in row.process == .unknown ? "?" : row.process.command })
        if byProcess {
            cells.append(Cell(column: TextColumn("CONNS", width: 6, rightAligned: true)) { row, _ in "\(row.connections)" })
        } else if wide {
            cells.append(Cell(column: TextColumn("LOCAL", width: 26)) { row, _ in row.endpoints.map { Self.endpoint($0.sourceAddress, $0.sourcePort) } ?? "" })
        } else {
            cells.append(Cell(column: TextColumn("LPORT", width: 5, rightAligned: true)) { row, _ in row.endpoints.map { "\($0.sourcePort)" } ?? "" })
        }
        if !byProcess {
            cells.append(Cell(column: TextColumn("REMOTE", width: wide ? 26 : 21)) { row, _ in
                row.endpoints.map { Self.endpoint($0.destinationAddress, $0.destinationPort) } ?? ""
            })
        }
        cells += [
            Cell(column: TextColumn("TX/s", width: 7, rightAligned: true)) { row, measured in measured ? Self.rate(row.sentPerSecond) : "-" },
            Cell(column: TextColumn("RX/s", width: 7, rightAligned: true)) { row, measured in measured ? Self.rate(row.receivedPerSecond) : "-" },
            Cell(column: TextColumn(byProcess ? "MAX_SRTT" : "SRTT_MS", width: 8, rightAligned: true)) { row, _ in
                String(format: "%.2f", Double(row.smoothedRTTMicroseconds) / 1000)
            },
            Cell(column: TextColumn("RETR", width: 5, rightAligned: true)) { row, _ in "\(row.retransmits)" },
        ]
        return cells
    }

    /// `value` escaped (no process name moves the cursor) and padded to the column, or cut to it
    /// with a final `~`.
    static func fit(_ value: String, _ column: TextColumn) -> String {
        let escaped = TextColumn.escaped(value)
        guard escaped.count > column.width else { return column.format(escaped) }
        return String(escaped.prefix(column.width - 1)) + "~"
    }

    static func cut(_ line: String, to width: Int) -> String {
        line.count > width ? String(line.prefix(max(0, width))) : line
    }

    static func endpoint(_ address: IPAddress, _ port: UInt16) -> String {
        address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    /// Bytes per second in at most 6 characters: `999`, `12.3K`, `456K`, `7.8M`, `1.2G`.
    static func rate(_ perSecond: Double) -> String {
        let value = max(0, perSecond)
        for (limit, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")] where value >= limit {
            let scaled = value / limit
            return scaled >= 100 ? "\(Int(scaled))\(suffix)" : String(format: "%.1f%@", scaled, suffix)
        }
        return "\(Int(value.rounded()))"
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))s" : String(format: "%gs", value)
    }
}
