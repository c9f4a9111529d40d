/// The process behind an event, as the kernel saw it: the same fields for every event kind.
public struct EventProcess: Sendable, Hashable {
    /// Process id (thread group id).
    public var pid: Int32
    /// Real user id.
    public var uid: UInt32
    /// The process's name: its thread-group leader's `comm` (at most 15 bytes), what `ps` shows
    /// for it. Any process can set its own, so it names what the process calls itself, not
    /// necessarily what runs.
    public var command: String
    /// The name of the thread that did it (opened the connection, sent the first datagram) when
    /// that differs from ``command``, e.g. `isc-net-0000` in `dig`; nil when they are the same.
    public var thread: String?
    /// The file name of the executable the process runs, read in the kernel (the task's
    /// `mm->exe_file`) when the event's owner was recorded, so a short-lived process keeps it and
    /// a process that renamed itself (``command`` `sshd`) still shows what really runs. At most
    /// 63 bytes (a longer name keeps its first 63). For a connection found open at start (owner
    /// `fd`), the name `/proc/PID/exe` links to. Nil where there is none (a kernel thread).
    public var executable: String?

    /// No known process: pid 0, uid 4294967295 (`(uid_t)-1`, which no user has), no name. The
    /// process of an event whose owner is unknown, rather than a guess.
    public static let unknown = EventProcess(pid: 0, uid: UInt32.max, command: "")

    /// A process (`thread`: the acting thread's name, when it differs from `command`).
    public init(pid: Int32, uid: UInt32, command: String, thread: String? = nil, executable: String? = nil) {
        self.pid = pid
        self.uid = uid
        self.command = command
        self.thread = thread == command ? nil : thread
        self.executable = executable
    }
}

/// A socket's address family and endpoints: the same fields for every event kind.
public struct SocketEndpoints: Sendable, Hashable {
    /// The address family, as the kernel reports it (a v4-mapped address on an IPv6 socket is IPv6).
    public var family: AddressFamily
    /// The local address.
    public var sourceAddress: IPAddress
    /// The local port.
    public var sourcePort: UInt16
    /// The remote address (for UDP: the flow's peer, connected or named by the calls; else the unspecified address).
    public var destinationAddress: IPAddress
    /// The remote port (for UDP: the flow's peer's port; 0 when no peer is known).
    public var destinationPort: UInt16

    /// Endpoints of a socket.
    public init(
        family: AddressFamily, sourceAddress: IPAddress, sourcePort: UInt16, destinationAddress: IPAddress,
        destinationPort: UInt16
    ) {
        self.family = family
        self.sourceAddress = sourceAddress
        self.sourcePort = sourcePort
        self.destinationAddress = destinationAddress
        self.destinationPort = destinationPort
    }
}

/// A JSON key of an event, written as a string literal (`"rx_bytes"`). Every kind encodes with
/// it; the keys all kinds share are written by one function (`EventFieldWriter.writeHeader(event:time:process:endpoints:)`).
public struct EventCodingKey: CodingKey, ExpressibleByStringLiteral, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }

    /// The key `value`.
    public init(stringLiteral value: String) { stringValue = value }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == EventCodingKey {
    /// Reads `pid`, `uid`, `comm` and, if present, `thread` and `exe`.
    public func decodeProcess() throws -> EventProcess {
        EventProcess(
            pid: try decode(Int32.self, forKey: "pid"), uid: try decode(UInt32.self, forKey: "uid"),
            command: try decode(String.self, forKey: "comm"), thread: try decodeIfPresent(String.self, forKey: "thread"),
            executable: try decodeIfPresent(String.self, forKey: "exe"))
    }

    /// Reads the cgroup of `cgroup_id` and `cgroup` (its path); nil when the path is absent.
    public func decodeCgroup() throws -> Cgroup? {
        guard let path = try decodeIfPresent(String.self, forKey: "cgroup") else { return nil }
        return Cgroup(id: try decode(UInt64.self, forKey: "cgroup_id"), path: path)
    }

    /// Reads `family`, `saddr`, `sport`, `daddr` and `dport`.
    public func decodeEndpoints() throws -> SocketEndpoints {
        SocketEndpoints(
            family: try decode(AddressFamily.self, forKey: "family"),
            sourceAddress: try decode(IPAddress.self, forKey: "saddr"), sourcePort: try decode(UInt16.self, forKey: "sport"),
            destinationAddress: try decode(IPAddress.self, forKey: "daddr"),
            destinationPort: try decode(UInt16.self, forKey: "dport"))
    }

    /// Reads a value named by its `description` (`"ESTABLISHED"`).
    public func decodeNamed<Value: CaseIterable & CustomStringConvertible>(_ type: Value.Type, forKey key: EventCodingKey) throws -> Value {
        let name = try decode(String.self, forKey: key)
        guard let value = Value.allCases.first(where: { $0.description == name }) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "unknown \(key.stringValue) \(name)")
        }
        return value
    }
}

/// What every event says: when, which process (and in which cgroup), which socket endpoints (and
/// in which network namespace). The process's and the endpoints' fields read as the event's own
/// members (`event.pid`, `event.sourcePort`).
@dynamicMemberLookup
public protocol NetworkEvent: Sendable, Hashable, Codable, EventFields {
    /// Wall-clock time of the event, in nanoseconds since the Unix epoch.
    var timeNanoseconds: UInt64 { get }
    /// The process behind the event.
    var process: EventProcess { get set }
    /// The socket's family, addresses and ports.
    var endpoints: SocketEndpoints { get set }
    /// The id of the process's cgroup v2 (0 when unknown).
    var cgroupID: UInt64 { get }
    /// The cgroup of ``cgroupID``, with the container, pod and service its path names; nil when
    /// unknown (see ``EventAttributor``).
    var cgroup: Cgroup? { get set }
    /// The socket's network namespace: its inode number (as in `/proc/PID/ns/net`).
    var networkNamespace: UInt32 { get }
    /// The name `ip netns` gave ``networkNamespace``; nil when it has none.
    var networkNamespaceName: String? { get set }
    /// Whether the fields read from kernel structs are estimates: offsets from another kernel's
    /// headers, accepted with ``MonitorConfiguration/acceptsEstimatedOffsets``. JSON
    /// `offsets_estimated: true`, written only when set.
    var offsetsEstimated: Bool { get set }
}

extension NetworkEvent {
    /// A field of the process, as the event's own (`event.pid`).
    @inlinable public subscript<Value>(dynamicMember keyPath: WritableKeyPath<EventProcess, Value>) -> Value {
        get { process[keyPath: keyPath] }
        set { process[keyPath: keyPath] = newValue }
    }

    /// A field of the endpoints, as the event's own (`event.sourcePort`).
    @inlinable public subscript<Value>(dynamicMember keyPath: WritableKeyPath<SocketEndpoints, Value>) -> Value {
        get { endpoints[keyPath: keyPath] }
        set { endpoints[keyPath: keyPath] = newValue }
    }
}
