import BCCRuntime

/// The counters and identity of one (socket, process) pair, as the kernel map holds them
/// (`struct udp_key_t` and `struct udp_flow_t` of `bpf/udp_events.c`).
struct UDPFlow: Sendable, Equatable {
    struct Key: Hashable, Sendable {
        var socket: UInt64
        var pid: UInt32
        /// Tells apart two sockets at one kernel address.
        var startNanoseconds: UInt64
    }

    struct Counts: Equatable, Sendable {
        var txBytes: UInt64 = 0
        var rxBytes: UInt64 = 0
        var txPackets: UInt64 = 0
        var rxPackets: UInt64 = 0

        static func - (lhs: Counts, rhs: Counts) -> Counts {
            // Counters only grow; a smaller value means a new entry, which the key's start prevents.
            Counts(
                txBytes: lhs.txBytes &- rhs.txBytes, rxBytes: lhs.rxBytes &- rhs.rxBytes,
                txPackets: lhs.txPackets &- rhs.txPackets, rxPackets: lhs.rxPackets &- rhs.rxPackets)
        }

        var isZero: Bool { txBytes == 0 && rxBytes == 0 && txPackets == 0 && rxPackets == 0 }
    }

    var key: Key
    var closeNanoseconds: UInt64
    var counts: Counts
    var cgroupID: UInt64
    var uid: UInt32
    var networkNamespace: UInt32
    var family: AddressFamily
    var sourcePort: UInt16
    var destinationPort: UInt16
    var filtered: Bool
    var sourceAddress: IPAddress
    var destinationAddress: IPAddress
    var command: String
}

/// Decodes `struct udp_flow_t` (120 bytes) and the close sample `struct udp_close_t` (136 bytes).
public enum UDPFlowDecoder {
    /// Size of `struct udp_key_t`.
    public static let keySize = 16
    /// Size of `struct udp_flow_t`.
    public static let flowSize = 120
    /// Size of a close sample: key then flow.
    public static let closeSampleSize = keySize + flowSize

    enum Offset {
        static let start = 0, close = 8, txBytes = 16, rxBytes = 24, txPackets = 32, rxPackets = 40
        static let cgroup = 48, uid = 56, netns = 60, family = 64, sport = 66, dport = 68, filtered = 70
        static let saddr = 72, daddr = 88, comm = 104
    }

    /// Decodes a key and flow; `raw` holds the flow only.
    static func flow(socket: UInt64, pid: UInt32, _ raw: UnsafeRawBufferPointer) throws(BPFError) -> UDPFlow {
        guard raw.count >= flowSize else {
            throw .malformedSample(expectedSize: flowSize, actualSize: raw.count, detail: "short UDP flow")
        }
        func load<T: FixedWidthInteger>(_ offset: Int, as _: T.Type = T.self) -> T {
            raw.loadUnaligned(fromByteOffset: offset, as: T.self)
        }
        let rawFamily: UInt16 = load(Offset.family)
        guard let family = AddressFamily(rawFamily: rawFamily) else {
            throw .malformedSample(expectedSize: flowSize, actualSize: raw.count, detail: "unknown address family \(rawFamily)")
        }
        let length = family == .ipv4 ? 4 : 16
        let commBytes = UnsafeRawBufferPointer(rebasing: raw[Offset.comm..<Offset.comm + 16])
        let commLength = commBytes.firstIndex(of: 0) ?? 16
        return UDPFlow(
            key: .init(socket: socket, pid: pid, startNanoseconds: load(Offset.start)),
            closeNanoseconds: load(Offset.close),
            counts: .init(txBytes: load(Offset.txBytes), rxBytes: load(Offset.rxBytes), txPackets: load(Offset.txPackets), rxPackets: load(Offset.rxPackets)),
            cgroupID: load(Offset.cgroup),
            uid: load(Offset.uid),
            networkNamespace: load(Offset.netns),
            family: family,
            sourcePort: load(Offset.sport),
            destinationPort: load(Offset.dport),
            filtered: raw[Offset.filtered] != 0,
            sourceAddress: IPAddress(family: family, bytes: UnsafeRawBufferPointer(rebasing: raw[Offset.saddr..<Offset.saddr + length]))!,
            destinationAddress: IPAddress(family: family, bytes: UnsafeRawBufferPointer(rebasing: raw[Offset.daddr..<Offset.daddr + length]))!,
            command: String(decoding: commBytes[..<commLength], as: UTF8.self)
        )
    }

    /// A close sample. A pid of 0 means "more processes used this socket than the kernel tracks
    /// per socket: flush every entry of it".
    static func close(_ raw: UnsafeRawBufferPointer) throws(BPFError) -> (socket: UInt64, pid: UInt32, flow: UDPFlow?, closeNanoseconds: UInt64) {
        guard raw.count >= closeSampleSize else {
            throw .malformedSample(expectedSize: closeSampleSize, actualSize: raw.count, detail: "short UDP close sample")
        }
        let socket = raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        let pid = raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        let flowBytes = UnsafeRawBufferPointer(rebasing: raw[keySize..<closeSampleSize])
        let closeTime = flowBytes.loadUnaligned(fromByteOffset: Offset.close, as: UInt64.self)
        if pid == 0 { return (socket, 0, nil, closeTime) }
        return (socket, pid, try flow(socket: socket, pid: pid, flowBytes), closeTime)
    }
}
