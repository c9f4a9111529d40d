internal import CNetEventsABI

/// One datagram as the kernel sampled it (`struct ne_dns_sample`), decoded.
struct DNSSample {
    var monotonicNanoseconds: UInt64
    var socket: UInt64
    var cookie: UInt64
    var cgroupID: UInt64
    var process: EventProcess
    var networkNamespace: UInt32
    var length: UInt32
    var isSent: Bool
    /// The socket's own address and port, and the datagram's other end.
    var endpoints: SocketEndpoints
    /// The bytes captured; nil when the kernel could not read them.
    var payload: [UInt8]?
}

/// Decodes the DNS kind's samples: `struct ne_dns_sample` of the `dns_events_abi.h` contract,
/// output with only its captured payload bytes after the header.
public enum DNSSampleDecoder {
    /// Bytes of a sample before its payload.
    public static let headerSize = Int(NE_DNS_HEADER_SIZE)
    /// The most payload bytes a sample carries.
    public static let maxPayload = Int(NE_DNS_MAX_PAYLOAD)

    /// - Throws: `BPFError.malformedSample` for a sample shorter than its header or than the
    ///   payload it says it carries, or of an unknown address family.
    static func decode(_ raw: UnsafeRawBufferPointer) throws(BPFError) -> DNSSample {
        guard raw.count >= headerSize else {
            throw .malformedSample(expectedSize: headerSize, actualSize: raw.count, detail: "short DNS sample")
        }
        // The header alone: the sample's payload may be shorter than the struct's.
        var header = ne_dns_sample()
        withUnsafeMutableBytes(of: &header) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[..<headerSize])) }
        let captured = Int(header.captured)
        guard captured <= maxPayload, raw.count >= headerSize + captured else {
            throw .malformedSample(expectedSize: headerSize + captured, actualSize: raw.count, detail: "DNS sample shorter than its payload")
        }
        guard let family = AddressFamily(rawFamily: header.family) else {
            throw .malformedSample(expectedSize: headerSize, actualSize: raw.count, detail: "unknown address family \(header.family)")
        }
        let peer = withUnsafeBytes(of: header.peer.addr) {
            IPAddress(peerFamily: header.peer.family, bytes: $0, socketFamily: family)
        }
        return DNSSample(
            monotonicNanoseconds: header.time_ns, socket: header.sk, cookie: header.cookie, cgroupID: header.cgroup_id,
            process: EventProcess(
                pid: Int32(bitPattern: header.pid), uid: header.uid,
                command: withUnsafeBytes(of: &header.comm) { SampleText.command($0) },
                thread: withUnsafeBytes(of: &header.thread) { SampleText.command($0) },
                executable: withUnsafeBytes(of: &header.exe) { SampleText.executable($0) }),
            networkNamespace: header.netns, length: header.length, isSent: header.sent != 0,
            endpoints: SocketEndpoints(
                family: family, sourceAddress: withUnsafeBytes(of: &header.saddr) { IPAddress(family: family, bytes: $0)! },
                sourcePort: header.sport, destinationAddress: peer ?? .unspecified(family), destinationPort: peer == nil ? 0 : header.peer.port),
            payload: header.payload_source == NE_DNS_PAYLOAD_READ.rawValue
                ? Array(raw[headerSize..<(headerSize + captured)]) : nil)
    }
}
