internal import CNetEventsABI

/// The counters and identity of one (socket, process, peer) flow, as the kernel map holds them
/// (`struct ne_udp_key` and `struct ne_udp_flow`), decoded.
struct UDPFlow: Sendable, Equatable {
    struct Key: Hashable, Sendable {
        var socket: UInt64
        var pid: UInt32
        /// The peer's port, family and address as the kernel key has them (all zero: none known).
        var peerPort: UInt16 = 0
        var peerFamily: UInt16 = 0
        var peerAddress: IPAddress? = nil
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
    var sourceAddress: IPAddress
    var destinationAddress: IPAddress
    var command: String
    var thread: String
    var executable: String?
    /// The socket's kernel cookie; 0 when it has none (yet).
    var cookie: UInt64
}

/// Decodes the UDP kind's kernel records: `struct ne_udp_flow` map values and the close sample
/// `struct ne_udp_close` of the `udp_events_abi.h` contract header.
public enum UDPFlowDecoder {
    /// Size of `struct ne_udp_key`.
    public static let keySize = MemoryLayout<ne_udp_key>.size
    /// Size of `struct ne_udp_flow`.
    public static let flowSize = MemoryLayout<ne_udp_flow>.size
    /// Size of a close sample (`struct ne_udp_close`): key then flow.
    public static let closeSampleSize = MemoryLayout<ne_udp_close>.size

    /// Decodes a map entry.
    static func flow(key: ne_udp_key, _ value: ne_udp_flow) -> UDPFlow? {
        var value = value
        guard let family = AddressFamily(rawFamily: value.family) else { return nil }
        let peer = peer(key.peer, socketFamily: family)
        return UDPFlow(
            key: .init(
                socket: key.sk, pid: key.pid, peerPort: key.peer.port, peerFamily: key.peer.family, peerAddress: peer,
                startNanoseconds: value.start_ns),
            closeNanoseconds: value.close_ns,
            counts: .init(txBytes: value.tx_bytes, rxBytes: value.rx_bytes, txPackets: value.tx_packets, rxPackets: value.rx_packets),
            cgroupID: value.cgroup_id,
            uid: value.uid,
            networkNamespace: value.netns,
            family: family,
            sourcePort: value.sport,
            destinationPort: peer == nil ? 0 : key.peer.port,
            sourceAddress: withUnsafeBytes(of: &value.saddr) { IPAddress(family: family, bytes: $0)! },
            destinationAddress: peer ?? .unspecified(family),
            command: withUnsafeBytes(of: &value.comm) { SampleText.command($0) },
            thread: withUnsafeBytes(of: &value.thread) { SampleText.command($0) },
            executable: withUnsafeBytes(of: &value.exe) { SampleText.executable($0) },
            cookie: value.cookie
        )
    }

    /// The flow's peer (see `IPAddress.init(peerFamily:bytes:socketFamily:)`); nil when the key has none.
    static func peer(_ raw: ne_udp_peer, socketFamily: AddressFamily) -> IPAddress? {
        withUnsafeBytes(of: raw.addr) { IPAddress(peerFamily: raw.family, bytes: $0, socketFamily: socketFamily) }
    }

    /// A close sample. A pid of 0 means "the socket had more flows than the kernel tracks per
    /// socket: flush every entry of it", and carries no flow.
    /// - Throws: `BPFError.malformedSample` for a short sample or an unknown address family.
    static func close(_ raw: UnsafeRawBufferPointer) throws(BPFError) -> (socket: UInt64, pid: UInt32, flow: UDPFlow?, closeNanoseconds: UInt64) {
        guard raw.count >= closeSampleSize else {
            throw .malformedSample(expectedSize: closeSampleSize, actualSize: raw.count, detail: "short UDP close sample")
        }
        let sample = raw.loadUnaligned(as: ne_udp_close.self)
        if sample.key.pid == 0 { return (sample.key.sk, 0, nil, sample.flow.close_ns) }
        guard let flow = flow(key: sample.key, sample.flow) else {
            throw .malformedSample(
                expectedSize: closeSampleSize, actualSize: raw.count, detail: "unknown address family \(sample.flow.family)")
        }
        return (sample.key.sk, sample.key.pid, flow, sample.flow.close_ns)
    }
}
