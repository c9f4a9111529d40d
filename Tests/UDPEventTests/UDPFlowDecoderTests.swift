import CNetEventsABI
import NetEventsTesting
import XCTest
@testable import UDPEvent

final class UDPFlowDecoderTests: XCTestCase {
    typealias Close = (socket: UInt64, pid: UInt32, flow: UDPFlow?, closeNanoseconds: UInt64)

    func decodeClose(_ bytes: [UInt8]) throws -> Close {
        try bytes.withUnsafeBytes { try UDPFlowDecoder.close($0) }
    }

    /// The map entry of a sample: its key and flow, as `struct ne_udp_key` and `struct ne_udp_flow`.
    func entry(_ sample: UDPCloseSample) -> (key: ne_udp_key, flow: ne_udp_flow) {
        (sample.keyBytes.withUnsafeBytes { $0.loadUnaligned(as: ne_udp_key.self) },
         sample.flowBytes.withUnsafeBytes { $0.loadUnaligned(as: ne_udp_flow.self) })
    }

    func decodeFlow(_ sample: UDPCloseSample) throws -> UDPFlow {
        let (key, flow) = entry(sample)
        return try XCTUnwrap(UDPFlowDecoder.flow(key: key, flow), "family \(sample.family)")
    }

    func testSizesMatchTheCStructs() {
        XCTAssertEqual(UDPFlowDecoder.keySize, 32)
        XCTAssertEqual(UDPFlowDecoder.flowSize, 208)
        XCTAssertEqual(UDPFlowDecoder.closeSampleSize, 240)
        XCTAssertEqual(UDPCloseSample().bytes.count, 240)
        XCTAssertEqual(UDPCloseSample().keyBytes.count, 32)
        XCTAssertEqual(UDPCloseSample().flowBytes.count, 208)
        // The structs the kind reads the kernel's maps through.
        XCTAssertEqual(MemoryLayout<ne_udp_key>.size, 32)
        XCTAssertEqual(MemoryLayout<ne_udp_flow>.size, 208)
        XCTAssertEqual(MemoryLayout<ne_udp_close>.size, 240)
    }

    func testDecodesEveryFieldOfAnIPv4CloseSample() throws {
        let close = try decodeClose(UDPCloseSample().bytes)
        XCTAssertEqual(close.socket, 0xffff_8880_1234_5600)
        XCTAssertEqual(close.pid, 4242)
        XCTAssertEqual(close.closeNanoseconds, 5_000_000_000)
        let flow = try XCTUnwrap(close.flow)
        // The whole flow at once: a field added to UDPFlow needs its value here.
        XCTAssertEqual(
            flow,
            UDPFlow(
                key: UDPFlow.Key(
                    socket: 0xffff_8880_1234_5600, pid: 4242, peerPort: 53, peerFamily: 2, peerAddress: .v4(127, 0, 0, 53),
                    startNanoseconds: 4_000_000_000),
                closeNanoseconds: 5_000_000_000, counts: counts(tx: 12_345, rx: 777, txPackets: 3, rxPackets: 2),
                cgroupID: 77, uid: 65_534, networkNamespace: 4_026_531_840,
                family: .ipv4, sourcePort: 40_000, destinationPort: 53, sourceAddress: .v4(127, 0, 0, 1), destinationAddress: .v4(127, 0, 0, 53),
                command: "dig", thread: "dig",
                executable: "dig.bind",  // the executable's file name, not the comm
                cookie: 0x2f_0001))
        XCTAssertEqual(flow.sourceAddress.description, "127.0.0.1")
        XCTAssertEqual(flow.destinationAddress.description, "127.0.0.53")
    }

    /// An executable name is kept to 63 bytes; none (a kernel thread) is nil, not "".
    func testExecutableNamesKeep63BytesAndNoneIsNil() throws {
        var sample = UDPCloseSample()
        sample.exe = String(repeating: "x", count: 70)
        XCTAssertEqual(try decodeFlow(sample).executable, String(repeating: "x", count: 63))
        sample.exe = ""
        XCTAssertNil(try decodeFlow(sample).executable)
    }

