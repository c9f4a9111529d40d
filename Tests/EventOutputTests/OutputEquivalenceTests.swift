import DNSEvent
import EventOutput
import Foundation
import Glibc
import NetEventsCore
import TCPEvent
import UDPEvent
import XCTest

/// Records the keys an event lists, in order.
struct KeyList: EventFieldWriter {
    var keys: [String] = []
    mutating func write(_ value: UInt64, forKey key: StaticString) { keys.append(key.description) }
    mutating func write(_ value: Int64, forKey key: StaticString) { keys.append(key.description) }
    mutating func write(_ value: UInt64?, forKey key: StaticString) { keys.append(key.description) }
    mutating func write(_ value: String, forKey key: StaticString) { keys.append(key.description) }
    mutating func write(_ value: String?, forKey key: StaticString) { if value != nil { keys.append(key.description) } }
    mutating func write(_ value: IPAddress, forKey key: StaticString) { keys.append(key.description) }
    mutating func write(_ values: [IPAddress], forKey key: StaticString) { keys.append(key.description) }
    mutating func write(_ value: Bool, forKey key: StaticString) { keys.append(key.description) }
}

/// The tools' output is built byte by byte (``JSONLineWriter``, ``TableRow``) for speed. These
/// tests hold it to what the slower, obvious code writes: `JSONEncoder` for the JSON keys and
/// values, and `String(format:)`/`inet_ntop`/`TextColumn` for the table, on events drawn at
/// random, hostile process names included.
final class OutputEquivalenceTests: XCTestCase {
    var generator = SystemRandomNumberGenerator()

    func randomAddress(_ family: AddressFamily) -> IPAddress {
        switch family {
        case .ipv4:
            return .v4(.random(in: 0...255), .random(in: 0...255), .random(in: 0...255), .random(in: 0...255))
        case .ipv6:
            // Runs of zero groups, v4-mapped and loopback forms exercise inet_ntop's compression.
            var bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
            switch Int.random(in: 0..<4) {
            case 0: for index in 2..<10 { bytes[index] = 0 }
            case 1: bytes = [UInt8](repeating: 0, count: 10) + [0xff, 0xff] + bytes[12..<16]
            case 2: bytes = [UInt8](repeating: 0, count: 15) + [1]
            default: break
            }
            return .v6(IPv6Bytes(bytes)!)
        }
    }

    /// Names as a process may set them: quotes, backslashes, escape sequences, line breaks, DEL,
    /// C1 controls, non-ASCII text, U+FFFD (what invalid UTF-8 became), empty.
    func randomCommand() -> String {
        let pieces = ["curl", "\"", "\\", "\u{1b}[31m", "\n", "\r", "\t", "\u{7f}", "\u{85}", "é", "名", "\u{FFFD}", "", "a b", "/"]
        return (0..<Int.random(in: 0...4)).map { _ in pieces.randomElement()! }.joined()
    }

    func randomValue() -> UInt64 {
        [UInt64.random(in: 0...9), UInt64.random(in: 0...UInt64(UInt32.max)), UInt64.max, UInt64.random(in: 0...UInt64.max)]
            .randomElement()!
    }

    func randomCommon() -> (UInt64, EventProcess, SocketEndpoints) {
        let family: AddressFamily = Bool.random() ? .ipv4 : .ipv6
        let process = EventProcess(
            pid: .random(in: Int32.min...Int32.max), uid: .random(in: 0...UInt32.max), command: randomCommand(),
            thread: Bool.random() ? randomCommand() : nil)
        let endpoints = SocketEndpoints(
            family: family, sourceAddress: randomAddress(family), sourcePort: .random(in: 0...UInt16.max),
            destinationAddress: randomAddress(family), destinationPort: .random(in: 0...UInt16.max))
        // Times within a few days of now, so the table's local clock is exercised across seconds.
        let time = UInt64(Date().timeIntervalSince1970 * 1e9) + .random(in: 0...300_000_000_000_000)
        return (time, process, endpoints)
    }

