internal import CNetEventsABI
import NetEventsCore

/// Builds the raw sample the kernel program writes for one datagram to or from a DNS port
/// (`struct ne_dns_sample` of the `dns_events_abi.h` contract header), for feeding a
/// ``MockSampleSource`` given to a `DNSMonitor`.
///
/// Field names follow the C struct's. Defaults describe `dig` (pid 4242, uid 65534) on
/// 127.0.0.1:40000 sending an `A` query for `example.com` to 127.0.0.53:53.
///
/// ```swift
/// let source = MockSampleSource()
/// let monitor = try DNSMonitor(source: source)
/// try monitor.start { event in print(event.name, event.latencyNanoseconds ?? 0) }
/// var sample = DNSSample()
/// sample.payload = DNSSample.query(id: 7, name: "example.org")
/// source.emit(sample.bytes)
/// sample.time += 2_000_000
/// sample.sent = false
/// sample.payload = DNSSample.response(id: 7, name: "example.org", addresses: [IPAddress("93.184.215.14")!])
/// source.emit(sample.bytes)  // a response event, latency 2 ms
/// ```
public struct DNSSample: Sendable {
    /// Monotonic nanoseconds after the call moved the datagram (`time_ns`); the monitor's clock
    /// maps them to wall-clock time.
    public var time: UInt64 = 5_000_000_000
    /// The socket's kernel address (`sk`): a response matches a query on the same socket only.
    public var socket: UInt64 = 0xffff_8880_1234_5600
    /// The socket's kernel cookie (what events report as `socket_id`); 0: none.
    public var cookie: UInt64 = 0x2f_0003
    /// The process's cgroup id (`cgroup_id`).
    public var cgroup: UInt64 = 77
    /// The process id, the thread id, the user id, and the network namespace's inode number.
    public var pid: UInt32 = 4242, tid: UInt32 = 4243, uid: UInt32 = 65_534, netns: UInt32 = 4_026_531_840
    /// Whether the process sent the datagram (`sent` 1) or received it (0).
    public var sent = true
    /// The `enum ne_dns_payload` value: ``payloadRead`` (0), ``payloadUnknownCall`` (1) or
    /// ``payloadFault`` (2). Only a payload that was read makes an event.
    public var payloadSource: UInt8 = DNSSample.payloadRead
    /// The socket's family, `AF_INET` (2) or `AF_INET6` (10), anything else being malformed;
    /// and its own port (`sport`).
    public var family: UInt16 = 2, sport: UInt16 = 40_000
    /// The socket's own address: 4 bytes for IPv4, 16 for IPv6, in network order.
    public var saddr: [UInt8] = [127, 0, 0, 1]
    /// The family of the datagram's other end (`peer.family`): nil for the socket's family; 0 for
    /// no peer known. `AF_INET` (2) on an IPv6 socket is a v4-mapped peer.
    public var peerFamily: UInt16? = nil
    /// The other end's port (`peer.port`).
    public var peerPort: UInt16 = 53
    /// The other end's address (`peer.addr`): 4 bytes for IPv4, 16 for IPv6, in network order.
    public var peerAddress: [UInt8] = [127, 0, 0, 53]
    /// The process's `comm`, written as the kernel does: at most 15 bytes, then NUL; or raw
    /// bytes (up to 16, no terminator added) that replace it when set.
    public var comm: String = "dig", rawComm: [UInt8]? = nil
    /// The name of the thread that moved the datagram; nil: the same as `comm`.
    public var thread: String? = nil
    /// The process's executable file name, as the kernel writes it (at most 63 bytes, then NUL); empty: none.
    public var exe: String = "dig"
    /// The captured payload bytes: ``bytes`` carries all of them after the header and sets
    /// `captured` to their count (up to 65,535; more than `NE_DNS_MAX_PAYLOAD`, 2,048, makes a
    /// sample the monitor counts as malformed).
    public var payload: [UInt8] = DNSSample.query(id: 0x1234, name: "example.com")
    /// The datagram's payload length (`length`); nil: `payload.count`. Set it larger than the
    /// payload for a datagram the kernel cut short.
    public var length: UInt32? = nil

    /// `NE_DNS_PAYLOAD_READ`: the payload was read from the process's buffer.
    public static let payloadRead = UInt8(NE_DNS_PAYLOAD_READ.rawValue)
    /// `NE_DNS_PAYLOAD_UNKNOWN_CALL`: the system call is not one whose buffer the program knows.
    public static let payloadUnknownCall = UInt8(NE_DNS_PAYLOAD_UNKNOWN_CALL.rawValue)
    /// `NE_DNS_PAYLOAD_FAULT`: the buffer could not be read.
    public static let payloadFault = UInt8(NE_DNS_PAYLOAD_FAULT.rawValue)
    /// Bytes of a sample before its payload (`NE_DNS_HEADER_SIZE`, 192).
    public static let headerSize = Int(NE_DNS_HEADER_SIZE)

    /// A sample with the defaults.
    public init() {}

