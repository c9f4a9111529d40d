internal import CNetEventsABI

/// The TCP event kind: a ``TCPConnectionEvent`` per connect, accept, failed connect and close, attributed
/// to the process that connected or accepted it. Its monitor is ``TCPMonitor``.
///
/// The program is `bpf/tcp_events.c`; its samples and counters are declared once, in the
/// `tcp_events_abi.h` contract header that the program and this module share.
public final class TCPKind: EventKind {

    public static let activity = "tracing TCP connections"
    public static let defaultBufferPages = 256
    public static let filteredCounter = NE_TCP_STAT_FILTERED.rawValue

    private let clock: WallClock
    private let owners: BPFMap<UInt64, ne_tcp_owner>?

    public init(configuration: Configuration, module: BPFModule?, clock: WallClock) throws(BPFError) {
        self.clock = clock
        self.owners = try module?.table("owners").typed()
    }

    public func decode(_ raw: UnsafeRawBufferPointer, into events: inout [TCPConnectionEvent]) throws(BPFError) {
        events.append(try TCPEventDecoder.decode(raw, clock: clock))
    }

    public func counters(_ kernel: KernelCounters) -> Counters {
        var counters = Counters()
        counters.trackedSockets = kernel[NE_TCP_STAT_TRACKED.rawValue]
        counters.untrackedCloses = kernel[NE_TCP_STAT_CLOSED_UNTRACKED.rawValue]
        // What was tracked and neither closed nor is still in the map was evicted.
        if let owners, let live = try? owners.keys().count {
            let accounted = kernel[NE_TCP_STAT_CLOSED_TRACKED.rawValue] + UInt64(live)
            counters.evictedSockets = counters.trackedSockets > accounted ? counters.trackedSockets - accounted : 0
        }
        return counters
    }

    /// The TCP kind's counters (`MonitorStatistics/kind`).
    public struct Counters: EventKindCounters {
        /// Sockets the kernel started tracking (at connect or passive open).
        public var trackedSockets: UInt64 = 0
        /// Closes of sockets never tracked (open before tracing began, or evicted).
        public var untrackedCloses: UInt64 = 0
        /// Tracked sockets pushed out of the full LRU map before they closed.
        public var evictedSockets: UInt64 = 0

        /// All zero.
        public init() {}
    }
}