    func randomTCPEvent() -> TCPConnectionEvent {
        let (time, process, endpoints) = randomCommon()
        let kind = TCPConnectionEvent.Kind.allCases.randomElement()!
        return TCPConnectionEvent(
            kind: kind, timeNanoseconds: time, process: process, ownerSource: TCPConnectionEvent.OwnerSource.allCases.randomElement()!,
            endpoints: endpoints, receivedBytes: randomValue(), sentBytes: randomValue(), segmentsIn: .random(in: 0...UInt32.max),
            segmentsOut: .random(in: 0...UInt32.max), dataSegmentsIn: .random(in: 0...UInt32.max),
            dataSegmentsOut: .random(in: 0...UInt32.max),
            durationNanoseconds: kind != .close && kind != .fail || Bool.random() ? nil : halfwayFree(.random(in: 0...10_000_000_000_000)),
            cgroupID: randomValue(), networkNamespace: .random(in: 0...UInt32.max),
            previousState: kind == .accept || kind == .interval ? nil : TCPState.allCases.randomElement()!,
            latencyNanoseconds: kind == .connect ? randomValue() : nil,
            error: kind == .fail && Bool.random() ? TCPConnectError(code: .random(in: 1...140)) : nil,
            health: TCPHealth(
                smoothedRTTMicroseconds: .random(in: 0...UInt32.max), rttVarianceMicroseconds: .random(in: 0...UInt32.max),
                minimumRTTMicroseconds: Bool.random() ? nil : .random(in: 0...UInt32.max), retransmits: .random(in: 0...UInt32.max)))
    }

    /// `String(format: "%.2f")` rounds the binary double, the table rounds the exact decimal: they
    /// can differ only on an exact half (…5000 ns), which the comparison steps around.
    func halfwayFree(_ nanoseconds: UInt64) -> UInt64 { nanoseconds % 10_000 == 5_000 ? nanoseconds + 1 : nanoseconds }

    func randomUDPEvent() -> UDPTrafficEvent {
        let (time, process, endpoints) = randomCommon()
        return UDPTrafficEvent(
            timeNanoseconds: time, reason: [.interval, .close, .stop, .idle].randomElement()!, process: process,
            endpoints: endpoints, receivedBytes: randomValue(), sentBytes: randomValue(), receivedPackets: randomValue(),
            sentPackets: randomValue(), cgroupID: randomValue(), networkNamespace: .random(in: 0...UInt32.max),
            socketID: randomValue(), socketFirstSeenNanoseconds: randomValue())
    }

    /// Query names as events carry them: `dig`'s escaped text (`\.`, `\\`, `\DDD`), the root, empty
    /// (no question), and hostile text the parser never writes but a consumer may build.
    func randomName() -> String {
        let pieces = [
            "www", "example", "com", ".", #"\."#, #"\\"#, #"\027"#, #"\255"#, "\u{1b}[31m", "\"", "\n", "\u{0}", "é", "名",
            "\u{FFFD}", "", "\u{7f}", "\u{85}", "\u{2028}",
        ]
        switch Int.random(in: 0..<8) {
        case 0: return "."
        case 1: return ""
        default: return (0..<Int.random(in: 1...6)).map { _ in pieces.randomElement()! }.joined()
        }
    }

    func randomDNSEvent() -> DNSMessageEvent {
        let (time, process, endpoints) = randomCommon()
        let kind = DNSMessageEvent.Kind.allCases.randomElement()!
        // Answers: none (a query, NXDOMAIN), or a few of either family in any order.
        let answers = (0..<[0, 0, 1, 2, 7].randomElement()!).map { _ in randomAddress(Bool.random() ? .ipv4 : .ipv6) }
        let cgroupID = randomValue()
        let cgroupPaths = [
            "/", "/user.slice/user-1000.slice/session-2.scope",
            "/system.slice/docker-\(String(repeating: "ab", count: 32)).scope", randomCommand(),
        ]
        return DNSMessageEvent(
            timeNanoseconds: time, kind: kind, isSent: .random(), process: process, endpoints: endpoints,
            id: .random(in: 0...UInt16.max), name: randomName(),
            queryType: DNSRecordType(rawValue: [1, 28, 65, 255, 0, 32_768, .random(in: 0...UInt16.max)].randomElement()!),
            responseCode: kind == .query && Bool.random()
                ? nil : DNSResponseCode(rawValue: [0, 2, 3, 16, 23, .random(in: 0...4_095), .random(in: 0...UInt16.max)].randomElement()!),
            answers: answers, answersIncomplete: .random(), isTruncated: .random(), latencyNanoseconds: Bool.random() ? nil : randomValue(),
            length: .random(in: 0...UInt32.max), cgroupID: cgroupID, networkNamespace: .random(in: 0...UInt32.max),
            cgroup: Bool.random() ? nil : Cgroup(id: cgroupID, path: cgroupPaths.randomElement()!),
            networkNamespaceName: Bool.random() ? nil : randomCommand(), socketID: Bool.random() ? nil : randomValue())
    }

