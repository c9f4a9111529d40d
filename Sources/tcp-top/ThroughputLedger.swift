import Synchronization
import TCPEvent

/// What each open connection moved in the current window, from the monitor's interval records and
/// closes: a record adds what it holds (the change since the connection's previous record); a
/// close adds what is left (its totals less what the records held), and the connection leaves
/// the view after the window it closed in. A close of a connection no record listed adds its
/// totals only if it opened after `start`: else they hold what it moved before, in no window.
final class ThroughputLedger: Sendable {
    /// Wall-clock nanoseconds when the ledger began.
    let start: UInt64

    init(start: UInt64) { self.start = start }

    /// One connection's window.
    struct Connection: Sendable, Equatable {
        var process: EventProcess
        var endpoints: SocketEndpoints
        var socketID: UInt64?
        var health: TCPHealth
        /// Bytes sent and received in the window.
        var sent: UInt64 = 0, received: UInt64 = 0
        /// What the connection's records held, in all (to find what its close adds).
        var reportedSent: UInt64 = 0, reportedReceived: UInt64 = 0
        var closed = false
    }

    /// A connection: its socket cookie, or without cookies its endpoints and owner.
    private enum Key: Hashable {
        case socket(UInt64)
        case endpoints(SocketEndpoints, Int32)
    }

    private let connections = Locked<[Key: Connection]>([:])

    /// Takes in a batch of events (interval records and closes; other kinds are ignored).
    func add(_ events: [TCPConnectionEvent]) {
        connections.withLock { connections in
            for event in events where event.kind == .interval || event.kind == .close {
                let key = event.socketID.map(Key.socket) ?? .endpoints(event.endpoints, event.pid)
                var connection = connections[key]
                    ?? Connection(process: event.process, endpoints: event.endpoints, socketID: event.socketID, health: event.health)
                connection.health = event.health
                connection.process = event.process
                if event.kind == .interval {
                    connection.sent += event.sentBytes
                    connection.received += event.receivedBytes
                    connection.reportedSent += event.sentBytes
                    connection.reportedReceived += event.receivedBytes
                } else if connections[key] == nil && !(event.durationNanoseconds.map { event.timeNanoseconds &- $0 >= start } ?? false) {
                    // Listed by no record (another network namespace, a failed poll) and open
                    // before the ledger began: how much of its totals fell in this window is unknown.
                    connection.closed = true
                } else {
                    // Totals: what the records did not hold yet moved in this window.
                    connection.sent += event.sentBytes > connection.reportedSent ? event.sentBytes - connection.reportedSent : 0
                    connection.received +=
                        event.receivedBytes > connection.reportedReceived ? event.receivedBytes - connection.reportedReceived : 0
                    connection.closed = true
                }
                connections[key] = connection
            }
        }
    }

    /// Ends the window: every connection with what it moved in it; the next window starts empty,
    /// without the connections that closed.
    func closeWindow() -> [Connection] {
        connections.withLock { connections in
            let window = Array(connections.values)
            connections = connections.filter { !$0.value.closed }.mapValues { connection in
                var next = connection
                next.sent = 0
                next.received = 0
                return next
            }
            return window
        }
    }
}
