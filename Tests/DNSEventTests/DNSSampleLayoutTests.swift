import CNetEventsABI
import DNSEvent
import NetEventsTesting
import XCTest

/// The DNS kind's contract (`dns_events_abi.h`): the offsets of `struct ne_dns_sample` and of the
/// `struct ne_udp_peer` inside it, as the C header lays them out and as bpf/dns_events.c writes
/// them. A field moved on one side only would decode garbage without any error, so each offset is
/// written down here by hand.
final class DNSSampleLayoutTests: XCTestCase {
    func offset<Root>(_ keyPath: PartialKeyPath<Root>) -> Int? { MemoryLayout<Root>.offset(of: keyPath) }

    /// A field of `ne_dns_sample`: its name, the offset and size Swift sees, and the ones the
    /// header says.
    struct Field {
        var name: String
        var actualOffset: Int?
        var actualSize: Int
        var offset: Int
        var size: Int

        init<Value>(_ name: String, _ keyPath: KeyPath<ne_dns_sample, Value>, _ offset: Int, _ size: Int) {
            self.name = name
            actualOffset = MemoryLayout<ne_dns_sample>.offset(of: keyPath)
            actualSize = MemoryLayout<Value>.size
            self.offset = offset
            self.size = size
        }
    }

    func testSampleFieldOffsets() {
        let expected: [Field] = [
            Field("time_ns", \.time_ns, 0, 8),
            Field("sk", \.sk, 8, 8),
            Field("cookie", \.cookie, 16, 8),
            Field("cgroup_id", \.cgroup_id, 24, 8),
            Field("pid", \.pid, 32, 4),
            Field("tid", \.tid, 36, 4),
            Field("uid", \.uid, 40, 4),
            Field("netns", \.netns, 44, 4),
            Field("length", \.length, 48, 4),
            Field("captured", \.captured, 52, 2),
            Field("sent", \.sent, 54, 1),
            Field("payload_source", \.payload_source, 55, 1),
            Field("family", \.family, 56, 2),
            Field("sport", \.sport, 58, 2),
            Field("saddr", \.saddr, 60, 16),
            Field("peer", \.peer, 76, 20),
            Field("comm", \.comm, 96, 16),
            Field("thread", \.thread, 112, 16),
            Field("exe", \.exe, 128, 64),
            Field("payload", \.payload, 192, 2048),
        ]
        for field in expected {
            XCTAssertEqual(field.actualOffset, field.offset, field.name)
            XCTAssertEqual(field.actualSize, field.size, field.name)
        }
        // The fields tile the struct, no padding: each starts where the one before it ends.
        for (before, after) in zip(expected, expected.dropFirst()) {
            XCTAssertEqual(before.offset + before.size, after.offset, "\(before.name) ends where \(after.name) starts")
        }
        XCTAssertEqual(expected.last.map { $0.offset + $0.size }, MemoryLayout<ne_dns_sample>.size)
    }

    func testPeerFieldOffsets() {
        XCTAssertEqual(offset(\ne_udp_peer.port), 0)
        XCTAssertEqual(offset(\ne_udp_peer.family), 2)
        XCTAssertEqual(offset(\ne_udp_peer.addr), 4)
        XCTAssertEqual(MemoryLayout<ne_udp_peer>.size, 20)
        XCTAssertEqual(MemoryLayout<ne_udp_peer>.alignment, 2)
        XCTAssertEqual(MemoryLayout.size(ofValue: ne_udp_peer().addr), Int(NE_ADDR_LEN))
        // Inside the sample, as the decoder reads them.
        XCTAssertEqual(offset(\ne_dns_sample.peer.port), 76)
        XCTAssertEqual(offset(\ne_dns_sample.peer.family), 78)
        XCTAssertEqual(offset(\ne_dns_sample.peer.addr), 80)
    }

    func testHeaderAndPayloadSizes() {
        XCTAssertEqual(NE_DNS_HEADER_SIZE, 192)
        XCTAssertEqual(NE_DNS_MAX_PAYLOAD, 2048)
        XCTAssertEqual(NE_ADDR_LEN, 16)
        XCTAssertEqual(NE_COMM_LEN, 16)
        XCTAssertEqual(NE_EXE_LEN, 64)
        XCTAssertEqual(MemoryLayout<ne_dns_sample>.size, 192 + 2048)
        XCTAssertEqual(MemoryLayout<ne_dns_sample>.alignment, 8)
        XCTAssertEqual(MemoryLayout<ne_dns_sample>.offset(of: \.payload), Int(NE_DNS_HEADER_SIZE))
        XCTAssertEqual(DNSSampleDecoder.headerSize, 192)
        XCTAssertEqual(DNSSampleDecoder.maxPayload, 2048)
        XCTAssertEqual(DNSSample.headerSize, 192)
    }

    func testEnumValues() {
        XCTAssertEqual(NE_DNS_PAYLOAD_READ.rawValue, 0)
        XCTAssertEqual(NE_DNS_PAYLOAD_UNKNOWN_CALL.rawValue, 1)
        XCTAssertEqual(NE_DNS_PAYLOAD_FAULT.rawValue, 2)
        XCTAssertEqual(
            [NE_DNS_STAT_LOST, NE_DNS_STAT_SAMPLES, NE_DNS_STAT_NO_PAYLOAD, NE_DNS_STAT_FILTERED, NE_DNS_STAT_COUNT].map(\.rawValue),
            [0, 1, 2, 3, 4])
        XCTAssertEqual([DNSSample.payloadRead, DNSSample.payloadUnknownCall, DNSSample.payloadFault], [0, 1, 2])
    }

