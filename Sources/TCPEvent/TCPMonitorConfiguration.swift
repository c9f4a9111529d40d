import BCCRuntime

extension TCPMonitor {
    /// Which kernel hook sees TCP state changes.
    public enum Hook: String, Sendable, CaseIterable, CustomStringConvertible {
        /// Tracepoint `sock:inet_sock_set_state`. Minimum kernel: 4.16.
        case tracepoint
        /// fentry on `tcp_set_state`. Minimum kernel: 5.5, x86-64, with BTF.
        case fentry
        /// kprobe on `tcp_set_state` (the reference system's path). Minimum kernel: 4.1, with `CONFIG_KPROBES`.
        case kprobe

        public var description: String {
            switch self {
            case .tracepoint: return "tracepoint sock:inet_sock_set_state"
            case .fentry: return "fentry tcp_set_state"
            case .kprobe: return "kprobe tcp_set_state"
            }
        }
    }

    /// How samples travel from the kernel (``BCCRuntime/SampleTransport``).
    public typealias Transport = SampleTransport

    /// Where the struct offsets the program reads come from (``BCCRuntime/OffsetSource``).
    public typealias OffsetSource = BCCRuntime.OffsetSource

    /// What to trace and how. Every filter is applied in the kernel.
    public struct Configuration: Sendable, Equatable {
        /// Only connections owned by this process id.
        public var pid: Int32?
        /// Only connections owned by this user id.
        public var uid: UInt32?
        /// Only connections with this local or remote port.
        public var port: UInt16?
        /// Only this address family.
        public var family: AddressFamily?
        /// Force a hook; nil picks the best the kernel supports (tracepoint, then fentry, then kprobe).
        public var hook: Hook?
        /// Force a transport; nil picks the ring buffer where supported.
        public var transport: Transport?
        /// Force an offset source; nil takes BTF where the kernel has it.
        public var offsetSource: OffsetSource?
        /// Live sockets tracked in the kernel's LRU map; sockets beyond this evict the oldest
        /// (counted in ``Statistics/evictedSockets``).
        public var maxTrackedSockets: Int = 65_536
        /// Ring buffer size in pages (power of two), or pages per CPU for a perf buffer.
        public var bufferPages: Int = 256
        /// Events that may wait for a slow consumer before new ones are dropped (counted).
        public var deliveryCapacity: Int = 65_536
        /// The shortest time between two reads of the kernel buffer. Samples that arrive meanwhile
        /// are read and delivered as one batch: one wakeup per batch instead of per sample, which is
        /// most of the tracer's cost under load (see BENCHMARKS.md). It is also the most latency
        /// it adds. Zero reads every sample at once.
        public var drainInterval: Duration = .milliseconds(2)
        /// Claim passive sockets at `accept(2)` (needs the syscalls tracepoints).
        public var tracksAccept = true
        /// Claim unowned sockets at their first send or receive (needs `sock:sock_send_length`, 6.3+).
        public var tracksFirstIO = true

        public init(
            pid: Int32? = nil, uid: UInt32? = nil, port: UInt16? = nil, family: AddressFamily? = nil,
            hook: Hook? = nil, transport: Transport? = nil, offsetSource: OffsetSource? = nil
        ) {
            self.pid = pid
            self.uid = uid
            self.port = port
            self.family = family
            self.hook = hook
            self.transport = transport
            self.offsetSource = offsetSource
        }

        /// Throws `BPFError.invalidArgument` naming the first bad option.
        public func validate() throws(BPFError) {
            if let pid, pid <= 0 { throw .invalidArgument("pid filter must be a positive process id, got \(pid)") }
            if port == 0 { throw .invalidArgument("port filter must be 1-65535, got 0") }
            guard maxTrackedSockets >= 64 else {
                throw .invalidArgument("maxTrackedSockets must be at least 64, got \(maxTrackedSockets)")
            }
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

    /// What was chosen at start, for logs and bug reports.
    public struct AttachReport: Sendable, CustomStringConvertible {
        public var hook: Hook
        public var transport: Transport
        public var offsetSource: OffsetSource
        public var headers: KernelHeaders
        /// The hooks attached, e.g. `tracepoint sock:inet_sock_set_state`.
        public var attachments: [String]
        /// Why a better hook was passed over, when one was.
        public var notes: [String]

        public var description: String {
            var text = "hook: \(hook), transport: \(transport.rawValue), offsets: \(offsetSource.rawValue)"
            switch headers.source {
            case .distribution(let release): text += ", headers: \(release)"
            case .environment: text += ", headers: BCC_KERNEL_SOURCE"
            case .runningKernel: text += ", headers: running kernel"
            case .kheaders: text += ", headers: kheaders"
            }
            if offsetSource == .headers && !headers.matchesRunningKernel {
                text += " (WARNING: header offsets from another kernel version; counters may be wrong)"
            }
            text += "; attached: " + attachments.joined(separator: ", ")
            if !notes.isEmpty { text += "; " + notes.joined(separator: "; ") }
            return text
        }
    }

    /// Counters that say what, if anything, was missed.
    public struct Statistics: Sendable, Equatable {
        /// Samples the kernel could not hand over (buffer full).
        public var lostSamples: UInt64 = 0
        /// Events dropped because the consumer fell `deliveryCapacity` behind.
        public var droppedEvents: UInt64 = 0
        /// Samples that could not be decoded.
        public var malformedSamples: UInt64 = 0
        /// Sockets the kernel started tracking (at connect or passive open).
        public var trackedSockets: UInt64 = 0
        /// Closes of sockets never tracked (open before tracing began, or evicted).
        public var untrackedCloses: UInt64 = 0
        /// Events the in-kernel filters discarded.
        public var filteredEvents: UInt64 = 0
        /// Tracked sockets pushed out of the full LRU map before they closed.
        public var evictedSockets: UInt64 = 0
    }
}
