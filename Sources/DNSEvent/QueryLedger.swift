/// The queries awaiting their responses, so that a response carries its latency: a response
/// matches the last query with its id that went the other way on the same socket, with the same
/// peer. Bounded in count and age; what it forgets is counted.
///
/// Fed by the reader thread in the order samples arrive: a ring buffer keeps the kernel's order
/// across CPUs, a perf buffer (per CPU) may hand a response over before its query, which then
/// has no latency. The kind holds it in a Mutex for the statistics' readers.
struct QueryLedger {
    struct Key: Hashable {
        /// The socket (its kernel address) and the other end of the datagram.
        var socket: UInt64, peer: IPAddress, peerPort: UInt16
        /// The transaction id, and whether the query was sent (a client's: its response is then received).
        var id: UInt16, querySent: Bool
    }

    private var pending: [Key: UInt64] = [:]
    /// Keys in the order their queries came, for forgetting the oldest and the expired.
    private var order: [(key: Key, time: UInt64)] = []
    private var orderStart = 0
    let limit: Int
    let timeout: UInt64
    /// Queries forgotten before their response came (too many waiting, or too old).
    private(set) var forgotten: UInt64 = 0

    init(limit: Int, timeoutNanoseconds: UInt64) {
        self.limit = limit
        self.timeout = timeoutNanoseconds
    }

    /// Remembers a query seen at `time` (monotonic nanoseconds).
    mutating func query(_ key: Key, at time: UInt64) {
        expire(before: time)
        if pending.updateValue(time, forKey: key) == nil, pending.count > limit { forgetOldest() }
        order.append((key, time))
        compact()
    }

    /// The latency of a response seen at `time` that answers `query`, which it forgets; nil when
    /// no such query is waiting.
    mutating func response(to query: Key, at time: UInt64) -> UInt64? {
        expire(before: time)
        guard let start = pending.removeValue(forKey: query) else { return nil }
        return time >= start ? time - start : 0
    }

    /// Queries waiting.
    var count: Int { pending.count }

    /// Entries kept to find the oldest query (bounded by about twice `limit`).
    var orderEntries: Int { order.count - orderStart }

    private mutating func expire(before time: UInt64) {
        while orderStart < order.count {
            let (key, queried) = order[orderStart]
            guard let current = pending[key] else {
                orderStart += 1  // answered, or queried again later
                continue
            }
            guard current == queried else {
                orderStart += 1
                continue
            }
            guard time > queried, time - queried > timeout else { break }
            pending[key] = nil
            forgotten += 1
            orderStart += 1
        }
        compact()
    }

    private mutating func forgetOldest() {
        while orderStart < order.count {
            let (key, queried) = order[orderStart]
            orderStart += 1
            if pending[key] == queried {
                pending[key] = nil
                forgotten += 1
                break
            }
        }
        compact()
    }

    /// Drops the consumed front of `order` once it is most of the array; and, when answered
    /// queries pile up behind one still waiting, every entry no longer waiting. At most `limit`
    /// entries are live, so each rebuild keeps at most half of what it walks: amortized O(1).
    private mutating func compact() {
        if orderStart > 1024, orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
        if order.count - orderStart > 2 * limit + 1024 {
            order = order[orderStart...].filter { pending[$0.key] == $0.time }
            orderStart = 0
        }
    }
}
