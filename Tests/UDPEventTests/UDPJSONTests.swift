import Foundation
import NetEventsTesting
import XCTest
@testable import UDPEvent

/// The JSON of `udp-events --json`: one line per event from ``EventJSONEncoder``, whose keys are
/// the event's `Codable` keys, the same as `JSONEncoder` writes.
final class UDPJSONTests: XCTestCase {
    let clock = WallClock(offsetNanoseconds: 1_700_000_000_000_000_000)

    /// Every key of a UDP event line, in the order the line writes them.
    static let keys = [
        "event", "time_ns", "pid", "uid", "comm", "exe", "family", "saddr", "sport", "daddr", "dport", "rx_bytes", "tx_bytes",
        "rx_packets", "tx_packets", "reason", "cgroup_id", "netns", "socket_id", "first_seen_ns",
    ]

    /// A sample decoded and reported as its socket's close, as the UDP kind does.
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
        let line = try EventJSONEncoder().encode(try closeEvent(sample))
        XCTAssertFalse(line.contains("\n"))
        XCTAssertTrue(line.hasPrefix("{") && line.hasSuffix("}"), line)
        XCTAssertTrue(line.hasPrefix("{\"event\":\"close\",\"time_ns\":"), line)
        let json = try object(line)
        for key in ["time_ns", "pid", "uid", "comm", "family", "saddr", "sport", "daddr", "dport", "rx_bytes", "tx_bytes", "rx_packets", "tx_packets"] {
            XCTAssertNotNil(json[key], "key \(key) in \(line)")
        }
        XCTAssertEqual(Set(json.keys), Set(Self.keys))
        func number(_ key: String) -> UInt64? { (json[key] as? NSNumber)?.uint64Value }
        XCTAssertEqual(json["event"] as? String, "close")
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
        // The socket id is the kernel's cookie, not the socket's address.
        XCTAssertEqual(number("socket_id"), 0x2f_0001)
        XCTAssertTrue(line.contains("\"first_seen_ns\":1700000004000000000"), line)
        XCTAssertTrue(line.contains("\"comm\":\"we\\\"ird\\\\name\""), line)
    }

    /// The keys are written in the order of DESIGN.md, then the extra ones.
    func testKeysComeInTheDesignOrder() throws {
        let line = try EventJSONEncoder().encode(try closeEvent(UDPCloseSample()))
        var positions: [Int] = []
        for key in Self.keys {
            let range = try XCTUnwrap(line.range(of: "\"\(key)\":"), "\(key) in \(line)")
            positions.append(line.distance(from: line.startIndex, to: range.lowerBound))
        }
        XCTAssertEqual(positions, positions.sorted(), line)
    }

    func testIPv6UnconnectedSocket() throws {
        var sample = UDPCloseSample()
        sample.family = 10
        sample.saddr = Array(repeating: 0, count: 15) + [1]
        sample.daddr = Array(repeating: 0, count: 16)
        sample.dport = 0
        let json = try object(try EventJSONEncoder().encode(try closeEvent(sample)))
        XCTAssertEqual(json["family"] as? String, "ipv6")
        XCTAssertEqual(json["saddr"] as? String, "::1")
        XCTAssertEqual(json["daddr"] as? String, "::")
        XCTAssertEqual((json["dport"] as? NSNumber)?.intValue, 0)
    }

    /// The `event` key is the reason of the report, for every reason.
    func testEventKeyIsTheReason() throws {
        let base = try closeEvent(UDPCloseSample())
        for reason in [UDPTrafficEvent.Reason.interval, .close, .stop, .idle] {
            var event = base
            event.reason = reason
            let json = try object(try EventJSONEncoder().encode(event))
            XCTAssertEqual(json["event"] as? String, reason.rawValue)
            XCTAssertEqual(json["reason"] as? String, reason.rawValue)
        }
    }

    func testControlCharactersInCommandAreEscaped() throws {
        var sample = UDPCloseSample()
        sample.rawComm = Array("a\u{1}b\tc\nd".utf8)
        let line = try EventJSONEncoder().encode(try closeEvent(sample))
        XCTAssertFalse(line.contains("\n"))
        XCTAssertTrue(line.contains("\"comm\":\"a\\u0001b\\tc\\nd\""), line)
        XCTAssertEqual(try object(line)["comm"] as? String, "a\u{1}b\tc\nd")
    }

    /// `JSONEncoder` writes the same keys (the `Codable` conformance is their one definition), and
    /// a line decodes back to the event it came from.
    func testJSONEncoderAgreesAndLinesRoundTrip() throws {
        var ipv6 = UDPCloseSample()
        ipv6.family = 10
        ipv6.saddr = Array(repeating: 0, count: 15) + [1]
        ipv6.daddr = Array(repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 7]
        ipv6.rawComm = Array("a\u{1}b\tc\nd".utf8)
        var large = UDPCloseSample()
        large.socket = UInt64.max
        large.rxBytes = UInt64.max
        large.txPackets = 0
        large.pid = UInt32.max  // -1 as a pid
        large.uid = UInt32.max
        var unconnected = UDPCloseSample()
        unconnected.daddr = [0, 0, 0, 0]
        unconnected.dport = 0
        for sample in [UDPCloseSample(), ipv6, large, unconnected] {
            for reason in [UDPTrafficEvent.Reason.close, .interval] {
                var event = try closeEvent(sample)
                event.reason = reason
                let line = try EventJSONEncoder().encode(event)
                let foundation = try JSONEncoder().encode(event)
                let foundationObject = try XCTUnwrap(JSONSerialization.jsonObject(with: foundation) as? [String: Any])
                XCTAssertEqual(Set(foundationObject.keys), Set(try object(line).keys), line)
                XCTAssertEqual(Set(foundationObject.keys), Set(Self.keys))
                XCTAssertEqual(try JSONDecoder().decode(UDPTrafficEvent.self, from: Data(line.utf8)), event, line)
                XCTAssertEqual(try JSONDecoder().decode(UDPTrafficEvent.self, from: foundation), event)
            }
        }
    }

    func testUnknownValuesAndMissingKeysDoNotDecode() throws {
        let line = try EventJSONEncoder().encode(try closeEvent(UDPCloseSample()))
        for (from, to) in [("\"reason\":\"close\"", "\"reason\":\"boredom\""), ("\"family\":\"ipv4\"", "\"family\":\"ipx\""),
                           ("\"daddr\":\"127.0.0.53\"", "\"daddr\":\"dns\""), ("\"uid\":65534,", "")] {
            let broken = line.replacingOccurrences(of: from, with: to)
            XCTAssertNotEqual(broken, line, from)
            XCTAssertThrowsError(try JSONDecoder().decode(UDPTrafficEvent.self, from: Data(broken.utf8)), broken)
        }
    }
}
