import BCCRuntime
import EventOutput
import Foundation
import XCTest
@testable import TCPEvent

final class JSONSchemaTests: XCTestCase {
    func testJSONLineHasTheDesignKeysAndParses() throws {
        var sample = TCPSample()
        sample.comm = "we\"ird\\name"
        let event = try sample.bytes.withUnsafeBytes { try TCPEventDecoder.decode($0, clock: WallClock(offsetNanoseconds: 0)) }
        let line = TCPEventPrinter(json: true).jsonLine(event)
        XCTAssertFalse(line.contains("\n"))
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        for key in ["time_ns", "pid", "uid", "comm", "family", "saddr", "sport", "daddr", "dport", "rx_bytes", "tx_bytes", "segs_in", "segs_out", "duration_ns"] {
            XCTAssertNotNil(object[key], "key \(key)")
        }
        XCTAssertEqual(object["comm"] as? String, "we\"ird\\name")
        XCTAssertEqual(object["family"] as? String, "ipv4")
        XCTAssertEqual(object["saddr"] as? String, "127.0.0.1")
        XCTAssertEqual((object["tx_bytes"] as? NSNumber)?.uint64Value, 12_347)
        XCTAssertEqual((object["time_ns"] as? NSNumber)?.uint64Value, 5_000_000_000)
        XCTAssertEqual((object["duration_ns"] as? NSNumber)?.uint64Value, 1_000_000_000)
    }

    func testUnknownDurationIsNull() throws {
        var sample = TCPSample()
        sample.start = 0
        let event = try sample.bytes.withUnsafeBytes { try TCPEventDecoder.decode($0, clock: WallClock(offsetNanoseconds: 0)) }
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(TCPEventPrinter(json: true).jsonLine(event).utf8)) as? [String: Any])
        XCTAssertTrue(object["duration_ns"] is NSNull)
    }

    func testControlCharactersAreEscaped() {
        XCTAssertEqual(JSONLine.quoted("a\u{1}b\nc"), "\"a\\u0001b\\nc\"")
    }
}
