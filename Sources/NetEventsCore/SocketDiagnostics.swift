import Glibc
import SystemPackage

/// The sockets the kernel has open now, as `ss` lists them: a dump over netlink `sock_diag`
/// (`SOCK_DIAG_BY_FAMILY` with `struct inet_diag_req_v2`), the reference system's way of seeing
/// what is open. It covers the caller's network namespace.
///
/// Asking also gives each listed socket its kernel cookie if it had none, so tracing programs
/// that read cookies see the same ids from then on.
package enum SocketDiagnostics {
    /// One socket of a dump.
    package struct Socket: Sendable {
        /// The socket's family, addresses and ports.
        package var endpoints: SocketEndpoints
        /// The TCP state (`include/net/tcp_states.h` numbering); 7 (`CLOSE`) for an unconnected UDP socket.
        package var state: UInt8
        /// The kernel's cookie of the socket (`ss -e`'s `sk:`).
        package var cookie: UInt64
        /// The inode of the socket's file, as `/proc/PID/fd/N` links name it (`socket:[INODE]`); 0
        /// for a socket no file holds any more (closed by its process, still finishing).
        package var inode: UInt32
        /// The user id of the socket's file.
        package var uid: UInt32
        /// The protocol's information attribute (`INET_DIAG_INFO`: `struct tcp_info` for TCP), as
        /// the kernel wrote it; empty when not asked for or not given.
        package var info: [UInt8]
    }

    /// TCP states, as the bits of `idiag_states`.
    package static func states(_ numbers: [UInt8]) -> UInt32 { numbers.reduce(0) { $0 | 1 << UInt32($1) } }

    /// Every socket of `protocolNumber` (`IPPROTO_TCP`, `IPPROTO_UDP`) of each family in a state
    /// of `states` (a bit per state number), with its `INET_DIAG_INFO` attribute when `info`.
    /// - Throws: `BPFError.systemCallFailed` naming the netlink call that failed.
    package static func dump(protocolNumber: UInt8, families: [AddressFamily] = [.ipv4, .ipv6], states: UInt32, info: Bool)
        throws(BPFError) -> [Socket]
    {
        let purpose = "listing the open sockets (sock_diag)"
        let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkSockDiag)
        guard fd >= 0 else { throw .systemCallFailed(call: "socket(AF_NETLINK, NETLINK_SOCK_DIAG)", purpose: purpose, errno: Errno(rawValue: errno)) }
        defer { close(fd) }
        var sockets: [Socket] = []
        for (sequence, family) in families.enumerated() {
            try request(fd, family: family, protocolNumber: protocolNumber, states: states, info: info, sequence: UInt32(sequence + 1))
            try receive(fd, sequence: UInt32(sequence + 1), into: &sockets)
        }
        return sockets
    }

    private static let netlinkSockDiag: Int32 = 4  // NETLINK_SOCK_DIAG
    private static let sockDiagByFamily: UInt16 = 20  // SOCK_DIAG_BY_FAMILY
    private static let headerSize = 16  // struct nlmsghdr
    private static let requestSize = 56  // struct inet_diag_req_v2
    private static let messageSize = 72  // struct inet_diag_msg
    private static let infoAttribute: UInt16 = 2  // INET_DIAG_INFO

    /// Sends one dump request: `struct nlmsghdr` then `struct inet_diag_req_v2`.
    private static func request(_ fd: Int32, family: AddressFamily, protocolNumber: UInt8, states: UInt32, info: Bool, sequence: UInt32)
        throws(BPFError)
    {
        var message = [UInt8](repeating: 0, count: headerSize + requestSize)
        message.store(UInt32(message.count), at: 0)
        message.store(sockDiagByFamily, at: 4)
        message.store(UInt16(0x301), at: 6)  // NLM_F_REQUEST | NLM_F_DUMP
        message.store(sequence, at: 8)
        message[16] = UInt8(family.rawFamily)
        message[17] = protocolNumber
        message[18] = info ? UInt8(1 << (infoAttribute - 1)) : 0  // idiag_ext
        message.store(states, at: 20)
        let sent = message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == message.count else { throw .systemCallFailed(call: "send", purpose: "a sock_diag dump request", errno: Errno(rawValue: errno)) }
    }

    /// Reads the dump's replies up to `NLMSG_DONE`.
    private static func receive(_ fd: Int32, sequence: UInt32, into sockets: inout [Socket]) throws(BPFError) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                if count < 0 && errno == EINTR { continue }
                throw .systemCallFailed(call: "recv", purpose: "a sock_diag dump", errno: Errno(rawValue: errno))
            }
            var offset = 0
            while offset + headerSize <= count {
                let length = Int(buffer.load(UInt32.self, at: offset))
                let type = buffer.load(UInt16.self, at: offset + 4)
                guard length >= headerSize, offset + length <= count else {
                    // A listing cut short would forget connections: no listing at all instead.
                    throw .systemCallFailed(call: "recv", purpose: "a sock_diag dump (a malformed message)", errno: Errno(rawValue: EBADMSG))
                }
                switch type {
                case 3:  // NLMSG_DONE
                    return
                case 2:  // NLMSG_ERROR
                    let code = -Int32(bitPattern: buffer.load(UInt32.self, at: offset + headerSize))
                    throw .systemCallFailed(call: "SOCK_DIAG_BY_FAMILY", purpose: "a sock_diag dump", errno: Errno(rawValue: code))
                default:
                    if buffer.load(UInt32.self, at: offset + 8) == sequence,
                        let socket = parse(buffer[offset + headerSize..<offset + length])
                    {
                        sockets.append(socket)
                    }
                }
                offset += (length + 3) & ~3
            }
        }
    }

    /// One `struct inet_diag_msg` and its attributes.
    static func parse(_ bytes: ArraySlice<UInt8>) -> Socket? {
        let base = bytes.startIndex
        guard bytes.count >= messageSize, let family = AddressFamily(rawFamily: UInt16(bytes[base])) else { return nil }
        let width = family == .ipv4 ? 4 : 16
        let source = Array(bytes[base + 8..<base + 8 + width])
        let destination = Array(bytes[base + 24..<base + 24 + width])
        let endpoints = SocketEndpoints(
            family: family,
            sourceAddress: source.withUnsafeBytes { IPAddress(family: family, bytes: $0)! },
            sourcePort: UInt16(bytes[base + 4]) << 8 | UInt16(bytes[base + 5]),
            destinationAddress: destination.withUnsafeBytes { IPAddress(family: family, bytes: $0)! },
            destinationPort: UInt16(bytes[base + 6]) << 8 | UInt16(bytes[base + 7]))
        let array = Array(bytes)
        let cookie = UInt64(array.load(UInt32.self, at: 44)) | UInt64(array.load(UInt32.self, at: 48)) << 32
        var info: [UInt8] = []
        var offset = messageSize
        while offset + 4 <= array.count {
            let length = Int(array.load(UInt16.self, at: offset))
            let type = array.load(UInt16.self, at: offset + 2)
            guard length >= 4, offset + length <= array.count else { break }
            if type == infoAttribute { info = Array(array[offset + 4..<offset + length]) }
            offset += (length + 3) & ~3
        }
        return Socket(
            endpoints: endpoints, state: bytes[base + 1], cookie: cookie, inode: array.load(UInt32.self, at: 68),
            uid: array.load(UInt32.self, at: 64), info: info)
    }
}

extension Array where Element == UInt8 {
    /// The native-endian value at `offset`.
    func load<Value: FixedWidthInteger>(_: Value.Type, at offset: Int) -> Value {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Value.self) }
    }

    /// Writes `value` native-endian at `offset`.
    mutating func store<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
        withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: offset, as: Value.self) }
    }
}
