extension TCPKind {
    /// Options of the TCP kind (besides the options every kind has, in `MonitorConfiguration`).
    public struct Options: EventKindOptions {
        /// Force a hook; nil picks the best the kernel supports (tracepoint, then fentry, then kprobe).
        public var hook: Hook?
        /// Live sockets tracked in the kernel's LRU map; sockets beyond this evict the oldest
        /// (counted in ``Counters/evictedSockets``).
        public var maxTrackedSockets: Int = 65_536
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

        /// The intervals allowed besides 0 (off), in seconds.
        public static let intervals: ClosedRange<Double> = 0.1...86_400
        /// ``intervals`` in words, for messages: "0.1 to 86400".
        public static let intervalsText = "\(intervals.lowerBound) to \(Int(intervals.upperBound))"

        /// Whether open connections are polled: an interval is set (``validate()`` makes sure
        /// interval records are then wanted).
        var pollsConnections: Bool { interval > 0 }

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
            guard maxTrackedSockets >= 64 else {
                throw .invalidArgument("maxTrackedSockets must be at least 64, got \(maxTrackedSockets)")
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
