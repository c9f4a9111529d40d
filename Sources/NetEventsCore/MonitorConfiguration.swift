/// What a monitor records: filters applied in the kernel, the same for every event kind.
///
/// Filters run in the kernel before an event is made (or, for counted traffic, before a datagram
/// takes a map slot), and what they discard is counted in ``MonitorStatistics/filteredEvents``.
/// Their values live in kernel maps: choosing them costs no compile. Every filter that is set
/// must match; a list matches any of its values; empty lists and nil fields match everything.
public struct EventFilter: Sendable, Hashable, CustomStringConvertible {
    /// Only records of these process ids (thread group ids).
    public var pids: Set<Int32>
    /// Only records of this real user id.
    public var uid: UInt32?
    /// Only sockets with one of these local ports, or one of them as the remote port (a connected
    /// socket's peer).
    public var ports: Set<UInt16>
    /// Only this address family. An IPv6 socket carrying IPv4-mapped traffic is IPv6.
    public var family: AddressFamily?
    /// Only processes in these cgroup v2 directories or below them (cgroups made later count
    /// too): paths below the hierarchy's root (`/system.slice/nginx.service`) or full paths
    /// inside its mount point (`/sys/fs/cgroup/unified/...`). Each must exist at start.
    public var cgroups: [String]
    /// Only processes in the containers whose id starts with one of these (lowercase
    /// hexadecimal; a full id or a prefix, as `docker ps` shows 12 digits). Each must match a
    /// running container at start (see ``Cgroup/container``).
    public var containers: [String]
    /// Only sockets in these network namespaces (inode numbers, as `ls -Li /proc/PID/ns/net`
    /// or `ip netns identify` shows them).
    public var networkNamespaces: Set<UInt32>

    /// Values a list may hold (`NE_FILTER_MAX_VALUES`), and cgroups plus containers a filter may name.
    public static let maximumValues = 1024, maximumCgroups = 16

    /// A filter; empty lists and nil fields match everything.
    public init(
        pids: Set<Int32> = [], uid: UInt32? = nil, ports: Set<UInt16> = [], family: AddressFamily? = nil,
        cgroups: [String] = [], containers: [String] = [], networkNamespaces: Set<UInt32> = []
    ) {
        (self.pids, self.uid, self.ports, self.family) = (pids, uid, ports, family)
        (self.cgroups, self.containers, self.networkNamespaces) = (cgroups, containers, networkNamespaces)
    }

    /// The one process id of ``pids``: nil when it holds none or several. Setting it makes it the only one.
    public var pid: Int32? {
        get { pids.count == 1 ? pids.first : nil }
        set { pids = newValue.map { [$0] } ?? [] }
    }

    /// The one port of ``ports``: nil when it holds none or several. Setting it makes it the only one.
    public var port: UInt16? {
        get { ports.count == 1 ? ports.first : nil }
        set { ports = newValue.map { [$0] } ?? [] }
    }

    /// Whether no filter is set.
    public var isEmpty: Bool { self == EventFilter() }

    /// Throws `BPFError.invalidArgument` naming the first bad field. (Whether the cgroups and
    /// containers exist is checked at start.)
    public func validate() throws(BPFError) {
        if let pid = pids.first(where: { $0 <= 0 }) { throw .invalidArgument("pid filter must be a positive process id, got \(pid)") }
        if ports.contains(0) { throw .invalidArgument("port filter must be 1-65535, got 0") }
        if networkNamespaces.contains(0) { throw .invalidArgument("netns filter must be a namespace's inode number, got 0") }
        for (name, count) in [("pid", pids.count), ("port", ports.count), ("netns", networkNamespaces.count)] where count > Self.maximumValues {
            throw .invalidArgument("a \(name) filter holds at most \(Self.maximumValues) values, got \(count)")
        }
        if let bad = containers.first(where: { $0.isEmpty || $0.count > 64 || !Cgroup.isContainerIDPrefix(Substring($0)) }) {
            throw .invalidArgument("container filter must be a container id or its prefix (lowercase hexadecimal, up to 64 digits), got '\(bad)'")
        }
        if let bad = cgroups.first(where: \.isEmpty) { throw .invalidArgument("cgroup filter must be a path, got '\(bad)'") }
        if cgroups.count + containers.count > Self.maximumCgroups {
            throw .invalidArgument("a filter names at most \(Self.maximumCgroups) cgroups and containers, got \(cgroups.count + containers.count)")
        }
    }