    func testDecodesEveryFieldOfAnIPv6CloseSample() throws {
        var sample = UDPCloseSample()
        sample.socket = 0xffff_9999_0000_0040
        sample.pid = 7
        sample.family = 10
        sample.start = 11
        sample.close = 22
        sample.counts = counts(tx: 1, rx: UInt64.max, txPackets: 0, rxPackets: 1 << 40)
        sample.cgroup = 0x0123_4567_89ab_cdef
        sample.uid = 0
        sample.netns = 1
        sample.sport = 65_535
        sample.dport = 0
        sample.peerFamily = 10
        sample.saddr = Array(repeating: 0, count: 15) + [1]
        sample.daddr = Array(repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 7]
        sample.comm = "resolver"
        let close = try decodeClose(sample.bytes)
        XCTAssertEqual(close.socket, 0xffff_9999_0000_0040)
        XCTAssertEqual(close.pid, 7)
        XCTAssertEqual(close.closeNanoseconds, 22)
        let flow = try XCTUnwrap(close.flow)
        XCTAssertEqual(flow.key.startNanoseconds, 11)
        XCTAssertEqual(flow.closeNanoseconds, 22)
        XCTAssertEqual(flow.counts, counts(tx: 1, rx: UInt64.max, txPackets: 0, rxPackets: 1 << 40))
        XCTAssertEqual(flow.cgroupID, 0x0123_4567_89ab_cdef)
        XCTAssertEqual(flow.uid, 0)
        XCTAssertEqual(flow.networkNamespace, 1)
        XCTAssertEqual(flow.family, .ipv6)
        XCTAssertEqual(flow.sourcePort, 65_535)
        XCTAssertEqual(flow.destinationPort, 0)
        XCTAssertEqual(flow.sourceAddress.description, "::1")
        XCTAssertEqual(flow.destinationAddress.description, "::ffff:192.0.2.7")
        XCTAssertEqual(flow.destinationAddress.family, .ipv6, "a v4-mapped peer stays IPv6")
        XCTAssertEqual(flow.command, "resolver")
    }

    func testIPv4ReadsOnlyFourAddressBytes() throws {
        var sample = UDPCloseSample()
        sample.saddr = [10, 0, 0, 1] + Array(repeating: 0xee, count: 12)
        sample.daddr = [10, 0, 0, 2] + Array(repeating: 0xdd, count: 12)
        let flow = try decodeFlow(sample)
        XCTAssertEqual(flow.sourceAddress, .v4(10, 0, 0, 1))
        XCTAssertEqual(flow.destinationAddress, .v4(10, 0, 0, 2))
    }

    func testFlowDecoderReadsMapValuesWithTheGivenKey() throws {
        var sample = UDPCloseSample()
        sample.socket = 0xabc
        sample.pid = 99
        let flow = try decodeFlow(sample)
        XCTAssertEqual(
            flow.key,
            UDPFlow.Key(socket: 0xabc, pid: 99, peerPort: 53, peerFamily: 2, peerAddress: .v4(127, 0, 0, 53), startNanoseconds: sample.start))
        XCTAssertEqual(flow, try XCTUnwrap(try decodeClose(sample.bytes).flow), "map value and close sample agree")
    }

    func testFlowPaddingIsIgnored() throws {
        let sample = UDPCloseSample()
        var (key, flow) = entry(sample)
        withUnsafeMutableBytes(of: &flow.pad) { $0.copyBytes(from: [0xff, 0xff]) }
        XCTAssertEqual(UDPFlowDecoder.flow(key: key, flow), try decodeFlow(sample))
        var bytes = sample.bytes
        let pad = MemoryLayout<ne_udp_close>.offset(of: \.flow.pad)!
        bytes[pad] = 0xff
        bytes[pad + 1] = 0xff
        XCTAssertEqual(try decodeClose(bytes).flow, try decodeFlow(sample))
    }

    func testThePeerComesFromTheKeyNotFromTheSocket() throws {
        // An unconnected server socket: the value has no peer, the key names each client.
        var sample = UDPCloseSample()
        sample.dport = 40_001
        sample.daddr = [127, 0, 0, 9]
        var (key, value) = entry(sample)
        value.dport = 0
        withUnsafeMutableBytes(of: &value.daddr) { $0.copyBytes(from: [UInt8](repeating: 0, count: $0.count)) }
        let flow = try XCTUnwrap(UDPFlowDecoder.flow(key: key, value))
        XCTAssertEqual(flow.destinationAddress, .v4(127, 0, 0, 9))
        XCTAssertEqual(flow.destinationPort, 40_001)

        // No peer in the key (a receive that asked no address): the unspecified address, port 0.
        key.peer = ne_udp_peer()
        let none = try XCTUnwrap(UDPFlowDecoder.flow(key: key, value))
        XCTAssertEqual(none.destinationAddress, .v4(0, 0, 0, 0))
        XCTAssertEqual(none.destinationPort, 0)
        XCTAssertNotEqual(none.key, flow.key, "two peers of one socket and process are two flows")
    }

