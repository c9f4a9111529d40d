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

/// A running cross-check: the kernel's count from just after attach, and the program's count of
/// its runs when that count began.
final class UnseenEventCount: Sendable {
    private let counter: TracepointCounter
    private let runsCounter: UInt32
    private let runsAtStart: UInt64

    /// Starts the kernel's count. The program's count is read first: a hit between the two reads
    /// is taken for seen, never for unseen.
    init(_ check: KernelCrossCheck, runs: KernelCounters) throws(BPFError) {
        runsCounter = check.runsCounter
        runsAtStart = runs[check.runsCounter]
        counter = try TracepointCounter(category: check.category, name: check.name, filter: check.filter)
    }

    /// The hits the kernel counted that the program did not run for. The kernel's count is read
    /// first, so a hit in flight is taken for seen.
    func unseen(runs: KernelCounters) -> UInt64 {
        let counted = counter.count
        let ran = runs[runsCounter] &- runsAtStart
        return counted > ran ? counted - ran : 0
    }

    /// Stops the kernel's count, before a stop detaches the program: a hit after the detach is
    /// not taken for unseen.
    func freeze() { counter.freeze() }
}
