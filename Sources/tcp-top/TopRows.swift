import EventOutput
import Foundation
import TCPEvent

/// A line of `tcp-top`: one connection, or one process with all its connections, over a window.
struct TopRow: EventFields, Sendable, Equatable {
    var time: UInt64
    var process: EventProcess
    /// The connection's endpoints; nil for a process's row.
    var endpoints: SocketEndpoints?
    var socketID: UInt64?
    var connections: Int
    /// Bytes in the window, and per second over it.
    var sent: UInt64, received: UInt64
    var sentPerSecond: Double, receivedPerSecond: Double
    /// The connection's smoothed RTT (a process: the largest of its connections').
    var smoothedRTTMicroseconds: UInt32
    /// Segments retransmitted over the connection's life (a process: the sum).
    var retransmits: UInt64

    /// The sort keys, in the order the `s` key steps through them.
    enum Order: String, CaseIterable, Sendable {
        case total, sent, received, rtt, retransmits

        var next: Order { Order.allCases[(Order.allCases.firstIndex(of: self)! + 1) % Order.allCases.count] }
    }

    /// Rows of a window: per connection, or per process; busiest first by `order`.
    static func rows(_ window: [ThroughputLedger.Connection], seconds: Double, time: UInt64, byProcess: Bool, order: Order) -> [TopRow] {
        let per = seconds > 0 ? 1 / seconds : 0
        var rows: [TopRow]
        if byProcess {
            var groups: [Int32: TopRow] = [:]
            for connection in window {
                var row = groups[connection.process.pid] ?? TopRow(
                    time: time, process: EventProcess(pid: connection.process.pid, uid: connection.process.uid, command: connection.process.command),
                    endpoints: nil, socketID: nil, connections: 0, sent: 0, received: 0, sentPerSecond: 0, receivedPerSecond: 0,
                    smoothedRTTMicroseconds: 0, retransmits: 0)
                row.connections += 1
                row.sent += connection.sent
                row.received += connection.received
                row.smoothedRTTMicroseconds = max(row.smoothedRTTMicroseconds, connection.health.smoothedRTTMicroseconds)
                row.retransmits += UInt64(connection.health.retransmits)
                groups[connection.process.pid] = row
            }
            rows = groups.values.map { row in
                var row = row
                row.sentPerSecond = Double(row.sent) * per
                row.receivedPerSecond = Double(row.received) * per
                return row
            }
        } else {
            rows = window.map { connection in
                TopRow(
                    time: time, process: connection.process, endpoints: connection.endpoints, socketID: connection.socketID,
                    connections: 1, sent: connection.sent, received: connection.received,
                    sentPerSecond: Double(connection.sent) * per, receivedPerSecond: Double(connection.received) * per,
                    smoothedRTTMicroseconds: connection.health.smoothedRTTMicroseconds, retransmits: UInt64(connection.health.retransmits))
            }
        }
        return rows.sorted { a, b in
            let (x, y): (Double, Double)
            switch order {
            case .total: (x, y) = (Double(a.sent + a.received), Double(b.sent + b.received))
            case .sent: (x, y) = (Double(a.sent), Double(b.sent))
            case .received: (x, y) = (Double(a.received), Double(b.received))
            case .rtt: (x, y) = (Double(a.smoothedRTTMicroseconds), Double(b.smoothedRTTMicroseconds))
            case .retransmits: (x, y) = (Double(a.retransmits), Double(b.retransmits))
            }
            // Ties in a stable order: by pid, then local port.
            return x != y ? x > y : (a.process.pid, a.endpoints?.sourcePort ?? 0) < (b.process.pid, b.endpoints?.sourcePort ?? 0)
        }
    }

    /// The JSON keys of `tcp-top --json`: `event` (`connection` or `process`), `time_ns`, `pid`,
    /// `uid`, `comm`, for a connection `family`, `saddr`, `sport`, `daddr`, `dport`,
    /// `socket_id`, for a process `connections`, then `tx_bytes`, `rx_bytes` (in the window),
    /// `tx_bytes_per_s`, `rx_bytes_per_s`, `srtt_us`, `retransmits`.
    func writeFields<Writer: EventFieldWriter>(to writer: inout Writer) {
        if let endpoints {
            writer.writeHeader(event: "connection", time: time, process: process, endpoints: endpoints)
            writer.write(socketID, forKey: "socket_id")
        } else {
            writer.write("process", forKey: "event")
            writer.write(time, forKey: "time_ns")
            writer.write(Int64(process.pid), forKey: "pid")
            writer.write(UInt64(process.uid), forKey: "uid")
            writer.write(process.command, forKey: "comm")
            writer.write(UInt64(connections), forKey: "connections")
        }
        writer.write(sent, forKey: "tx_bytes")
        writer.write(received, forKey: "rx_bytes")
        writer.write(UInt64(sentPerSecond.rounded()), forKey: "tx_bytes_per_s")
        writer.write(UInt64(receivedPerSecond.rounded()), forKey: "rx_bytes_per_s")
        writer.write(smoothedRTTMicroseconds, forKey: "srtt_us")
        writer.write(retransmits, forKey: "retransmits")
    }
}
