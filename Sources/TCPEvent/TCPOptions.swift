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

        /// The kinds of event reported (default: all); the others are left out in the kernel.
        /// Sockets are tracked the same whatever is chosen, so a close keeps its owner.
        public var events: Set<TCPConnectionEvent.Kind> = Set(TCPConnectionEvent.Kind.allCases)

        /// The defaults.
        public init() {}

        /// Options with a forced hook (nil: the best the kernel has) and these kinds of event.
        public init(hook: Hook? = nil, events: Set<TCPConnectionEvent.Kind> = Set(TCPConnectionEvent.Kind.allCases)) {
            self.hook = hook
            self.events = events
        }

        public func validate() throws(BPFError) {
            guard maxTrackedSockets >= 64 else {
                throw .invalidArgument("maxTrackedSockets must be at least 64, got \(maxTrackedSockets)")
            }
            guard !events.isEmpty else {
                throw .invalidArgument("events is empty: choose at least one of " + TCPConnectionEvent.Kind.allCases.map(\.description).joined(separator: ", "))
            }
        }
    }
}
