/// What a monitor records: filters applied in the kernel, the same for every event kind.
///
/// Filters run in the kernel before an event is made (or, for counted traffic, before a datagram
/// takes a map slot), and what they discard is counted in ``MonitorStatistics/filteredEvents``.
public struct EventFilter: Sendable, Hashable {
    /// Only records of this process id (thread group id).
    public var pid: Int32?
    /// Only records of this real user id.
    public var uid: UInt32?
    /// Only sockets with this local port, or with this remote port (a connected socket's peer).
    public var port: UInt16?
    /// Only this address family. An IPv6 socket carrying IPv4-mapped traffic is IPv6.
    public var family: AddressFamily?

    /// A filter; nil fields match everything.
    public init(pid: Int32? = nil, uid: UInt32? = nil, port: UInt16? = nil, family: AddressFamily? = nil) {
        self.pid = pid
        self.uid = uid
        self.port = port
        self.family = family
    }

    /// Throws `BPFError.invalidArgument` naming the first bad field.
    public func validate() throws(BPFError) {
        if let pid, pid <= 0 { throw .invalidArgument("pid filter must be a positive process id, got \(pid)") }
        if port == 0 { throw .invalidArgument("port filter must be 1-65535, got 0") }
    }

    /// Whether a record of this owner and these endpoints passes: the same rule as the
    /// programs' `filter_rejects`, for records made in user space.
    package func matches(pid: Int32, uid: UInt32, endpoints: SocketEndpoints) -> Bool {
        if let wanted = self.pid, wanted != pid { return false }
        if let wanted = self.uid, wanted != uid { return false }
        return matches(endpoints: endpoints)
    }

    /// Whether these endpoints pass the port and family filters (the owner not known yet).
    package func matches(endpoints: SocketEndpoints) -> Bool {
        if let port, port != endpoints.sourcePort && port != endpoints.destinationPort { return false }
        if let family, family != endpoints.family { return false }
        return true
    }

    /// The `-DFILTER_*` flags of `bpf/netevents_bpf.h`.
    var compilerFlags: [String] {
        var flags: [String] = []
        if let pid { flags.append("-DFILTER_PID=\(pid)") }
        if let uid { flags.append("-DFILTER_UID=\(uid)") }
        if let port { flags.append("-DFILTER_PORT=\(port)") }
        if let family { flags.append("-DFILTER_FAMILY=\(family.rawFamily)") }
        return flags
    }
}

/// How a monitor of one event kind traces: the options every kind shares, and the kind's own.
///
/// The kind's options and the filter's fields read and write as if they were this struct's own
/// (`configuration.hook = .kprobe`, `configuration.port = 443`).
@dynamicMemberLookup
public struct MonitorConfiguration<Kind: EventKind>: Sendable, Equatable {
    /// What to record; applied in the kernel.
    public var filter: EventFilter
    /// The kind's own options.
    public var options: Kind.Options
    /// Force a transport; nil picks the ring buffer where the kernel has it (Linux 5.8+).
    public var transport: SampleTransport?
    /// Force where struct offsets come from; nil takes BTF where the kernel has it.
    public var offsetSource: OffsetSource?
    /// Ring buffer size in pages (a power of two), or pages per CPU for a perf buffer; the
    /// default is the kind's (``EventKind/defaultBufferPages``).
    public var bufferPages: Int = Kind.defaultBufferPages
    /// Events that may wait for a slow consumer before new ones are dropped (counted in
    /// ``MonitorStatistics/droppedEvents``).
    public var deliveryCapacity: Int = 65_536
    /// The shortest time between two reads of the kernel buffer. Samples that arrive meanwhile
    /// are read and delivered as one batch: one wakeup per batch instead of per sample, which is
    /// most of the tracer's cost under load (see BENCHMARKS.md). It is also the most latency it
    /// adds. Zero reads every sample at once.
    public var drainInterval: Duration = .milliseconds(2)

    /// A configuration: the defaults, with a filter and the kind's options.
    public init(filter: EventFilter = EventFilter(), options: Kind.Options = Kind.Options()) {
        self.filter = filter
        self.options = options
    }

    /// The kind's options, as if they were the configuration's own.
    @inlinable public subscript<Value>(dynamicMember keyPath: WritableKeyPath<Kind.Options, Value>) -> Value {
        get { options[keyPath: keyPath] }
        set { options[keyPath: keyPath] = newValue }
    }

    /// The filter's fields, as if they were the configuration's own.
    @inlinable public subscript<Value>(dynamicMember keyPath: WritableKeyPath<EventFilter, Value>) -> Value {
        get { filter[keyPath: keyPath] }
        set { filter[keyPath: keyPath] = newValue }
    }

    /// Throws `BPFError.invalidArgument` naming the first bad option.
    public func validate() throws(BPFError) {
        try filter.validate()
        guard bufferPages > 0, bufferPages & (bufferPages - 1) == 0 else {
            throw .invalidArgument("bufferPages must be a power of two, got \(bufferPages)")
        }
        guard deliveryCapacity >= 1 else {
            throw .invalidArgument("deliveryCapacity must be at least 1, got \(deliveryCapacity)")
        }
        guard drainInterval >= .zero, drainInterval <= .seconds(1) else {
            throw .invalidArgument("drainInterval must be between 0 and 1 second, got \(drainInterval)")
        }
        try options.validate()
    }
}