    /// The sample as the kernel outputs it: the 192-byte header, then the `captured` payload bytes.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: header) { Array($0.prefix(Self.headerSize)) } + payload
    }

    private var header: ne_dns_sample {
        var sample = ne_dns_sample()
        sample.time_ns = time; sample.sk = socket; sample.cookie = cookie; sample.cgroup_id = cgroup
        sample.pid = pid; sample.tid = tid; sample.uid = uid; sample.netns = netns
        sample.length = length ?? UInt32(clamping: payload.count)
        sample.captured = UInt16(clamping: payload.count)
        sample.sent = sent ? 1 : 0
        sample.payload_source = payloadSource
        sample.family = family; sample.sport = sport
        SampleBytes.copy(saddr, into: &sample.saddr)
        sample.peer.family = peerFamily ?? family
        sample.peer.port = peerPort
        SampleBytes.copy(peerAddress, into: &sample.peer.addr)
        let command = rawComm ?? Array(comm.utf8.prefix(15))
        SampleBytes.copy(command, into: &sample.comm)
        SampleBytes.copy(thread.map { Array($0.utf8.prefix(15)) } ?? command, into: &sample.thread)
        SampleBytes.copy(Array(exe.utf8.prefix(63)), into: &sample.exe)
        return sample
    }
}

// MARK: - DNS messages

extension DNSSample {
    /// A standard query (opcode 0, `RD` set) with one question of class `IN`.
    /// - Parameters:
    ///   - id: The message id.
    ///   - name: Dot-separated labels, written as they are (no escapes); `""` or `"."` is the root.
    ///   - type: The record type's number: 1 `A`, 28 `AAAA`, 15 `MX`...
    public static func query(id: UInt16, name: String, type: UInt16 = 1) -> [UInt8] {
        query(id: id, labels: labels(name), type: type)
    }

    /// A standard query whose name is given as raw labels (any bytes, each label up to 63 of
    /// them), for names no text form can write: control characters, dots inside a label.
    public static func query(id: UInt16, labels: [[UInt8]], type: UInt16 = 1) -> [UInt8] {
        var message = DNSWireWriter(id: id, flags: 0x0100, questions: 1)
        message.question(labels, type: type)
        return message.bytes
    }

    /// A response (`QR`, `RD` and `RA` set) that repeats the question and answers with one
    /// record per address: `A` for an IPv4 address, `AAAA` for an IPv6 one, each named by a
    /// compression pointer to the question's name.
    /// - Parameters:
    ///   - id: The id of the query it answers.
    ///   - name: The question's name, as for ``query(id:name:type:)``.
    ///   - type: The question's record type number.
    ///   - rcode: The header's 4-bit response code: 0 `NOERROR`, 2 `SERVFAIL`, 3 `NXDOMAIN`...
    ///   - addresses: The answers, in order.
    ///   - ttl: Every answer's time to live.
    public static func response(
        id: UInt16, name: String, type: UInt16 = 1, rcode: UInt8 = 0, addresses: [IPAddress] = [], ttl: UInt32 = 300
    ) -> [UInt8] {
        response(id: id, labels: labels(name), type: type, rcode: rcode, addresses: addresses, ttl: ttl)
    }

    /// A response whose question's name is given as raw labels (see ``query(id:labels:type:)``).
    public static func response(
        id: UInt16, labels: [[UInt8]], type: UInt16 = 1, rcode: UInt8 = 0, addresses: [IPAddress] = [], ttl: UInt32 = 300
    ) -> [UInt8] {
        var message = DNSWireWriter(
            id: id, flags: 0x8180 | UInt16(rcode & 0x0F), questions: 1, answers: UInt16(clamping: addresses.count))
        let questionName = message.bytes.count
        message.question(labels, type: type)
        for address in addresses {
            message.u16(0xC000 | UInt16(questionName))
            message.u16(address.family == .ipv4 ? 1 : 28)
            message.u16(1)
            message.u32(ttl)
            message.u16(UInt16(address.bytes.count))
            message.bytes += address.bytes
        }
        return message.bytes
    }

    private static func labels(_ name: String) -> [[UInt8]] {
        name.split(separator: ".").map { Array($0.utf8) }
    }
}

/// Writes a DNS message in wire form (RFC 1035): big-endian fields, length-prefixed labels.
private struct DNSWireWriter {
    var bytes: [UInt8] = []

    init(id: UInt16, flags: UInt16, questions: UInt16, answers: UInt16 = 0) {
        for field in [id, flags, questions, answers, 0, 0] { u16(field) }
    }

    mutating func u16(_ value: UInt16) {
        bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
    }

    mutating func u32(_ value: UInt32) {
        u16(UInt16(value >> 16))
        u16(UInt16(value & 0xFFFF))
    }

    /// A question of class `IN`; labels longer than 63 bytes are cut to 63.
    mutating func question(_ labels: [[UInt8]], type: UInt16) {
        for label in labels where !label.isEmpty {
            let label = label.prefix(63)
            bytes.append(UInt8(label.count))
            bytes += label
        }
        bytes.append(0)
        u16(type)
        u16(1)
    }
}