    /// The keys of a one-level JSON object line, in the order written.
    func keys(_ line: String) throws -> [String] {
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
        // Every key is an identifier written as "key":, and no value can contain that shape
        // unescaped except a string value, so scan the top level ourselves. A value may be a list
        // of strings (DNS answers): the strings inside brackets are no keys.
        var found: [String] = []
        var index = line.startIndex
        var depthString = false
        var current = ""
        var expectingKey = true
        var listDepth = 0
        while index < line.endIndex {
            let character = line[index]
            if depthString {
                if character == "\\" { current.append(character); index = line.index(after: index); current.append(line[index]) }
                else if character == "\"" { depthString = false; if expectingKey { found.append(current) } }
                else { current.append(character) }
            } else if character == "\"" {
                depthString = true; current = ""
            } else if character == ":" {
                expectingKey = false
            } else if character == "[" {
                listDepth += 1
            } else if character == "]" {
                listDepth -= 1
            } else if (character == "," && listDepth == 0) || character == "{" {
                expectingKey = true
            }
            index = line.index(after: index)
        }
        XCTAssertEqual(Set(found), Set(object.keys), line)
        return found
    }

    func assertSameJSON<Event: EventFields & Equatable & Decodable>(_ event: Event, _ writer: JSONLineWriter) throws {
        writer.removeAll()
        writer.append(event)
        let line = String(decoding: writer.bytes, as: UTF8.self)
        XCTAssertTrue(line.hasSuffix("\n"))
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1, "one line per event: \(line)")
        let reference = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
        let ours = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? NSDictionary, line)
        let theirs = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(reference.utf8)) as? NSDictionary, reference)
        XCTAssertEqual(ours, theirs, "\(line) vs \(reference)")
        // JSONEncoder on Linux does not keep key order: the order is the one the event lists.
        var listed = KeyList()
        event.writeFields(to: &listed)
        XCTAssertEqual(try keys(line), listed.keys)
        XCTAssertEqual(Set(try keys(reference)), Set(listed.keys))
        XCTAssertEqual(try JSONDecoder().decode(Event.self, from: Data(line.utf8)), event, line)
        // The library's general encoder takes the same path for events.
        XCTAssertEqual(try EventJSONEncoder().encode(event) + "\n", line)
    }

    func testJSONLinesMatchJSONEncoderOnRandomEvents() throws {
        let writer = JSONLineWriter()
        for _ in 0..<1_500 {
            try assertSameJSON(randomTCPEvent(), writer)
            try assertSameJSON(randomUDPEvent(), writer)
        }
    }

    /// DNS events: the answers list (empty included), the optional rcode and latency, the key
    /// written only when true (`answers_incomplete`), hostile names; each decodes back to itself.
    func testDNSJSONLinesMatchJSONEncoderOnRandomEvents() throws {
        let writer = JSONLineWriter()
        for _ in 0..<3_000 {
            try assertSameJSON(randomDNSEvent(), writer)
        }
    }

    /// The keys of `dns-events --json`, in order, for a response and for a query.
    func testDNSJSONKeys() throws {
        var event = randomDNSEvent()
        event.kind = .response
        event.responseCode = .nameError
        event.answers = []
        event.answersIncomplete = true
        event.isTruncated = true
        (event.latencyNanoseconds, event.socketID) = (nil, nil)
        (event.cgroup, event.networkNamespaceName) = (nil, nil)
        event.process = EventProcess(pid: 1, uid: 0, command: "dig")
        let writer = JSONLineWriter()
        writer.append(event)
        let line = String(decoding: writer.bytes, as: UTF8.self)
        XCTAssertEqual(
            try keys(line),
            ["event", "time_ns", "pid", "uid", "comm", "family", "saddr", "sport", "daddr", "dport", "direction", "id", "name",
             "qtype", "rcode", "answers", "answers_incomplete", "truncated", "latency_ns", "length", "cgroup_id", "netns", "socket_id"],
            line)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["event"] as? String, "response")
        XCTAssertEqual(object["rcode"] as? String, "NXDOMAIN")
        XCTAssertEqual(object["answers"] as? [String], [])
        XCTAssertTrue(object["latency_ns"] is NSNull, "an unknown latency is null")
        XCTAssertTrue(object["socket_id"] is NSNull)
        try assertSameJSON(event, writer)

        event.kind = .query
        event.responseCode = nil
        event.answersIncomplete = false
        writer.removeAll()
        writer.append(event)
        let query = String(decoding: writer.bytes, as: UTF8.self)
        let queryKeys = try keys(query)
        XCTAssertFalse(queryKeys.contains("rcode"), "a query has no rcode: \(query)")
        XCTAssertFalse(queryKeys.contains("answers_incomplete"), "written only when true: \(query)")
        XCTAssertTrue(queryKeys.contains("answers"))
        try assertSameJSON(event, writer)
    }

    func testABatchIsOneLinePerEventAndTheBufferIsReused() throws {
        let writer = JSONLineWriter(capacity: 4096)
        let events = (0..<50).map { _ in randomTCPEvent() }
        for event in events { writer.append(event) }
        let lines = String(decoding: writer.bytes, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, 50)
        for (line, event) in zip(lines, events) {
            XCTAssertEqual(try JSONDecoder().decode(TCPConnectionEvent.self, from: Data(line.utf8)), event)
        }
        writer.removeAll()
        XCTAssertTrue(writer.bytes.isEmpty)
        writer.append(events[0])
        XCTAssertEqual(String(decoding: writer.bytes, as: UTF8.self).split(separator: "\n").count, 1)
    }

    // MARK: - The table

    /// What the table printed before it wrote bytes: one `String` per cell.
    func referenceClock(_ nanoseconds: UInt64) -> String {
        var time = tm()
        var raw = time_t(nanoseconds / 1_000_000_000)
        localtime_r(&raw, &time)
        return String(format: "%02d:%02d:%02d.%03d", time.tm_hour, time.tm_min, time.tm_sec, Int(nanoseconds / 1_000_000 % 1000))
    }

    func referenceEndpoint(_ address: IPAddress, _ port: UInt16) -> String {
        address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    func referenceRow(_ event: TCPConnectionEvent, _ columns: [TextColumn]) -> String {
        columns.row([
            referenceClock(event.timeNanoseconds), event.kind.description, String(event.pid), String(event.uid), event.command,
            referenceEndpoint(event.sourceAddress, event.sourcePort),
            referenceEndpoint(event.destinationAddress, event.destinationPort),
            event.durationNanoseconds.map { String(format: "%.2f", Double($0) / 1e6) } ?? "-", String(event.sentBytes),
            event.previousState?.description ?? "-",
        ])
    }

    /// The common columns of every tool, then one cell of each other kind.
    static let tcpTable = EventTable<TCPConnectionEvent>.network(
        event: \.kind.description,
        columns: [TextColumn("MS", width: 9, rightAligned: true), TextColumn("SENT", width: 4, rightAligned: true), TextColumn("WAS", width: 11)],
        cells: { event, row in
            row.milliseconds(event.durationNanoseconds)
            row.number(event.sentBytes)
            if let state = event.previousState { row.text(state.description) } else { row.none() }
        })

    func testTableRowsMatchStringFormatting() {
        let table = Self.tcpTable
        var rows = TableRow(columns: table.columns)
        // Events in time order, several per second, as a tool sees them (the clock is cached per second).
        var events = (0..<3_000).map { _ in randomTCPEvent() }
        let start = events[0].timeNanoseconds
        for index in events.indices { events[index].timeNanoseconds = start + UInt64(index) * 123_456_789 }
        for event in events.shuffled() + events {
            rows.removeAll()
            table.row(event, &rows)
            rows.endRow()
            XCTAssertEqual(String(decoding: rows.bytes, as: UTF8.self), referenceRow(event, table.columns) + "\n")
        }
    }

    func testTableCellsPadEscapeAndRound() {
        var rows = TableRow(columns: [TextColumn("A", width: 5, rightAligned: true), TextColumn("B", width: 4), TextColumn("C", width: 1)])
        rows.number(-42)
        rows.text("x\u{1b}y")
        rows.milliseconds(1_234_567)
        rows.endRow()
        rows.milliseconds(nil)
        rows.text("longer than the column")
        rows.number(UInt64.max)
        rows.endRow()
        XCTAssertEqual(
            String(decoding: rows.bytes, as: UTF8.self),
            "  -42 x\\x1by 1.23\n    - longer than the column 18446744073709551615\n")
        // Exact halves round up (decimal), where "%.2f" of a double may not.
        var half = TableRow(columns: [])
        half.milliseconds(15_000)
        half.milliseconds(994_999)
        half.milliseconds(995_000)
        half.endRow()
        XCTAssertEqual(String(decoding: half.bytes, as: UTF8.self), "0.02 0.99 1.00\n")
        // The largest durations round without overflowing.
        var large = TableRow(columns: [])
        large.milliseconds(UInt64.max)
        large.endRow()
        XCTAssertEqual(String(decoding: large.bytes, as: UTF8.self), "18446744073709.55\n")
        // A copy of a row that grows the shared buffer leaves the original writing safely after it.
        var original = TableRow(columns: [TextColumn("A", width: 1)])
        original.text("a")
        var copy = original
        copy.text(String(repeating: "x", count: 200_000))
        original.text("b")
        original.endRow()
        XCTAssertEqual(original.bytes.count, 1 + 1 + 200_000 + 1 + 1 + 1)
    }
}
