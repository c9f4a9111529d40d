import Foundation
import NetEventsCore
import XCTest

final class EventJSONEncoderTests: XCTestCase {
    let encoder = EventJSONEncoder()

    /// Parses one JSON value (objects, arrays and scalars alike).
    func parse(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    /// Encodes `value`, checks that the line is `expected`, and returns it.
    @discardableResult
    func assertEncodes(_ value: some Encodable, as expected: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let encoded = try encoder.encode(value)
        XCTAssertEqual(encoded, expected, file: file, line: line)
        return encoded
    }

    struct Integers: Encodable {
        var int = Int.min
        var int32 = Int32.min
        var int64 = Int64.min
        var negative: Int32 = -1
        var zero: UInt64 = 0
        var uint8 = UInt8.max
        var uint16 = UInt16.max
        var uint32 = UInt32.max
        var uint64 = UInt64.max
        var positive = 1_234_567_890
    }

    func testIntegersAreWrittenExactly() throws {
        try assertEncodes(
            Integers(),
            as: "{\"int\":-9223372036854775808,\"int32\":-2147483648,\"int64\":-9223372036854775808,\"negative\":-1,\"zero\":0,"
                + "\"uint8\":255,\"uint16\":65535,\"uint32\":4294967295,\"uint64\":18446744073709551615,\"positive\":1234567890}")
        for value: UInt64 in [0, 1, 9, 10, 99, 100, 1 << 32, 10_000_000_000_000_000_000, UInt64.max - 1, UInt64.max] {
            XCTAssertEqual(try encoder.encode(value), "\(value)")
            XCTAssertEqual(try encoder.encode([value]), "[\(value)]")
        }
        for value: Int64 in [-1, -9, -10, -1_000_000, Int64.min + 1, Int64.min, Int64.max] {
            XCTAssertEqual(try encoder.encode(value), "\(value)")
        }
        for value: Int32 in [Int32.min, -1, 0, Int32.max] {
            XCTAssertEqual(try encoder.encode(value), "\(value)")
        }
    }

    struct Optionals: Encodable {
        var some: UInt64? = 5
        var none: UInt64? = nil
        var omitted: String? = nil
        var name: String? = "x"

        enum CodingKeys: String, CodingKey { case some, none, omitted, name }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(some, forKey: .some)
            try container.encode(none, forKey: .none)
            try container.encodeIfPresent(omitted, forKey: .omitted)
            try container.encodeIfPresent(name, forKey: .name)
        }
    }

