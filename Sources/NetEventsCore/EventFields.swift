/// Receives an event's fields, key by key, in the event's order: the one place a kind states its
/// keys. `Codable` encoding (``EventFields/encode(to:)``) and the tools' JSON lines
/// (``JSONLineWriter``) are both writers, so the two cannot disagree.
///
/// Keys are ASCII identifiers written as literals (`"rx_bytes"`): a writer need not escape them.
public protocol EventFieldWriter {
    /// An unsigned number.
    mutating func write(_ value: UInt64, forKey key: StaticString)
    /// A signed number.
    mutating func write(_ value: Int64, forKey key: StaticString)
    /// A number, or `null` when absent.
    mutating func write(_ value: UInt64?, forKey key: StaticString)
    /// Text (escaped by the writer as its format needs).
    mutating func write(_ value: String, forKey key: StaticString)
    /// Text that may be absent: the key is left out when it is (as `encodeIfPresent` does).
    mutating func write(_ value: String?, forKey key: StaticString)
    /// An address in its textual form, as `inet_ntop` writes it.
    mutating func write(_ value: IPAddress, forKey key: StaticString)
    /// A list of addresses, each in its textual form.
    mutating func write(_ values: [IPAddress], forKey key: StaticString)
    /// `true` or `false`.
    mutating func write(_ value: Bool, forKey key: StaticString)
}

extension EventFieldWriter {
    /// A number of any width.
    @inlinable public mutating func write(_ value: some UnsignedInteger & FixedWidthInteger, forKey key: StaticString) {
        write(UInt64(value), forKey: key)
    }

    /// A signed number of any width.
    @inlinable public mutating func write(_ value: some SignedInteger & FixedWidthInteger, forKey key: StaticString) {
        write(Int64(value), forKey: key)
    }

    /// A list of addresses, for a writer made before lists existed: one text of comma-separated addresses.
    public mutating func write(_ values: [IPAddress], forKey key: StaticString) {
        write(values.map(\.description).joined(separator: ","), forKey: key)
    }

    /// `true` or `false`, for a writer made before booleans existed: as text.
    public mutating func write(_ value: Bool, forKey key: StaticString) { write(value ? "true" : "false", forKey: key) }

    /// Writes the keys every event starts with, in the order of DESIGN.md: `event`, `time_ns`,
    /// `pid`, `uid`, `comm`, `thread` (only when the acting thread's name differs from `comm`),
    /// `exe` (when known), `family`, `saddr`, `sport`, `daddr`, `dport`.
    @inlinable public mutating func writeHeader(event: String, time: UInt64, process: EventProcess, endpoints: SocketEndpoints) {
        write(event, forKey: "event")
        write(time, forKey: "time_ns")
        write(Int64(process.pid), forKey: "pid")
        write(UInt64(process.uid), forKey: "uid")
        write(process.command, forKey: "comm")
        write(process.thread, forKey: "thread")
        write(process.executable, forKey: "exe")
        write(endpoints.family.rawValue, forKey: "family")
        write(endpoints.sourceAddress, forKey: "saddr")
        write(UInt64(endpoints.sourcePort), forKey: "sport")
        write(endpoints.destinationAddress, forKey: "daddr")
        write(UInt64(endpoints.destinationPort), forKey: "dport")
    }
}

extension EventFieldWriter {
    /// Writes where the process and the socket live, the same keys for every kind: `cgroup_id`,
    /// then (when known) `cgroup`, `container_id`, `container_runtime`, `pod_uid`, `service`;
    /// `netns`, then (when named) `netns_name`; `offsets_estimated` only when true.
    @inlinable public mutating func writeAttribution(of event: some NetworkEvent) {
        write(event.cgroupID, forKey: "cgroup_id")
        if let cgroup = event.cgroup {
            write(cgroup.path, forKey: "cgroup")
            write(cgroup.container?.id, forKey: "container_id")
            write(cgroup.container?.runtime.rawValue, forKey: "container_runtime")
            write(cgroup.podUID, forKey: "pod_uid")
            write(cgroup.service, forKey: "service")
        }
        write(UInt64(event.networkNamespace), forKey: "netns")
        write(event.networkNamespaceName, forKey: "netns_name")
        if event.offsetsEstimated { write(true, forKey: "offsets_estimated") }
    }
}

/// An event that lists its fields to any ``EventFieldWriter``. Its `Encodable` conformance comes
/// from that list, so `JSONEncoder`, ``EventJSONEncoder`` and the tools' ``JSONLineWriter`` write
/// the same keys in the same order.
public protocol EventFields: Encodable {
    /// Writes every field, in order.
    func writeFields<Writer: EventFieldWriter>(to writer: inout Writer)
}

extension EventFields {
    /// Encodes the fields ``writeFields(to:)`` lists, as one keyed container.
    public func encode(to encoder: any Encoder) throws {
        var writer = CodingFieldWriter(container: encoder.container(keyedBy: EventCodingKey.self))
        writeFields(to: &writer)
        if let error = writer.error { throw error }
    }
}

/// Adapts a keyed container to ``EventFieldWriter``: the first error is kept and thrown after.
struct CodingFieldWriter: EventFieldWriter {
    var container: KeyedEncodingContainer<EventCodingKey>
    var error: (any Error)?

    private mutating func attempt(_ body: (inout KeyedEncodingContainer<EventCodingKey>) throws -> Void) {
        guard error == nil else { return }
        do { try body(&container) } catch { self.error = error }
    }

    mutating func write(_ value: UInt64, forKey key: StaticString) {
        attempt { try $0.encode(value, forKey: EventCodingKey(key)) }
    }
    mutating func write(_ value: Int64, forKey key: StaticString) {
        attempt { try $0.encode(value, forKey: EventCodingKey(key)) }
    }
    mutating func write(_ value: UInt64?, forKey key: StaticString) {
        // `null`, as `JSONEncoder` writes an optional given to `encode(_:forKey:)`.
        attempt { try $0.encode(value, forKey: EventCodingKey(key)) }
    }
    mutating func write(_ value: String, forKey key: StaticString) {
        attempt { try $0.encode(value, forKey: EventCodingKey(key)) }
    }
    mutating func write(_ value: String?, forKey key: StaticString) {
        attempt { try $0.encodeIfPresent(value, forKey: EventCodingKey(key)) }
    }
    mutating func write(_ value: IPAddress, forKey key: StaticString) {
        attempt { try $0.encode(value, forKey: EventCodingKey(key)) }
    }
    mutating func write(_ values: [IPAddress], forKey key: StaticString) {
        attempt { try $0.encode(values, forKey: EventCodingKey(key)) }
    }
    mutating func write(_ value: Bool, forKey key: StaticString) {
        attempt { try $0.encode(value, forKey: EventCodingKey(key)) }
    }
}

extension EventCodingKey {
    /// The key `key`.
    init(_ key: StaticString) { self.init(stringLiteral: key.description) }
}
