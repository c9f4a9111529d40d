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

    /// A process (`thread`: the acting thread's name, when it differs from `command`).
    public init(pid: Int32, uid: UInt32, command: String, thread: String? = nil) {
        self.pid = pid
        self.uid = uid
        self.command = command
        self.thread = thread == command ? nil : thread
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
    /// The remote address (for UDP: the peer of a connected socket, else the unspecified address).
    public var destinationAddress: IPAddress
    /// The remote port (for UDP: the peer's port of a connected socket, else 0).
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
    /// Reads `pid`, `uid`, `comm` and, if present, `thread`.
    public func decodeProcess() throws -> EventProcess {
        EventProcess(
            pid: try decode(Int32.self, forKey: "pid"), uid: try decode(UInt32.self, forKey: "uid"),
            command: try decode(String.self, forKey: "comm"), thread: try decodeIfPresent(String.self, forKey: "thread"))
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

/// What every event says: when, which process, and which socket endpoints. The process's and
/// the endpoints' fields read as the event's own members (`event.pid`, `event.sourcePort`).
@dynamicMemberLookup
public protocol NetworkEvent: Sendable, Hashable, Codable, EventFields {
    /// Wall-clock time of the event, in nanoseconds since the Unix epoch.
    var timeNanoseconds: UInt64 { get }
    /// The process behind the event.
    var process: EventProcess { get set }
    /// The socket's family, addresses and ports.
    var endpoints: SocketEndpoints { get set }
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
