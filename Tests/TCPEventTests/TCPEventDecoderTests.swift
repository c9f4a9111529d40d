import CNetEventsABI
import NetEventsTesting
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
        XCTAssertEqual(event.process, EventProcess(pid: 4242, uid: 65_534, command: "curl", executable: "curl-8.5"))
        XCTAssertEqual(event.networkNamespace, 4_026_531_840)
        XCTAssertEqual(event.family, .ipv4)
        XCTAssertEqual(event.sourceAddress.description, "127.0.0.1")
        XCTAssertEqual(event.destinationAddress.description, "10.1.2.3")
        XCTAssertEqual(event.sourcePort, 40_000)
        XCTAssertEqual(event.destinationPort, 443)
        XCTAssertEqual(event.previousState, .established)
        XCTAssertEqual(event.ownerSource, .connect)
        XCTAssertEqual(event.kind, .close)
        XCTAssertNil(event.latencyNanoseconds)
        XCTAssertNil(event.error)
        XCTAssertEqual(event.health, TCPHealth(smoothedRTTMicroseconds: 120, rttVarianceMicroseconds: 60, minimumRTTMicroseconds: 90, retransmits: 0))
        XCTAssertEqual(event.socketID, 0x2f_0002)
        var noCookie = TCPSample()
        noCookie.socketID = 0
        XCTAssertNil(try decode(noCookie).socketID, "0 is the kernel's no cookie")
    }

    /// Each kind takes what belongs to it from the shared sample: a connect its latency (no
    /// duration), a failure its duration and error, an accept neither and no previous state.
    func testEachKindDecodesItsOwnFields() throws {
        let connected = try decode(try XCTUnwrap(TCPSample(kind: .connect)))
        XCTAssertEqual(connected.kind, .connect)
        XCTAssertEqual(connected.latencyNanoseconds, 1_000_000_000)
        XCTAssertNil(connected.durationNanoseconds)
        XCTAssertEqual(connected.previousState, .synSent)

        let accepted = try decode(try XCTUnwrap(TCPSample(kind: .accept)))
        XCTAssertEqual(accepted.kind, .accept)
        XCTAssertNil(accepted.previousState)
        XCTAssertNil(accepted.latencyNanoseconds)
        XCTAssertNil(accepted.durationNanoseconds)

        var fail = try XCTUnwrap(TCPSample(kind: .fail))
        XCTAssertEqual(fail.error, 111)
        XCTAssertEqual(fail.minRTTMicroseconds, .max)
        let failed = try decode(fail)
        XCTAssertEqual(failed.kind, .fail)
        XCTAssertEqual(failed.error?.name, "ECONNREFUSED")
        XCTAssertEqual(failed.durationNanoseconds, 1_000_000_000)
        XCTAssertNil(failed.health.minimumRTTMicroseconds, "~0U is the kernel's no minimum yet")
        fail.error = 0
        XCTAssertNil(try decode(fail).error, "a connect given up by its process has no error")
        fail.error = 4095
        XCTAssertEqual(try decode(fail).error?.name, "errno 4095")

        var closeWithError = TCPSample()
        closeWithError.error = 104
        XCTAssertNil(try decode(closeWithError).error, "only a failure reports an error")
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
        raw[try XCTUnwrap(MemoryLayout<ne_tcp_event>.offset(of: \.comm))] = 0xff
        let event = try raw.withUnsafeBytes { try TCPEventDecoder.decode($0, clock: clock) }
        XCTAssertEqual(event.command, "\u{FFFD}url")
    }

    func testShortSampleThrowsMalformed() {
        let raw = Array(TCPSample().bytes.prefix(100))
        XCTAssertThrowsError(try raw.withUnsafeBytes { try TCPEventDecoder.decode($0, clock: clock) }) { error in
            guard case BPFError.malformedSample(let expected, let actual, _) = error else {
                return XCTFail("expected malformedSample, got \(error)")
            }
            XCTAssertEqual(expected, 240)
            XCTAssertEqual(actual, 100)
        }
        XCTAssertThrowsError(try [UInt8]().withUnsafeBytes { try TCPEventDecoder.decode($0, clock: clock) })
    }

    func testValuesNoKernelWritesThrowMalformed() {
        let changes: [(String, (inout TCPSample) -> Void)] = [
            ("family", { $0.family = 1 }), ("owner 4", { $0.ownerSource = 4 }), ("owner fd", { $0.ownerSource = 5 }),
            ("state", { $0.oldState = 99 }), ("no state for a close", { $0.oldState = 0 }), ("kind 0", { $0.kind = 0 }),
            ("kind 9", { $0.kind = 9 }),
        ]
        for (name, change) in changes {
            var sample = TCPSample()
            change(&sample)
            XCTAssertThrowsError(try decode(sample), name) { error in
                guard case BPFError.malformedSample(_, _, let detail) = error else { return XCTFail("\(error)") }
                XCTAssertFalse(detail.isEmpty)
            }
        }
    }

    /// The sample is `struct ne_tcp_event` of the contract header, which the program compiles
    /// against too; its size and field offsets are the kernel/user ABI and must not drift.
    func testTheSampleLayoutIsTheContractHeaders() throws {
        XCTAssertEqual(MemoryLayout<ne_tcp_event>.size, 240)
        XCTAssertEqual(TCPEventDecoder.sampleSize, 240)
        XCTAssertEqual(TCPSample().bytes.count, 240)
        let offsets: [(String, Int?, Int)] = [
            ("ts_ns", MemoryLayout<ne_tcp_event>.offset(of: \.ts_ns), 0),
            ("start_ns", MemoryLayout<ne_tcp_event>.offset(of: \.start_ns), 8),
            ("cgroup_id", MemoryLayout<ne_tcp_event>.offset(of: \.cgroup_id), 16),
            ("rx_bytes", MemoryLayout<ne_tcp_event>.offset(of: \.rx_bytes), 24),
            ("tx_bytes", MemoryLayout<ne_tcp_event>.offset(of: \.tx_bytes), 32),
            ("segs_in", MemoryLayout<ne_tcp_event>.offset(of: \.segs_in), 40),
            ("segs_out", MemoryLayout<ne_tcp_event>.offset(of: \.segs_out), 44),
            ("data_segs_in", MemoryLayout<ne_tcp_event>.offset(of: \.data_segs_in), 48),
            ("data_segs_out", MemoryLayout<ne_tcp_event>.offset(of: \.data_segs_out), 52),
            ("pid", MemoryLayout<ne_tcp_event>.offset(of: \.pid), 56),
            ("uid", MemoryLayout<ne_tcp_event>.offset(of: \.uid), 60),
            ("netns", MemoryLayout<ne_tcp_event>.offset(of: \.netns), 64),
            ("srtt_us", MemoryLayout<ne_tcp_event>.offset(of: \.srtt_us), 68),
            ("rttvar_us", MemoryLayout<ne_tcp_event>.offset(of: \.rttvar_us), 72),
            ("min_rtt_us", MemoryLayout<ne_tcp_event>.offset(of: \.min_rtt_us), 76),
            ("retransmits", MemoryLayout<ne_tcp_event>.offset(of: \.retransmits), 80),
            ("error", MemoryLayout<ne_tcp_event>.offset(of: \.error), 84),
            ("family", MemoryLayout<ne_tcp_event>.offset(of: \.family), 88),
            ("sport", MemoryLayout<ne_tcp_event>.offset(of: \.sport), 90),
            ("dport", MemoryLayout<ne_tcp_event>.offset(of: \.dport), 92),
            ("oldstate", MemoryLayout<ne_tcp_event>.offset(of: \.oldstate), 94),
            ("owner_source", MemoryLayout<ne_tcp_event>.offset(of: \.owner_source), 95),
            ("kind", MemoryLayout<ne_tcp_event>.offset(of: \.kind), 96),
            ("pad0", MemoryLayout<ne_tcp_event>.offset(of: \.pad0), 97),
            ("saddr", MemoryLayout<ne_tcp_event>.offset(of: \.saddr), 98),
            ("daddr", MemoryLayout<ne_tcp_event>.offset(of: \.daddr), 114),
            ("comm", MemoryLayout<ne_tcp_event>.offset(of: \.comm), 130),
            ("thread", MemoryLayout<ne_tcp_event>.offset(of: \.thread), 146),
            ("pad", MemoryLayout<ne_tcp_event>.offset(of: \.pad), 162),
            ("socket_id", MemoryLayout<ne_tcp_event>.offset(of: \.socket_id), 168),
            ("exe", MemoryLayout<ne_tcp_event>.offset(of: \.exe), 176),
        ]
        for (name, offset, expected) in offsets {
            XCTAssertEqual(offset, expected, name)
        }
        XCTAssertEqual(MemoryLayout<ne_tcp_owner>.size, 128, "the owners map value")
    }

    /// Bytes the decoder does not read (the pads, the unused 12 bytes of an IPv4 address) change
    /// nothing.
    func testPaddingAndUnusedAddressBytesAreIgnored() throws {
        let plain = try decode(TCPSample())
        var raw = TCPSample().bytes
        let pad = try XCTUnwrap(MemoryLayout<ne_tcp_event>.offset(of: \.pad))
        for index in pad..<pad + 6 { raw[index] = 0xee }
        raw[try XCTUnwrap(MemoryLayout<ne_tcp_event>.offset(of: \.pad0))] = 0xee
        let saddr = try XCTUnwrap(MemoryLayout<ne_tcp_event>.offset(of: \.saddr))
        for index in saddr + 4..<saddr + 16 { raw[index] = 0xdd }
        let event = try raw.withUnsafeBytes { try TCPEventDecoder.decode($0, clock: clock) }
        XCTAssertEqual(event, plain)
    }
}