    /// What the filter keeps, as the tools' flags say it: `pid 10,20, port 80,443, cgroup /a`;
    /// empty for no filter.
    public var description: String {
        func list(_ values: some Sequence<some BinaryInteger>) -> String { values.sorted().map { "\($0)" }.joined(separator: ",") }
        var parts: [String] = []
        if !pids.isEmpty { parts.append("pid \(list(pids))") }
        if let uid { parts.append("uid \(uid)") }
        if !ports.isEmpty { parts.append("port \(list(ports))") }
        if let family { parts.append(family.rawValue) }
        parts += cgroups.map { "cgroup \($0)" } + containers.map { "container \($0)" }
        if !networkNamespaces.isEmpty { parts.append("netns \(list(networkNamespaces))") }
        return parts.joined(separator: ", ")
    }

    /// The `-DFILTERS` flag of `bpf/netevents_bpf.h` when any filter is set; the values go to maps.
    var compilerFlags: [String] { isEmpty ? [] : ["-DFILTERS"] }
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
    /// Whether to run on offsets that may be wrong: without BTF, from the headers of another
    /// kernel. Off (the default), such a start fails with `BPFError.untrustedOffsets`, which
    /// names the fixes; on, it runs and every event says so (``NetworkEvent/offsetsEstimated``).
    public var acceptsEstimatedOffsets = false
    /// Ring buffer size in pages (a power of two), or pages per CPU for a perf buffer; the
    /// default is the kind's (``EventKind/defaultBufferPages``).
    public var bufferPages: Int = Kind.defaultBufferPages
    /// Events that may wait for a slow consumer before new ones are dropped (counted in
    /// ``MonitorStatistics/droppedEvents``).
    public var deliveryCapacity: Int = 65_536
    /// How long ``EventMonitor/stop()`` waits for the callback to take the events still queued.
    /// A callback that has not caught up by then (blocked in a write to a pipe nobody reads, say)
    /// is given up on: the monitor is already detached, nothing more is delivered, every event
    /// the callback did not return from is counted in ``MonitorStatistics/droppedEvents``, and
    /// stop returns. Zero gives up at once on whatever is still queued, even for a callback that
    /// keeps up: the events of the kind's final scan, pushed at stop just before the wait
    /// (connections still open, UDP flows' last counts), are then dropped (and counted).
    /// A grace longer than a day waits a day. The callback of a run given up on may still run
    /// after stop returns; the monitor does not start again until it has returned
    /// (``EventMonitor/start(_:)``). Events consumed through ``EventMonitor/events()`` stay in
    /// their sequence; stop never waits for those.
    public var stopGracePeriod: Duration = .seconds(2)
    /// The shortest time between two reads of the kernel buffer. Samples that arrive meanwhile
    /// are read and delivered as one batch: one wakeup per batch instead of per sample, which is
    /// most of the tracer's cost under load (see BENCHMARKS.md). It is also the most latency it
    /// adds. Zero reads every sample at once.
    public var drainInterval: Duration = .milliseconds(2)
    /// Whether events get the names of their cgroup (``NetworkEvent/cgroup``: path, container,
    /// pod, service) and network namespace (``NetworkEvent/networkNamespaceName``), looked up
    /// once per cgroup and namespace (``EventAttributor``). Off, events carry only the raw ids.
    public var resolvesNames = true

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
        guard stopGracePeriod >= .zero else {
            throw .invalidArgument("stopGracePeriod must not be negative, got \(stopGracePeriod)")
        }
        guard drainInterval >= .zero, drainInterval <= .seconds(1) else {
            throw .invalidArgument("drainInterval must be between 0 and 1 second, got \(drainInterval)")
        }
        try options.validate()
    }
}
