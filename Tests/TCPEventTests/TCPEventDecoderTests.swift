import BCCRuntime
import XCTest
@testable import TCPEvent

final class TCPEventDecoderTests: XCTestCase {
    let clock = WallClock(offsetNanoseconds: 1_700_000_000_000_000_000)

    func decode(_ sample: TCPSample) throws -> TCPConnectionEvent {
        try sample.bytes.withUnsafeBytes { try TCPEventDecoder.decode($0, clock: clock) }
    }

    func testDecodesEveryFieldOfAnIPv4Sample() throws {
        let event = try decode(TCPSample())
        XCTAssertEqual(event.timeNanoseconds, 1_700_000_005_000_000_000)
        XCTAssertEqual(event.durationNanoseconds, 1_000_000_000)
        XCTAssertEqual(event.cgroupID, 77)
        XCTAssertEqual(event.receivedBytes, 778)
        XCTAssertEqual(event.sentBytes, 12_347)
        XCTAssertEqual(event.segmentsIn, 5)
        XCTAssertEqual(event.segmentsOut, 6)
        XCTAssertEqual(event.dataSegmentsIn, 1)
        XCTAssertEqual(event.dataSegmentsOut, 2)
        XCTAssertEqual(event.pid, 4242)
        XCTAssertEqual(event.uid, 65_534)
        XCTAssertEqual(event.networkNamespace, 4_026_531_840)
        XCTAssertEqual(event.family, .ipv4)
        XCTAssertEqual(event.sourceAddress.description, "127.0.0.1")
        XCTAssertEqual(event.destinationAddress.description, "10.1.2.3")
        XCTAssertEqual(event.sourcePort, 40_000)
        XCTAssertEqual(event.destinationPort, 443)
        XCTAssertEqual(event.previousState, .established)
        XCTAssertEqual(event.ownerSource, .connect)
        XCTAssertEqual(event.command, "curl")
    }

    func testDecodesIPv6AndKeepsV4MappedAddressesAsIPv6() throws {
        var sample = TCPSample()
        sample.family = 10
        sample.saddr = Array(repeating: 0, count: 15) + [1]
        sample.daddr = Array(repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 7]
        let event = try decode(sample)
        XCTAssertEqual(event.family, .ipv6)
        XCTAssertEqual(event.sourceAddress.description, "::1")
        XCTAssertEqual(event.destinationAddress.description, "::ffff:192.0.2.7")
        XCTAssertEqual(event.destinationAddress.family, .ipv6)
    }

    func testUnknownStartGivesNoDuration() throws {
        var sample = TCPSample()
        sample.start = 0
        XCTAssertNil(try decode(sample).durationNanoseconds)
        sample.start = sample.timestamp + 1
        XCTAssertNil(try decode(sample).durationNanoseconds, "a start after the close is not a duration")
    }

    func testFullLengthCommandAndInvalidUTF8() throws {
        var sample = TCPSample()
        sample.comm = "a-very-long-command-name"
        XCTAssertEqual(try decode(sample).command, "a-very-long-com")
        var raw = TCPSample().bytes
        raw[TCPEventDecoder.Offset.comm] = 0xff
        let event = try raw.withUnsafeBytes { try TCPEventDecoder.decode($0, clock: clock) }
        XCTAssertEqual(event.command, "\u{FFFD}url")
    }

    func testShortSampleThrowsMalformed() {
        let raw = Array(TCPSample().bytes.prefix(100))
        XCTAssertThrowsError(try raw.withUnsafeBytes { try TCPEventDecoder.decode($0, clock: clock) }) { error in
            guard case BPFError.malformedSample(let expected, let actual, _) = error else {
                return XCTFail("expected malformedSample, got \(error)")
            }
            XCTAssertEqual(expected, 128)
            XCTAssertEqual(actual, 100)
        }
        XCTAssertThrowsError(try [UInt8]().withUnsafeBytes { try TCPEventDecoder.decode($0, clock: clock) })
    }

    func testValuesNoKernelWritesThrowMalformed() {
        var badFamily = TCPSample()
        badFamily.family = 1
        var badSource = TCPSample()
        badSource.ownerSource = 0
        var badState = TCPSample()
        badState.oldState = 99
        for (name, sample) in [("family", badFamily), ("owner", badSource), ("state", badState)] {
            XCTAssertThrowsError(try decode(sample), name) { error in
                guard case BPFError.malformedSample(_, _, let detail) = error else { return XCTFail("\(error)") }
                XCTAssertFalse(detail.isEmpty)
            }
        }
    }
}