    func testAnIPv4PeerOfAnIPv6SocketIsV4Mapped() throws {
        var sample = UDPCloseSample()
        sample.family = 10
        sample.saddr = [UInt8](repeating: 0, count: 16)
        sample.peerFamily = 2
        sample.daddr = [127, 0, 0, 1]
        let flow = try decodeFlow(sample)
        XCTAssertEqual(flow.destinationAddress, IPAddress("::ffff:127.0.0.1"))
        XCTAssertEqual(flow.destinationPort, 53)
    }

    func testCommandTruncatedAt15CharactersAndInvalidUTF8Replaced() throws {
        var sample = UDPCloseSample()
        sample.comm = "a-very-long-command-name"
        XCTAssertEqual(try decodeFlow(sample).command, "a-very-long-com")

        sample.rawComm = [0xff] + Array("url".utf8)
        XCTAssertEqual(try decodeFlow(sample).command, "\u{FFFD}url")

        // A truncated multi-byte character at the 15-byte cut.
        sample.rawComm = Array("abcdefghijklmn".utf8) + [0xc3]  // 14 ASCII + half of "é"
        XCTAssertEqual(try decodeFlow(sample).command, "abcdefghijklmn\u{FFFD}")

        // Sixteen bytes with no terminator: read no further than the field.
        sample.rawComm = Array("0123456789abcdef".utf8)
        XCTAssertEqual(try decodeFlow(sample).command, "0123456789abcdef")

        sample.rawComm = []
        XCTAssertEqual(try decodeFlow(sample).command, "")
    }

    func testCommandStopsAtTheFirstNul() throws {
        var sample = UDPCloseSample()
        sample.rawComm = Array("ab".utf8) + [0] + Array("stale".utf8)
        XCTAssertEqual(try decodeFlow(sample).command, "ab")
    }

    func testPidZeroMeansFlushTheSocket() throws {
        let close = try decodeClose(UDPCloseSample.flush(socket: 0xffff_8880_aaaa_0000, close: 9_000))
        XCTAssertEqual(close.socket, 0xffff_8880_aaaa_0000)
        XCTAssertEqual(close.pid, 0)
        XCTAssertNil(close.flow)
        XCTAssertEqual(close.closeNanoseconds, 9_000)

        // Whatever the rest holds, pid 0 is a flush.
        var sample = UDPCloseSample()
        sample.pid = 0
        XCTAssertNil(try decodeClose(sample.bytes).flow)
    }

    func testShortSamplesThrowMalformedWithSizes() {
        let full = UDPCloseSample().bytes
        for length in [0, 1, 15, 16, 100, 239] {
            XCTAssertThrowsError(try decodeClose(Array(full.prefix(length))), "\(length) bytes") { error in
                guard case BPFError.malformedSample(let expected, let actual, let detail) = error else {
                    return XCTFail("expected malformedSample, got \(error)")
                }
                XCTAssertEqual(expected, 240)
                XCTAssertEqual(actual, length)
                XCTAssertFalse(detail.isEmpty)
            }
        }
        // Even a flush (pid 0) must be whole.
        XCTAssertThrowsError(try decodeClose(Array(UDPCloseSample.flush(socket: 1, close: 2).prefix(100))))
    }

    func testLongerSamplesDecodeTheirFirst240Bytes() throws {
        let padded = UDPCloseSample().bytes + [0xaa, 0xbb, 0xcc, 0xdd]
        let close = try decodeClose(padded)
        XCTAssertEqual(close.flow, try decodeClose(UDPCloseSample().bytes).flow)
    }

    func testUnknownFamilyThrowsMalformed() {
        for family: UInt16 in [0, 1, 3, 9, 11, 0xffff] {
            var sample = UDPCloseSample()
            sample.family = family
            XCTAssertThrowsError(try decodeClose(sample.bytes), "family \(family)") { error in
                guard case BPFError.malformedSample(let expected, let actual, let detail) = error else {
                    return XCTFail("expected malformedSample, got \(error)")
                }
                XCTAssertEqual(expected, 240)
                XCTAssertEqual(actual, 240)
                XCTAssertTrue(detail.contains("family"), detail)
                XCTAssertTrue(detail.contains("\(family)"), detail)
            }
            // A map entry of an unknown family is skipped, not decoded.
            let (key, flow) = entry(sample)
            XCTAssertNil(UDPFlowDecoder.flow(key: key, flow), "family \(family)")
        }
    }
}
