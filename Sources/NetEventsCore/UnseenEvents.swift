/// A tracepoint the kernel counts itself, beside the counter a kind's program keeps of its runs
/// for the same hits: what the kernel counted and the program did not run for was never seen
/// (``MonitorStatistics/unseenEvents``). A kind names one where its events come from one
/// tracepoint (``EventKind/crossCheck(_:)``).
public struct KernelCrossCheck: Sendable, Equatable {
    /// The tracepoint's category (`sock`).
    public var category: String
    /// The tracepoint's name (`inet_sock_set_state`).
    public var name: String
    /// Which hits count, as an ftrace filter over the tracepoint's record: the same hits the
    /// program counts (`protocol == 6 && newstate == 7`).
    public var filter: String
    /// The slot of the program's `stats` array that counts its runs for those hits.
    public var runsCounter: UInt32

    /// A cross-check of `category:name` hits passing `filter` against the program's `runsCounter`.
    public init(category: String, name: String, filter: String, runsCounter: UInt32) {
        self.category = category
        self.name = name
        self.filter = filter
        self.runsCounter = runsCounter
    }
}

extension TracepointCounter {
    /// The kernel's count of the hits `check` names.
    public convenience init(_ check: KernelCrossCheck) throws(BPFError) {
        try self.init(category: check.category, name: check.name, filter: check.filter)
    }
}

/// A running cross-check: the kernel's count from just after attach, and the program's count of
/// its runs when that count began.
///
/// A hit in flight is taken for seen, never for unseen. The program's count is read before the
/// kernel's starts and after it stops; a reading while tracing takes the smaller of two made back
/// to back, so a hit whose two probes (the program's, perf's, in either order) straddle one
/// reading counts in neither.
final class UnseenEventCount: Sendable {
    private let counter: TracepointCounter
    private let runs: KernelCounters
    private let runsCounter: UInt32
    private let runsAtStart: UInt64
    /// Set at stop: the count then, no longer read.
    private let final = Locked<UInt64?>(nil)

    init(_ check: KernelCrossCheck, runs: KernelCounters) throws(BPFError) {
        self.runs = runs
        runsCounter = check.runsCounter
        runsAtStart = runs[check.runsCounter]
        counter = try TracepointCounter(check)
    }

    /// The hits the kernel counted that the program did not run for.
    var unseen: UInt64 {
        if let final = final.withLock({ $0 }) { return final }
        return min(reading(), reading())
    }

    /// One reading: the kernel's count first, then the program's, so a hit in flight between
    /// the two is taken for seen.
    private func reading(counted: UInt64? = nil) -> UInt64 {
        let counted = counted ?? counter.count
        let ran = runs[runsCounter] &- runsAtStart
        return counted > ran ? counted - ran : 0
    }

    /// Stops the kernel's count and takes the final reading at once, before a stop detaches the
    /// program: a hit after that is not taken for unseen.
    func freeze() {
        let counted = counter.freeze()
        let value = reading(counted: counted)
        final.withLock { $0 = $0 ?? value }
    }
}
