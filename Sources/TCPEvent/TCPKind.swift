internal import CNetEventsABI
import Synchronization

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
    /// The kinds the consumer asked for (the program may send more, for the poller's owners),
    /// one bit each (``TCPConnectionEvent/Kind/bit``): tested on every sample, where hashing
    /// the kind into a `Set` cost more than the rest of the test.
    private let reported: UInt8
    private let poller: ConnectionPoller?
    /// Closes of unknown owners the kernel passed and user space filtered (see `decode`).
    private let filteredAfterPoll = Atomic<UInt64>(0)
    /// The names of the samples decoded so far; `decode` runs on the producer path alone. In
    /// storage of its own: a stored `var` would be checked for exclusive access on every sample.
    nonisolated(unsafe) private let names: UnsafeMutablePointer<ProcessNames> = {
        let names = UnsafeMutablePointer<ProcessNames>.allocate(capacity: 1)
        names.initialize(to: ProcessNames())
        return names
    }()
    private let interval: Duration

    /// What every monitor needs, and `CAP_SYS_PTRACE` when it lists open connections (an
    /// interval): their owners are found in the holders' `/proc/PID/fd`, other users' included.
    public static func capabilityNeeds(_ configuration: Configuration) -> [CapabilityNeed] {
        SystemChecks.monitorNeeds + (configuration.options.pollsConnections ? [.connectionOwners] : [])
    }

    public init(configuration: Configuration, module: BPFModule?, clock: WallClock) throws(BPFError) {
        self.clock = clock
        self.owners = try module?.table("owners").typed()
        reported = configuration.options.events.reduce(0) { $0 | $1.bit }
        interval = .nanoseconds(Int64(configuration.options.interval * 1e9))
        // Over an injected source there is no kernel to list connections of.
        poller = configuration.options.pollsConnections && module != nil ? ConnectionPoller(filter: try ResolvedFilter(configuration.filter, forKernel: false), clock: clock) : nil
    }

    public func decode(_ raw: UnsafeRawBufferPointer, into events: inout [TCPConnectionEvent]) throws(BPFError) {
        var event = try TCPEventDecoder.decode(raw, clock: clock, names: &names.pointee)
        if let poller {
            let ownerWasUnknown = event.ownerSource == .unknown
            poller.record(&event)
            // The kernel let it through its owner filters, not knowing the owner: filtered here.
            if ownerWasUnknown && !poller.passesFilter(event) {
                filteredAfterPoll.add(1, ordering: .relaxed)
                return
            }
        }
        if reported & event.kind.bit != 0 { events.append(consume event) }
    }

    deinit {
        names.deinitialize(count: 1)
        names.deallocate()
    }

    public var filteredInUserSpace: UInt64 { filteredAfterPoll.load(ordering: .relaxed) }

    /// Lists the open connections for the next snapshot or scan.
    public func prepare() { poller?.prepare() }

    /// The snapshot: a record for every connection open now.
    public func begin(into events: inout [TCPConnectionEvent]) {
        poller?.poll(everyConnection: true, into: &events)
    }

    public var scanInterval: Duration? { poller == nil ? nil : interval }

    /// A record for each open connection that moved data since its last one. Nothing at stop:
    /// what a connection moved after its last record is in its close.
    public func scan(into events: inout [TCPConnectionEvent], final: Bool) {
        if !final { poller?.poll(everyConnection: false, into: &events) }
    }

    public func counters(_ kernel: KernelCounters) -> Counters {
        var counters = Counters()
        counters.trackedSockets = kernel[NE_TCP_STAT_TRACKED.rawValue]
        counters.untrackedCloses = kernel[NE_TCP_STAT_CLOSED_UNTRACKED.rawValue]
        counters.trackedCloses = kernel[NE_TCP_STAT_CLOSED_TRACKED.rawValue]
        counters.adoptedSockets = kernel[NE_TCP_STAT_ADOPTED.rawValue]
        // What was tracked and neither closed nor is still in the map was evicted.
        if let owners, let live = try? owners.keys().count {
            let accounted = kernel[NE_TCP_STAT_CLOSED_TRACKED.rawValue] + UInt64(live)
            counters.evictedSockets = counters.trackedSockets > accounted ? counters.trackedSockets - accounted : 0
        }
        if let poller {
            counters.unownedConnections = poller.unownedConnections
            (counters.failedPolls, counters.lastPollFailure) = poller.failures
        }
        return counters
    }

    /// The TCP kind's counters (`MonitorStatistics/kind`).
    public struct Counters: EventKindCounters {
        /// Sockets the kernel started tracking (at connect, passive open, or adoption).
        public var trackedSockets: UInt64 = 0
        /// Closes of sockets not tracked (open before tracing began and never used since, or
        /// evicted): their owner is ``TCPConnectionEvent/OwnerSource/unknown`` unless the poll of
        /// open connections knew it.
        public var untrackedCloses: UInt64 = 0
        /// Closes of tracked sockets: the kernel program ran for each (whether or not it was
        /// reported). A tracked socket neither closed, evicted nor still open was never seen
        /// closing. A diagnostic for the package's tests (`OwnerPressureTests`), printed with the
        /// statistics.
        package var trackedCloses: UInt64 = 0
        /// Tracked sockets pushed out of the full LRU map before they closed
        /// (``Options/maxTrackedSockets``).
        public var evictedSockets: UInt64 = 0
        /// Open connections that got no interval record: no event owned them and no process
        /// holds their socket (closed by their process and still finishing, or owned in another
        /// way than a file).
        public var unownedConnections: UInt64 = 0
        /// Interval polls whose `sock_diag` dump failed (no records that interval).
        public var failedPolls: UInt64 = 0
        /// Why the last failed poll failed.
        public var lastPollFailure: BPFError?
        /// Sockets no entry knew (opened before tracing began, or evicted) that were tracked again
        /// when a process sent or received on them (owner ``TCPConnectionEvent/OwnerSource/firstIO``;
        /// needs `sock:sock_send_length`, Linux 6.3+).
        public var adoptedSockets: UInt64 = 0

        /// All zero.
        public init() {}
    }
}