    /// An integer the builder writes: the header's field, where the header puts it, and the value
    /// set through the builder's property.
    struct Written {
        var name: String
        var offset: Int
        var size: Int
        var value: UInt64
        var set: (inout DNSSample) -> Void

        init<Value: FixedWidthInteger>(
            _ name: String, _ offset: Int, _ size: Int, _ property: WritableKeyPath<DNSSample, Value>, _ value: Value
        ) {
            self.init(name, offset, size, UInt64(value)) { $0[keyPath: property] = value }
        }

        /// A property whose nil means a default (`length`, `peerFamily`).
        init<Value: FixedWidthInteger>(
            _ name: String, _ offset: Int, _ size: Int, _ property: WritableKeyPath<DNSSample, Value?>, _ value: Value
        ) {
            self.init(name, offset, size, UInt64(value)) { $0[keyPath: property] = value }
        }

        private init(_ name: String, _ offset: Int, _ size: Int, _ value: UInt64, set: @escaping (inout DNSSample) -> Void) {
            self.name = name
            self.offset = offset
            self.size = size
            self.value = value
            self.set = set
        }
    }

    /// The builder writes each field where the header puts it: read back at the hand-written
    /// offsets, little-endian as on x86-64 and arm64.
    func testTheSampleBuilderWritesTheHeaderAtTheseOffsets() {
        let integers: [Written] = [
            Written("time_ns", 0, 8, \.time, 0x0102_0304_0506_0708),
            Written("sk", 8, 8, \.socket, 0x1112_1314_1516_1718),
            Written("cookie", 16, 8, \.cookie, 0x2122_2324_2526_2728),
            Written("cgroup_id", 24, 8, \.cgroup, 0x3132_3334_3536_3738),
            Written("pid", 32, 4, \.pid, 0x4142_4344),
            Written("tid", 36, 4, \.tid, 0x5152_5354),
            Written("uid", 40, 4, \.uid, 0x6162_6364),
            Written("netns", 44, 4, \.netns, 0x7172_7374),
            Written("length", 48, 4, \.length, 0x8182_8384),
            Written("payload_source", 55, 1, \.payloadSource, 2),
            Written("family", 56, 2, \.family, 10),
            Written("sport", 58, 2, \.sport, 0x9192),
            Written("peer.port", 76, 2, \.peerPort, 0xB1B2),
            Written("peer.family", 78, 2, \.peerFamily, 2),
        ]
        var sample = DNSSample()
        for field in integers { field.set(&sample) }
        sample.sent = true
        sample.saddr = Array(0xA0...0xAF)
        sample.peerAddress = [0xC0, 0xC1, 0xC2, 0xC3]
        sample.comm = "comm-name"
        sample.thread = "thread-name"
        sample.exe = "exe-name"
        sample.payload = [0xD0, 0xD1, 0xD2]
        let bytes = sample.bytes
        XCTAssertEqual(bytes.count, 192 + 3, "the header, then only the captured bytes")

        func read(_ offset: Int, _ size: Int) -> UInt64 {
            (0..<size).reversed().reduce(0) { $0 << 8 | UInt64(bytes[offset + $1]) }
        }
        for field in integers {
            XCTAssertEqual(read(field.offset, field.size), field.value, field.name)
        }
        XCTAssertEqual(read(52, 2), 3, "captured")
        XCTAssertEqual(bytes[54], 1, "sent")

        // `text`'s bytes, NUL-padded to the field's `size`.
        func padded(_ text: String, _ size: Int) -> [UInt8] {
            Array(text.utf8) + [UInt8](repeating: 0, count: size - text.utf8.count)
        }
        let arrays: [(name: String, range: Range<Int>, expected: [UInt8])] = [
            ("saddr", 60..<76, Array(0xA0...0xAF)),
            ("peer.addr", 80..<96, [0xC0, 0xC1, 0xC2, 0xC3] + [UInt8](repeating: 0, count: 12)),
            ("comm", 96..<112, padded("comm-name", 16)),
            ("thread", 112..<128, padded("thread-name", 16)),
            ("exe", 128..<192, padded("exe-name", 64)),
            ("payload", 192..<195, [0xD0, 0xD1, 0xD2]),
        ]
        for (name, range, expected) in arrays {
            XCTAssertEqual(Array(bytes[range]), expected, name)
        }
    }

    /// Defaults: `length` follows the payload, the peer takes the socket's family, `thread` the `comm`.
    func testTheSampleBuilderDefaults() {
        var sample = DNSSample()
        sample.payload = [UInt8](repeating: 7, count: 300)
        let bytes = sample.bytes
        XCTAssertEqual(bytes.count, 192 + 300)
        XCTAssertEqual(Array(bytes[48..<52]), [44, 1, 0, 0], "length 300")
        XCTAssertEqual(Array(bytes[52..<54]), [44, 1], "captured 300")
        XCTAssertEqual(Array(bytes[78..<80]), [2, 0], "peer.family: the socket's")
        XCTAssertEqual(Array(bytes[112..<128]), Array(bytes[96..<112]), "thread: the comm")
        sample.peerFamily = 0
        XCTAssertEqual(Array(sample.bytes[78..<80]), [0, 0], "no peer")
    }
}
