extension TCPKind {
    /// Options of the TCP kind (besides the options every kind has, in `MonitorConfiguration`).
    public struct Options: EventKindOptions {
        /// Force a hook; nil picks the best the kernel supports (tracepoint, then fentry, then kprobe).
        public var hook: Hook?
        /// Live sockets whose owners the kernel's LRU map holds; beyond this the least recently
        /// used are evicted (``Counters/evictedSockets``) and their closes say the owner is
        /// ``TCPConnectionEvent/OwnerSource/unknown``, unless a process sent or received on them
        /// since (``Counters/adoptedSockets``). By default ``defaultMaxTrackedSockets``.
        public var maxTrackedSockets: Int = Options.defaultMaxTrackedSockets
        /// Claim passive sockets at `accept(2)` (needs the syscalls tracepoints).
        public var tracksAccept = true
        /// Claim unowned sockets at their first send or receive (needs `sock:sock_send_length`, 6.3+).
        public var tracksFirstIO = true

        /// The kinds of event reported (default: all). The kernel leaves out the others, except
        /// connects and accepts while interval records need their owners (then they are dropped
        /// in user space). Sockets are tracked the same whatever is chosen, so a close keeps its owner.
        public var events: Set<TCPConnectionEvent.Kind> = Set(TCPConnectionEvent.Kind.allCases)
        /// Seconds between ``TCPConnectionEvent/Kind/interval`` records; 0 (the default): none,
        /// and no snapshot at start. Each poll lists the open connections over `sock_diag`.
        public var interval: Double = 0

        /// The sizes ``maxTrackedSockets`` may have (16,777,216 sockets are about 3.2 GB of kernel memory).
        public static let trackedSocketLimits: ClosedRange<Int> = 64...16_777_216
        /// ``trackedSocketLimits`` in words, for messages: "64 to 16777216".
        public static let trackedSocketLimitsText = "\(trackedSocketLimits.lowerBound) to \(trackedSocketLimits.upperBound)"

        /// The intervals allowed besides 0 (off), in seconds.
        public static let intervals: ClosedRange<Double> = 0.1...86_400
        /// ``intervals`` in words, for messages: "0.1 to 86400".
        public static let intervalsText = "\(intervals.lowerBound) to \(Int(intervals.upperBound))"

        /// Whether open connections are polled: an interval is set (``validate()`` makes sure
        /// interval records are then wanted).
        var pollsConnections: Bool { interval > 0 }

        /// The size the kernel gives its own table of established TCP sockets (`tcp_max_orphans`
        /// is half of it: the kernel scales both with memory; 262,144 sockets on a 24 GiB
        /// machine), within 65,536 and 1,048,576: so many live sockets that one process cannot
        /// push others' owners out without holding that many descriptors. Each costs about 200
        /// bytes of kernel memory (52 MB at 262,144), allocated when the program loads.
        public static let defaultMaxTrackedSockets: Int = {
            let orphans = SystemChecks.readKernelFile("/proc/sys/net/ipv4/tcp_max_orphans")
                .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            return min(max(2 * (orphans ?? 0), 65_536), 1_048_576)
        }()

        /// The defaults.
        public init() {}

        /// Options with a forced hook (nil: the best the kernel has), these kinds of event, and
        /// interval records every `interval` seconds (0: none).
        public init(hook: Hook? = nil, events: Set<TCPConnectionEvent.Kind> = Set(TCPConnectionEvent.Kind.allCases), interval: Double = 0) {
            self.hook = hook
            self.events = events
            self.interval = interval
        }

        public func validate() throws(BPFError) {
            guard Self.trackedSocketLimits.contains(maxTrackedSockets) else {
                throw .invalidArgument("maxTrackedSockets must be \(Self.trackedSocketLimitsText), got \(maxTrackedSockets)")
            }
            guard interval == 0 || Self.intervals.contains(interval) else {
                throw .invalidArgument("interval must be 0 (off) or \(Self.intervalsText) seconds, got \(interval)")
            }
            if interval > 0 && !events.contains(.interval) {
                throw .invalidArgument("interval is \(interval) s but events leaves out interval records: add .interval, or set the interval to 0")
            }
            if interval == 0 && events == [.interval] {
                throw .invalidArgument("events asks only for interval records, but the interval is 0 (off): set one")
            }
            guard !events.isEmpty else {
                throw .invalidArgument("events is empty: choose at least one of " + TCPConnectionEvent.Kind.allCases.map(\.description).joined(separator: ", "))
            }
        }
    }
}
