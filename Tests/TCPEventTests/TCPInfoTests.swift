import XCTest
@testable import TCPEvent

/// `struct tcp_info` read at its uapi offsets, as a `sock_diag` dump carries it.
final class TCPInfoTests: XCTestCase {
    func testTheCountersAndHealthAtTheirOffsets() throws {
        var bytes = [UInt8](repeating: 0, count: 232)
        func put<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
            withUnsafeBytes(of: value) { bytes.replaceSubrange(offset..<offset + $0.count, with: $0) }
        }
        put(UInt32(1_234), at: 68)  // tcpi_rtt
        put(UInt32(567), at: 72)  // tcpi_rttvar
        put(UInt32(9), at: 100)  // tcpi_total_retrans
        put(UInt64(12_347), at: 120)  // tcpi_bytes_acked
        put(UInt64(778), at: 128)  // tcpi_bytes_received
        put(UInt32(6), at: 136)  // tcpi_segs_out
        put(UInt32(5), at: 140)  // tcpi_segs_in
        put(UInt32(890), at: 148)  // tcpi_min_rtt
        put(UInt32(1), at: 152)  // tcpi_data_segs_in
        put(UInt32(2), at: 156)  // tcpi_data_segs_out
        let info = try XCTUnwrap(TCPInfo(bytes))
        XCTAssertEqual(
            info.totals,
            TCPInfo.Totals(receivedBytes: 778, sentBytes: 12_347, segmentsIn: 5, segmentsOut: 6, dataSegmentsIn: 1, dataSegmentsOut: 2))
        XCTAssertEqual(info.health, TCPHealth(smoothedRTTMicroseconds: 1_234, rttVarianceMicroseconds: 567, minimumRTTMicroseconds: 890, retransmits: 9))
        put(UInt32.max, at: 148)
        XCTAssertNil(TCPInfo(bytes)?.health.minimumRTTMicroseconds, "~0U: no RTT sample yet")
        XCTAssertNil(TCPInfo(Array(bytes.prefix(159))), "a kernel before data_segs_out (4.6) gives too little")
        let later = TCPInfo.Totals(receivedBytes: 800, sentBytes: 12_400, segmentsIn: 7, segmentsOut: 9, dataSegmentsIn: 2, dataSegmentsOut: 3)
        XCTAssertEqual(
            later.since(info.totals),
            TCPInfo.Totals(receivedBytes: 22, sentBytes: 53, segmentsIn: 2, segmentsOut: 3, dataSegmentsIn: 1, dataSegmentsOut: 1))
    }
}
