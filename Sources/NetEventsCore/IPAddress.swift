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
    case v6([UInt8])

    /// Reads an address of `family` from the first 4 or 16 bytes of `bytes`.
    public init?(family: AddressFamily, bytes: UnsafeRawBufferPointer) {
        switch family {
        case .ipv4:
            guard bytes.count >= 4 else { return nil }
            self = .v4(bytes[0], bytes[1], bytes[2], bytes[3])
        case .ipv6:
            guard bytes.count >= 16 else { return nil }
            self = .v6(Array(bytes[0..<16]))
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
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
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
            self = .v6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + address.bytes)
        } else {
            self = address
        }
    }

    /// The unspecified address of `family`: `0.0.0.0` or `::`.
    public static func unspecified(_ family: AddressFamily) -> IPAddress {
        family == .ipv4 ? .v4(0, 0, 0, 0) : .v6([UInt8](repeating: 0, count: 16))
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
        case .v6(let bytes): return bytes
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