    func testNilIsNullAndAbsentIfPresentIsOmitted() throws {
        let line = try assertEncodes(Optionals(), as: "{\"some\":5,\"none\":null,\"name\":\"x\"}")
        let object = try XCTUnwrap(try parse(line) as? [String: Any])
        XCTAssertTrue(object["none"] is NSNull)
        XCTAssertNil(object["omitted"])
        // JSONEncoder agrees on the keys.
        let foundation = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(Optionals())) as? [String: Any])
        XCTAssertEqual(Set(foundation.keys), Set(object.keys))
        XCTAssertEqual(try encoder.encode([nil, 1, nil] as [Int?]), "[null,1,null]")
    }

    enum Color: String, Encodable { case red, blue }

    /// Encodes as a single string, as `IPAddress` does.
    struct Tag: Encodable {
        var text: String
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode("#" + text)
        }
    }

    struct Inner: Encodable {
        var color = Color.blue
        var tags = [Tag(text: "a"), Tag(text: "b\"c")]
        var empty: [String] = []
    }

    struct Outer: Encodable {
        var name = "outer"
        var address = IPAddress("::ffff:192.0.2.7")!
        var v4 = IPAddress("10.1.2.3")!
        var color = Color.red
        var inner = Inner()
        var list = ["x", "y\nz", ""]
        var nested = [["a"], [], ["b", "c"]]
        var flag = true
        var off = false
        var ratio = 0.5
        var after = 7
    }

    func testNestedEncodableValuesAndArraysOfStrings() throws {
        let line = try assertEncodes(
            Outer(),
            as: "{\"name\":\"outer\",\"address\":\"::ffff:192.0.2.7\",\"v4\":\"10.1.2.3\",\"color\":\"red\","
                + "\"inner\":{\"color\":\"blue\",\"tags\":[\"#a\",\"#b\\\"c\"],\"empty\":[]},"
                + "\"list\":[\"x\",\"y\\nz\",\"\"],\"nested\":[[\"a\"],[],[\"b\",\"c\"]],"
                + "\"flag\":true,\"off\":false,\"ratio\":0.5,\"after\":7}")
        // Valid JSON, and the same keys and values as JSONEncoder's.
        let ours = try XCTUnwrap(try parse(line) as? NSDictionary)
        let foundation = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(Outer())) as? NSDictionary)
        XCTAssertEqual(ours, foundation)
        XCTAssertEqual(try encoder.encode(["a", "b"]), "[\"a\",\"b\"]")
        XCTAssertEqual(try encoder.encode([String]()), "[]")
        XCTAssertEqual(try encoder.encode(Color.blue), "\"blue\"")
        XCTAssertEqual(try encoder.encode(IPAddress("::1")!), "\"::1\"")
    }

    func testStringsAreEscapedAsJSONRequires() throws {
        XCTAssertEqual(try encoder.encode("a\u{1}b\nc"), "\"a\\u0001b\\nc\"")
        XCTAssertEqual(try encoder.encode("q\"b\\s/"), "\"q\\\"b\\\\s/\"")
        XCTAssertEqual(try encoder.encode("\r\t\u{0}\u{1f}\u{7f}"), "\"\\r\\t\\u0000\\u001f\u{7f}\"")
        var every = ""
        for scalar in 0..<0x20 { every.unicodeScalars.append(Unicode.Scalar(UInt8(scalar))) }
        every += "é日本🙂\u{FFFD}"
        let line = try encoder.encode(every)
        XCTAssertFalse(line.utf8.contains { $0 < 0x20 }, "no raw control character: \(line)")
        XCTAssertEqual(try parse(line) as? String, every)
        XCTAssertTrue(line.contains("é日本🙂"), "UTF-8 passes through unescaped")
    }

    func testAppendWritesOneLineEachAfterWhatTheBufferHolds() throws {
        var buffer = Array("prefix\n".utf8)
        try encoder.append(["a": 1], to: &buffer)
        try encoder.append("two", to: &buffer)
        try encoder.append(Integers(), to: &buffer)
        let lines = String(decoding: buffer, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 5, "prefix, three lines, and the empty rest after the last newline")
        XCTAssertEqual(lines[0], "prefix")
        XCTAssertEqual(lines[1], "{\"a\":1}")
        XCTAssertEqual(lines[2], "\"two\"")
        XCTAssertEqual(String(lines[3]), try encoder.encode(Integers()))
        XCTAssertEqual(lines[4], "")
    }

    func testNonFiniteNumbersThrow() {
        for value in [Double.nan, .infinity, -.infinity] {
            XCTAssertThrowsError(try encoder.encode(["x": value]), "\(value)") { error in
                guard case EncodingError.invalidValue = error else { return XCTFail("\(error)") }
            }
        }
        var buffer = Array("keep".utf8)
        XCTAssertThrowsError(try encoder.append([Double.nan], to: &buffer))
        XCTAssertTrue(buffer.starts(with: Array("keep".utf8)), "what the buffer held is kept")
    }
}

/// Shapes the streaming writer does not handle itself go through `JSONEncoder`: still one valid
/// line, never a crash; keys are escaped like any string; a failed value leaves nothing behind.
final class EventJSONEncoderEdgeTests: XCTestCase {
    enum Shape: Codable, Equatable {
        case circle(radius: Int)
        case label(String, Int)
    }

    struct Flattening: Encodable {
        var a = 1, b = 2
        enum First: String, CodingKey { case a }
        enum Second: String, CodingKey { case b }
        func encode(to encoder: any Encoder) throws {
            var first = encoder.container(keyedBy: First.self)
            try first.encode(a, forKey: .a)
            var second = encoder.container(keyedBy: Second.self)
            try second.encode(b, forKey: .b)
        }
    }

