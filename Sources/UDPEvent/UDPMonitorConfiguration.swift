import BCCRuntime

extension UDPMonitor {
    /// Which kernel hooks count sends and receives.
    public enum Hook: String, Sendable, CaseIterable, CustomStringConvertible {
        /// Tracepoints `sock:sock_send_length` / `sock:sock_recv_length`. Minimum kernel: 6.3.
        case tracepoint
        /// fexit on `udp_sendmsg`, `udpv6_sendmsg`, `udp_recvmsg`, `udpv6_recvmsg`. Minimum kernel: 5.5 with BTF.
        case fentry
        /// kprobes and kretprobes on the same functions (the reference system's path). Minimum kernel: 4.1.
        case kprobe

        public var description: String {
            switch self {
            case .tracepoint: return "tracepoints sock:sock_send_length/sock_recv_length"
            case .fentry: return "fexit udp(v6)_sendmsg/recvmsg"
            case .kprobe: return "kprobes udp(v6)_sendmsg/recvmsg"
            }
        }
    }

    /// Which hook reports a socket's release.
    public enum CloseHook: String, Sendable, CaseIterable, CustomStringConvertible {
        /// A cgroup `sock_release` program at the root of the cgroup v2 hierarchy. Minimum kernel: 5.9.
        case cgroup
        /// kprobes on `udp_destruct_sock` / `udpv6_destruct_sock`. Minimum kernel: 4.1.
        case kprobe
        /// No close hook: sockets are reported every interval, at stop, and when idle.
        case none

        public var description: String {
            switch self {
            case .cgroup: return "cgroup sock_release"
            case .kprobe: return "kprobe udp_destruct_sock"
            case .none: return "none (interval and idle reports only)"
            }
        }
    }

    /// What to trace and how. Every filter is applied in the kernel.
    public struct Configuration: Sendable, Equatable {
        /// Only traffic of this process id.
        public var pid: Int32?
        /// Only traffic of this user id.
        public var uid: UInt32?
        /// Only sockets with this local port, or connected to this remote port.
        public var port: UInt16?
        /// Only this address family (an IPv6 socket carrying IPv4-mapped traffic is IPv6).
        public var family: AddressFamily?
        /// Force the counting hook; nil picks tracepoint, then fentry, then kprobe.
        public var hook: Hook?
        /// Force the close hook; nil picks cgroup, then kprobe, then none.
        public var closeHook: CloseHook?
        /// Force the transport of close samples; nil picks the ring buffer where supported.
        public var transport: Transport?
        /// Force the offset source; nil takes BTF where the kernel has it.
        public var offsetSource: OffsetSource?
        /// Seconds between reports of pairs that moved data.
        public var interval: Double = 1
        /// Scans without movement after which a pair's kernel entry is freed (its counts were all
        /// reported); nil keeps entries until close or stop.
        public var idleReportsBeforeEviction: Int? = 60
        /// (socket, process) pairs the kernel map holds; traffic of pairs beyond it is counted in
        /// ``Statistics`` but not attributed.
        public var maxFlows: Int = 65_536
        /// Ring buffer pages (power of two), or pages per CPU for a perf buffer.
        public var bufferPages: Int = 64
        /// Events that may wait for a slow consumer before new ones are dropped (counted).
        public var deliveryCapacity: Int = 65_536
        /// The shortest time between two reads of the kernel buffer. Samples that arrive meanwhile
        /// are read and delivered as one batch: one wakeup per batch instead of per sample, which is
        /// most of the tracer's cost under load (see BENCHMARKS.md). It is also the most latency
        /// it adds. Zero reads every sample at once.
        public var drainInterval: Duration = .milliseconds(2)

        public init(
            pid: Int32? = nil, uid: UInt32? = nil, port: UInt16? = nil, family: AddressFamily? = nil,
            interval: Double = 1, hook: Hook? = nil, closeHook: CloseHook? = nil
        ) {
            self.pid = pid
            self.uid = uid
            self.port = port
            self.family = family
            self.interval = interval
            self.hook = hook
            self.closeHook = closeHook
        }

        /// Throws `BPFError.invalidArgument` naming the first bad option.
        public func validate() throws(BPFError) {
            if let pid, pid <= 0 { throw .invalidArgument("pid filter must be a positive process id, got \(pid)") }
            if port == 0 { throw .invalidArgument("port filter must be 1-65535, got 0") }
            guard interval.isFinite, interval >= 0.01, interval <= 86_400 else {
                throw .invalidArgument("interval must be between 0.01 and 86400 seconds, got \(interval)")
            }
            if let idle = idleReportsBeforeEviction, idle < 1 {
                throw .invalidArgument("idleReportsBeforeEviction must be at least 1, got \(idle)")
            }
            guard maxFlows >= 64 else { throw .invalidArgument("maxFlows must be at least 64, got \(maxFlows)") }
            guard bufferPages > 0, bufferPages & (bufferPages - 1) == 0 else {
                throw .invalidArgument("bufferPages must be a power of two, got \(bufferPages)")
            }
            guard deliveryCapacity >= 1 else {
                throw .invalidArgument("deliveryCapacity must be at least 1, got \(deliveryCapacity)")
            }
            guard drainInterval >= .zero, drainInterval <= .seconds(1) else {
                throw .invalidArgument("drainInterval must be between 0 and 1 second, got \(drainInterval)")
            }
        }
    }

    /// How close samples travel from the kernel (``BCCRuntime/SampleTransport``).
    public typealias Transport = SampleTransport

    /// Where the struct offsets the program reads come from (``BCCRuntime/OffsetSource``).
    public typealias OffsetSource = BCCRuntime.OffsetSource

    /// What was chosen at start.
    public struct AttachReport: Sendable, CustomStringConvertible {
        public var hook: Hook
        public var closeHook: CloseHook
        public var transport: Transport
        public var offsetSource: OffsetSource
        public var headers: KernelHeaders
        public var attachments: [String]
        public var notes: [String]

        public var description: String {
            var text = "hook: \(hook), close: \(closeHook), transport: \(transport.rawValue), offsets: \(offsetSource.rawValue)"
            if offsetSource == .headers && !headers.matchesRunningKernel {
                text += " (WARNING: header offsets from another kernel version)"
            }
            text += "; attached: " + attachments.joined(separator: ", ")
            if !notes.isEmpty { text += "; " + notes.joined(separator: "; ") }
            return text
        }
    }

    /// Counters that say what, if anything, was missed.
    public struct Statistics: Sendable, Equatable {
        /// Close samples the kernel could not hand over: the last counts of those pairs (since
        /// their previous report) are missing from the events.
        public var lostSamples: UInt64 = 0
        /// Events dropped because the consumer fell behind.
        public var droppedEvents: UInt64 = 0
        public var malformedSamples: UInt64 = 0
        /// (socket, process) pairs the kernel started counting.
        public var flows: UInt64 = 0
        /// Sockets whose release the close hook saw.
        public var closes: UInt64 = 0
        /// Packets and bytes counted while the map was full, so not attributed to a socket.
        public var unattributedPackets: UInt64 = 0
        public var unattributedBytes: UInt64 = 0
        /// Pairs whose kernel entries were freed after being idle (all their counts had been
        /// reported; nothing is lost).
        public var idleEvictions: UInt64 = 0
        /// Sockets used by more processes than the kernel tracks per socket (flushed by a scan at close).
        public var sharedSocketOverflows: UInt64 = 0
    }
}
