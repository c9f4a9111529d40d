extension UDPKind {
    /// Options of the UDP kind (besides the options every kind has, in `MonitorConfiguration`).
    public struct Options: EventKindOptions {
        /// Force the counting hook; nil picks tracepoint, then fentry, then kprobe.
        public var hook: Hook?
        /// Force the close hook; nil picks cgroup, then kprobe, then none.
        public var closeHook: CloseHook?
        /// Seconds between reports of pairs that moved data.
        public var interval: Double = 1
        /// Scans without movement after which a pair's kernel entry is freed (its counts were all
        /// reported); nil keeps entries until close or stop.
        public var idleReportsBeforeEviction: Int? = 60
        /// Whether flows are told apart by peer: cgroup `sendmsg`/`recvmsg` programs give the peer
        /// of each datagram of an unconnected socket (a server's line per client). They run on
        /// every unconnected UDP send and addressed receive of the host, under the socket's lock;
        /// false counts per (socket, process) and its connected peer only, without them.
        public var peers = true
        /// (socket, process, peer) flows the kernel map holds; traffic of flows beyond it is counted in
        /// ``Counters`` but not attributed.
        public var maxFlows: Int = 65_536

        /// The defaults.
        public init() {}

        /// Options with a report interval and forced hooks.
        public init(interval: Double = 1, hook: Hook? = nil, closeHook: CloseHook? = nil) {
            self.interval = interval
            self.hook = hook
            self.closeHook = closeHook
        }

        public func validate() throws(BPFError) {
            guard interval.isFinite, interval >= 0.01, interval <= 86_400 else {
                throw .invalidArgument("interval must be between 0.01 and 86400 seconds, got \(interval)")
            }
            if let idle = idleReportsBeforeEviction, idle < 1 {
                throw .invalidArgument("idleReportsBeforeEviction must be at least 1, got \(idle)")
            }
            guard maxFlows >= 64 else { throw .invalidArgument("maxFlows must be at least 64, got \(maxFlows)") }
        }
    }
}
