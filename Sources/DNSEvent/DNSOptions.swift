extension DNSKind {
    /// Options of the DNS kind (besides the options every kind has, in `MonitorConfiguration`).
    public struct Options: EventKindOptions {
        /// The ports whose datagrams are DNS, matched against the socket's own port and the
        /// datagram's peer's, so clients and servers are both seen. (Not `ports`: that name is
        /// the filter's, `EventFilter/ports`.)
        public var dnsPorts: Set<UInt16> = [53]
        /// Force the hook that sees datagrams; nil picks tracepoint, then fentry, then kprobe.
        public var hook: HookType?
        /// Seconds a query waits for its response before it is forgotten (its response, if it
        /// comes later, has no latency).
        public var queryTimeout: Double = 30
        /// Queries awaiting a response, at most; beyond it the oldest is forgotten (counted in
        /// ``Counters/forgottenQueries``).
        public var maxPendingQueries: Int = 16_384

        /// The defaults: port 53.
        public init() {}

        /// Options with DNS ports and a forced hook.
        public init(dnsPorts: Set<UInt16> = [53], hook: HookType? = nil) {
            self.dnsPorts = dnsPorts
            self.hook = hook
        }

        public func validate() throws(BPFError) {
            guard !dnsPorts.isEmpty, !dnsPorts.contains(0) else {
                throw .invalidArgument("dnsPorts must be 1-65535, at least one, got \(dnsPorts.sorted())")
            }
            guard queryTimeout.isFinite, queryTimeout > 0, queryTimeout <= 3600 else {
                throw .invalidArgument("queryTimeout must be between 0 and 3600 seconds, got \(queryTimeout)")
            }
            guard maxPendingQueries >= 1, maxPendingQueries <= 1_000_000 else {
                throw .invalidArgument("maxPendingQueries must be between 1 and 1000000, got \(maxPendingQueries)")
            }
        }
    }
}
