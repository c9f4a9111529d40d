import BCCRuntime
import EventOutput
import Foundation
import XCTest
@testable import UDPEvent

final class UDPJSONTests: XCTestCase {
    let clock = WallClock(offsetNanoseconds: 1_700_000_000_000_000_000)

    /// A sample decoded and reported as its socket's close, as UDPMonitor does.
    func closeEvent(_ sample: UDPCloseSample) throws -> UDPTrafficEvent {
        let close = try sample.bytes.withUnsafeBytes { try UDPFlowDecoder.close($0) }
        let flow = try XCTUnwrap(close.flow)
        return try XCTUnwrap(FlowLedger(clock: clock).finish(flow, reason: .close, at: clock.wallClock(fromMonotonic: close.closeNanoseconds)))
    }

    func object(_ line: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
    }

    func testJSONLineHasTheDesignKeysAndValues() throws {
        var sample = UDPCloseSample()
        sample.comm = "we\"ird\\name"
        let line = UDPEventPrinter(json: true).jsonLine(try closeEvent(sample))
        XCTAssertFalse(line.contains("\n"))
        XCTAssertTrue(line.hasPrefix("{") && line.hasSuffix("}"), line)
        let json = try object(line)
        for key in ["time_ns", "pid", "uid", "comm", "family", "saddr", "sport", "daddr", "dport", "rx_bytes", "tx_bytes", "rx_packets", "tx_packets"] {
            XCTAssertNotNil(json[key], "key \(key) in \(line)")
        }
        func number(_ key: String) -> UInt64? { (json[key] as? NSNumber)?.uint64Value }
        XCTAssertEqual(number("time_ns"), 1_700_000_005_000_000_000)
        XCTAssertEqual(number("pid"), 4242)
        XCTAssertEqual(number("uid"), 65_534)
        XCTAssertEqual(json["comm"] as? String, "we\"ird\\name")
        XCTAssertEqual(json["family"] as? String, "ipv4")
        XCTAssertEqual(json["saddr"] as? String, "127.0.0.1")
        XCTAssertEqual(number("sport"), 40_000)
        XCTAssertEqual(json["daddr"] as? String, "127.0.0.53")
        XCTAssertEqual(number("dport"), 53)
        XCTAssertEqual(number("rx_bytes"), 777)
        XCTAssertEqual(number("tx_bytes"), 12_345)
        XCTAssertEqual(number("rx_packets"), 2)
        XCTAssertEqual(number("tx_packets"), 3)
        XCTAssertEqual(json["reason"] as? String, "close")
        XCTAssertEqual(number("cgroup_id"), 77)
        XCTAssertEqual(number("netns"), 4_026_531_840)
        // The socket id is a kernel address, above Int64.max: written exactly in the text.
        XCTAssertTrue(line.contains("\"socket_id\":\(UInt64(0xffff_8880_1234_5600))"), line)
        XCTAssertTrue(line.contains("\"comm\":\"we\\\"ird\\\\name\""), line)
    }

    func testIPv6UnconnectedSocket() throws {
        var sample = UDPCloseSample()
        sample.family = 10
        sample.saddr = Array(repeating: 0, count: 15) + [1]
        sample.daddr = Array(repeating: 0, count: 16)
        sample.dport = 0
        let json = try object(UDPEventPrinter(json: true).jsonLine(try closeEvent(sample)))
        XCTAssertEqual(json["family"] as? String, "ipv6")
        XCTAssertEqual(json["saddr"] as? String, "::1")
        XCTAssertEqual(json["daddr"] as? String, "::")
        XCTAssertEqual((json["dport"] as? NSNumber)?.intValue, 0)
    }

    func testControlCharactersInCommandAreEscaped() throws {
        var sample = UDPCloseSample()
        sample.rawComm = Array("a\u{1}b\tc\nd".utf8)
        let line = UDPEventPrinter(json: true).jsonLine(try closeEvent(sample))
        XCTAssertFalse(line.contains("\n"))
        XCTAssertEqual(try object(line)["comm"] as? String, "a\u{1}b\tc\nd")
    }

    func testTableRowShowsADashForAnUnconnectedPeer() throws {
        let printer = UDPEventPrinter(json: false)
        var sample = UDPCloseSample()
        sample.daddr = [0, 0, 0, 0]
        sample.dport = 0
        let row = printer.row(try closeEvent(sample))
        XCTAssertFalse(row.contains("\n"))
        let columns = row.split(separator: " ").map(String.init)
        XCTAssertEqual(columns.count, 11, row)
        XCTAssertEqual(columns[1], "4242")
        XCTAssertEqual(columns[2], "65534")
        XCTAssertEqual(columns[3], "dig")
        XCTAssertEqual(columns[4], "127.0.0.1:40000")
        XCTAssertEqual(columns[5], "-", "the peer of an unconnected socket")
        XCTAssertEqual(Array(columns[6...]), ["3", "12345", "2", "777", "close"])
        let header = printer.header.split(separator: " ").map(String.init)
        XCTAssertEqual(header[5], "PEER")
    }

    func testTableRowShowsTheConnectedPeer() throws {
        let printer = UDPEventPrinter(json: false)
        XCTAssertEqual(printer.row(try closeEvent(UDPCloseSample())).split(separator: " ").map(String.init)[5], "127.0.0.53:53")
        var sample = UDPCloseSample()
        sample.family = 10
        sample.saddr = Array(repeating: 0, count: 15) + [1]
        sample.daddr = Array(repeating: 0, count: 15) + [1]
        let columns = printer.row(try closeEvent(sample)).split(separator: " ").map(String.init)
        XCTAssertEqual(columns[4], "[::1]:40000")
        XCTAssertEqual(columns[5], "[::1]:53")
    }
}
