import Glibc

/// An address family as the kernel reports it.
public enum AddressFamily: String, Sendable, Hashable, Codable, CaseIterable {
    /// IPv4 (`AF_INET`).
    case ipv4
    /// IPv6 (`AF_INET6`), including IPv4-mapped addresses on IPv6 sockets.
    case ipv6

    /// `AF_INET` or `AF_INET6`.
    public var rawFamily: UInt16 { self == .ipv4 ? UInt16(AF_INET) : UInt16(AF_INET6) }

    /// The family for `AF_INET`/`AF_INET6`, nil for anything else.
    public init?(rawFamily: UInt16) {
        switch Int32(rawFamily) {
        case AF_INET: self = .ipv4
        case AF_INET6: self = .ipv6
        default: return nil
        }
    }
}

/// An IPv4 or IPv6 address, kept exactly as the kernel reported it (a v4-mapped IPv6 address
/// stays IPv6). Formats as `inet_ntop` does.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// Four bytes in network order.
    case v4(UInt8, UInt8, UInt8, UInt8)
    /// Sixteen bytes in network order.
    case v6(IPv6Bytes)

    /// Reads an address of `family` from the first 4 or 16 bytes of `bytes`.
    public init?(family: AddressFamily, bytes: UnsafeRawBufferPointer) {
        switch family {
        case .ipv4:
            guard bytes.count >= 4 else { return nil }
            self = .v4(bytes[0], bytes[1], bytes[2], bytes[3])
        case .ipv6:
            guard bytes.count >= 16 else { return nil }
            self = .v6(IPv6Bytes(bytes))
        }
    }

    /// Parses a textual address (`127.0.0.1`, `::1`).
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = withUnsafeBytes(of: &v4) { .v4($0[0], $0[1], $0[2], $0[3]) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { IPv6Bytes($0) })
            return
        }
        return nil
    }

    /// A datagram peer's address as the kernel samples it (`struct ne_udp_peer`), in its
    /// socket's family: an IPv4 peer of an IPv6 socket becomes v4-mapped, as the kernel shows a
    /// connected one. Nil when `peerFamily` is no address family (no peer known).
    package init?(peerFamily: UInt16, bytes: UnsafeRawBufferPointer, socketFamily: AddressFamily) {
        guard let family = AddressFamily(rawFamily: peerFamily), let address = IPAddress(family: family, bytes: bytes) else { return nil }
        if family == .ipv4, socketFamily == .ipv6 {
            self = .v6(IPv6Bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + address.bytes)!)
        } else {
            self = address
        }
    }

    /// The unspecified address of `family`: `0.0.0.0` or `::`.
    public static func unspecified(_ family: AddressFamily) -> IPAddress {
        family == .ipv4 ? .v4(0, 0, 0, 0) : .v6(IPv6Bytes())
    }

    /// The address's family.
    public var family: AddressFamily {
        if case .v4 = self { return .ipv4 }
        return .ipv6
    }

    /// The address's bytes in network order.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let a, let b, let c, let d): return [a, b, c, d]
        case .v6(let bytes): return Array(bytes)
        }
    }

    /// The textual form, as `inet_ntop` writes it (the tools' formatter: `LineCursor.appendAddress`).
    public var description: String {
        var text = LineCursor(LineBuffer(capacity: 64))
        text.appendAddress(self)
        text.commit()
        return text.buffer.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }
}

/// The sixteen bytes of an IPv6 address, in network order, held in the value itself: an event's
/// addresses cost no allocation. A collection of its bytes (`address[15]`, `Array(address)`).
public struct IPv6Bytes: Sendable, Hashable, RandomAccessCollection, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// Bytes 0-7 and 8-15, in memory order.
    private var storage: (UInt64, UInt64)

    /// `::`, all zero.
    public init() { storage = (0, 0) }

    /// The first sixteen bytes of `raw`, which must hold at least that many.
    public init(_ raw: UnsafeRawBufferPointer) {
        precondition(raw.count >= 16, "an IPv6 address needs 16 bytes, got \(raw.count)")
        storage = (0, 0)
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<16])) }
    }

    /// The bytes of `bytes`; nil unless there are exactly sixteen.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        storage = (0, 0)
        withUnsafeMutableBytes(of: &storage) { storage in
            for (index, byte) in bytes.enumerated() { storage[index] = byte }
        }
    }

    /// Sixteen bytes written out (`[0, 0, ..., 1]` is `::1`); any other count is a programming error.
    public init(arrayLiteral bytes: UInt8...) {
        guard let address = IPv6Bytes(bytes) else { preconditionFailure("an IPv6 address has 16 bytes, not \(bytes.count)") }
        self = address
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { 16 }

    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < 16, "IPv6 byte index \(position) out of range")
        return Swift.withUnsafeBytes(of: storage) { $0[position] }
    }

    /// Calls `body` with the sixteen bytes.
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try Swift.withUnsafeBytes(of: storage, body)
    }

    public static func == (lhs: IPv6Bytes, rhs: IPv6Bytes) -> Bool { lhs.storage == rhs.storage }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0)
        hasher.combine(storage.1)
    }

    /// The address as `inet_ntop` writes it.
    public var description: String { IPAddress.v6(self).description }
}

extension IPAddress: Codable {
    /// Decodes the textual form (`127.0.0.1`, `::1`).
    /// - Throws: `DecodingError.dataCorrupted` for text that is no address.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let address = IPAddress(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an IP address: \(text)")
        }
        self = address
    }

    /// Encodes the textual form, as `inet_ntop` writes it.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