    func line(_ value: some Encodable) throws -> Data {
        var buffer: [UInt8] = []
        try EventJSONEncoder().append(value, to: &buffer)
        XCTAssertEqual(buffer.last, UInt8(ascii: "\n"))
        XCTAssertEqual(buffer.filter { $0 == UInt8(ascii: "\n") }.count, 1, "one line")
        return Data(buffer.dropLast())
    }

    func testNestedContainersFallBackToAValidLine() throws {
        let shapes: [Shape] = [.circle(radius: 3), .label("x\"y", -4)]
        XCTAssertEqual(try JSONDecoder().decode([Shape].self, from: try line(shapes)), shapes)
        let flat = try JSONSerialization.jsonObject(with: try line(Flattening())) as? [String: Int]
        XCTAssertEqual(flat, ["a": 1, "b": 2])
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: try line([Decimal(string: "1.25")!])))
    }

    func testKeysAreEscaped() throws {
        let hostile = ["x\":1,\"admin\":true,\"y": 7, "a\nb": 8]
        let object = try JSONSerialization.jsonObject(with: try line(hostile)) as? [String: Int]
        XCTAssertEqual(object, hostile)
    }

    func testAFailedValueLeavesTheBufferAsItWas() {
        var buffer = Array("prev\n".utf8)
        XCTAssertThrowsError(try EventJSONEncoder().append([1.0, Double.nan], to: &buffer))
        XCTAssertEqual(buffer, Array("prev\n".utf8))
    }
}

final class IPAddressCodableTests: XCTestCase {
    func testAddressesRoundTripAsText() throws {
        for text in ["127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "::", "::ffff:192.0.2.7", "2001:db8::1", "fe80::1:2:3:4"] {
            let address = try XCTUnwrap(IPAddress(text), text)
            let data = try JSONEncoder().encode([address])
            XCTAssertEqual(String(decoding: data, as: UTF8.self), "[\"\(text)\"]")
            XCTAssertEqual(try JSONDecoder().decode([IPAddress].self, from: data), [address])
            XCTAssertEqual(try EventJSONEncoder().encode(address), "\"\(text)\"")
        }
        let mapped = try JSONDecoder().decode([IPAddress].self, from: Data("[\"::ffff:192.0.2.7\"]".utf8))
        XCTAssertEqual(mapped.first?.family, .ipv6, "a v4-mapped address stays IPv6")
    }

    func testTextThatIsNoAddressDoesNotDecode() {
        for text in ["", "localhost", "1.2.3", "1.2.3.256", ":::", "::g"] {
            XCTAssertThrowsError(try JSONDecoder().decode([IPAddress].self, from: Data("[\"\(text)\"]".utf8)), text) { error in
                guard case DecodingError.dataCorrupted(let context) = error else { return XCTFail("\(text): \(error)") }
                XCTAssertTrue(context.debugDescription.contains("not an IP address"), context.debugDescription)
            }
        }
        XCTAssertThrowsError(try JSONDecoder().decode([IPAddress].self, from: Data("[7]".utf8)))
    }

    func testIPv6BytesHoldSixteenBytesInOrder() throws {
        let loopback: IPv6Bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        XCTAssertEqual(IPAddress.v6(loopback), IPAddress("::1"))
        XCTAssertEqual(loopback.description, "::1")
        let documentation = try XCTUnwrap(IPv6Bytes([0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x42]))
        XCTAssertEqual(Array(documentation), [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x42])
        XCTAssertEqual(documentation[15], 0x42)
        XCTAssertEqual(IPAddress.v6(documentation).bytes, Array(documentation))
        XCTAssertEqual(IPAddress.v6(documentation).description, "2001:db8::42")
        XCTAssertNil(IPv6Bytes([UInt8](repeating: 1, count: 15)), "15 bytes are no address")
        XCTAssertNil(IPv6Bytes([UInt8](repeating: 1, count: 17)), "nor are 17")
        XCTAssertEqual(Set([loopback, documentation, loopback]).count, 2)
        XCTAssertNotEqual(loopback, IPv6Bytes(), "only the last byte differs from ::")
    }
}
