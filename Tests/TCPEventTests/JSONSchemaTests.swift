import Foundation
import NetEventsTesting
import XCTest
@testable import TCPEvent

/// The JSON of `tcp-events --json`: one line per event from ``EventJSONEncoder``, whose keys are
/// the event's `Codable` keys, the same as `JSONEncoder` writes.
final class JSONSchemaTests: XCTestCase {
    /// Every key of a TCP close line, in the order the line writes them.
    static let keys = [
        "event", "time_ns", "pid", "uid", "comm", "exe", "family", "saddr", "sport", "daddr", "dport", "rx_bytes", "tx_bytes",
        "segs_in", "segs_out", "data_segs_in", "data_segs_out", "srtt_us", "rttvar_us", "min_rtt_us", "retransmits",
        "duration_ns", "cgroup_id", "netns", "socket_id", "owner", "prev_state",
    ]

    /// The keys of each kind's lines, in order: a connect has `latency_ns` (before the health
    /// keys) instead of `duration_ns`, a failure `error` (when the kernel gave one), an accept
    /// neither duration nor `prev_state`.
    static func keys(_ kind: TCPConnectionEvent.Kind, error: Bool = true) -> [String] {
        var keys = Self.keys
        switch kind {
        case .close: break
        case .connect:
            keys.removeAll { $0 == "duration_ns" }
            keys.insert("latency_ns", at: keys.firstIndex(of: "srtt_us")!)
        case .accept, .interval: keys.removeAll { $0 == "duration_ns" || $0 == "prev_state" }
        case .fail: if error { keys.insert("error", at: keys.firstIndex(of: "srtt_us")!) }
        }
        return keys
    }

    /// An event of each kind: decoded from its sample, or for an interval record (which no
    /// program writes) made as the poller makes them.
    func event(of kind: TCPConnectionEvent.Kind) throws -> TCPConnectionEvent {
        var event = try event(TCPSample(kind: kind) ?? TCPSample())
        if kind == .interval {
            event.kind = .interval
            event.previousState = nil
            event.durationNanoseconds = nil
            event.ownerSource = .openFile
        }
        return event
    }

    func event(_ sample: TCPSample) throws -> TCPConnectionEvent {
        try sample.bytes.withUnsafeBytes { try TCPEventDecoder.decode($0, clock: WallClock(offsetNanoseconds: 0)) }
    }

    func object(_ line: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
    }

    func testJSONLineHasTheDesignKeysAndParses() throws {
        var sample = TCPSample()
        sample.comm = "we\"ird\\name"
        let event = try event(sample)
        let line = try EventJSONEncoder().encode(event)
        XCTAssertFalse(line.contains("\n"))
        XCTAssertTrue(line.hasPrefix("{\"event\":\"close\",\"time_ns\":"), line)
        let object = try object(line)
        for key in ["time_ns", "pid", "uid", "comm", "family", "saddr", "sport", "daddr", "dport", "rx_bytes", "tx_bytes", "segs_in", "segs_out", "duration_ns"] {
            XCTAssertNotNil(object[key], "key \(key)")
        }
        XCTAssertEqual(Set(object.keys), Set(Self.keys))
        XCTAssertEqual(object["event"] as? String, "close")
        XCTAssertEqual(object["comm"] as? String, "we\"ird\\name")
        XCTAssertEqual(object["family"] as? String, "ipv4")
        XCTAssertEqual(object["saddr"] as? String, "127.0.0.1")
        XCTAssertEqual(object["daddr"] as? String, "10.1.2.3")
        XCTAssertEqual((object["sport"] as? NSNumber)?.intValue, 40_000)
        XCTAssertEqual((object["dport"] as? NSNumber)?.intValue, 443)
        XCTAssertEqual((object["pid"] as? NSNumber)?.intValue, 4242)
        XCTAssertEqual((object["uid"] as? NSNumber)?.intValue, 65_534)
        XCTAssertEqual((object["rx_bytes"] as? NSNumber)?.uint64Value, 778)
        XCTAssertEqual((object["tx_bytes"] as? NSNumber)?.uint64Value, 12_347)
        XCTAssertEqual((object["segs_in"] as? NSNumber)?.intValue, 5)
        XCTAssertEqual((object["segs_out"] as? NSNumber)?.intValue, 6)
        XCTAssertEqual((object["data_segs_in"] as? NSNumber)?.intValue, 1)
        XCTAssertEqual((object["data_segs_out"] as? NSNumber)?.intValue, 2)
        XCTAssertEqual((object["time_ns"] as? NSNumber)?.uint64Value, 5_000_000_000)
        XCTAssertEqual((object["duration_ns"] as? NSNumber)?.uint64Value, 1_000_000_000)
        XCTAssertEqual((object["cgroup_id"] as? NSNumber)?.uint64Value, 77)
        XCTAssertEqual((object["netns"] as? NSNumber)?.uint64Value, 4_026_531_840)
        XCTAssertEqual(object["owner"] as? String, "connect")
        XCTAssertEqual(object["prev_state"] as? String, "ESTABLISHED")
        XCTAssertTrue(line.contains("\"comm\":\"we\\\"ird\\\\name\""), line)
    }

    /// The keys are written in the order of DESIGN.md, then the extra ones, for every kind.
    func testKeysComeInTheDesignOrder() throws {
        for kind in TCPConnectionEvent.Kind.allCases {
            let line = try EventJSONEncoder().encode(try event(of: kind))
            XCTAssertEqual(Set(try object(line).keys), Set(Self.keys(kind)), line)
            XCTAssertTrue(line.hasPrefix("{\"event\":\"\(kind)\","), line)
            var positions: [Int] = []
            for key in Self.keys(kind) {
                let range = try XCTUnwrap(line.range(of: "\"\(key)\":"), "\(key) in \(line)")
                positions.append(line.distance(from: line.startIndex, to: range.lowerBound))
            }
            XCTAssertEqual(positions, positions.sorted(), line)
        }
    }

    /// A failure names its errno; one without (given up by its process) leaves the key out; no
    /// RTT minimum yet is null.
    func testFailureLines() throws {
        var sample = TCPSample(kind: .fail)!
        var object = try object(try EventJSONEncoder().encode(try event(sample)))
        XCTAssertEqual(object["error"] as? String, "ECONNREFUSED")
        XCTAssertTrue(object["min_rtt_us"] is NSNull)
        sample.error = 0
        let line = try EventJSONEncoder().encode(try event(sample))
        object = try self.object(line)
        XCTAssertNil(object["error"], line)
        XCTAssertEqual(Set(object.keys), Set(Self.keys(.fail, error: false)))
    }

    /// Where the owner runs follows `cgroup_id`, the socket's namespace name `netns`: the keys
    /// every kind shares, present only when known.
    func testAttributionKeysFollowTheirIDs() throws {
        var event = try event(TCPSample())
        event.cgroup = Cgroup(id: 77, path: "/system.slice/docker-\(String(repeating: "ab", count: 32)).scope")
        event.networkNamespaceName = "blue"
        let line = try EventJSONEncoder().encode(event)
        XCTAssertTrue(
            line.contains(
                "\"cgroup_id\":77,\"cgroup\":\"/system.slice/docker-\(String(repeating: "ab", count: 32)).scope\",\"container_id\":\"\(String(repeating: "ab", count: 32))\",\"container_runtime\":\"docker\",\"netns\":4026531840,\"netns_name\":\"blue\","
            ), line)
        XCTAssertFalse(line.contains("pod_uid") || line.contains("service"), "absent, not guessed: \(line)")
        XCTAssertEqual(try JSONDecoder().decode(TCPConnectionEvent.self, from: Data(line.utf8)), event)
    }

    /// An event read at offsets of another kernel's headers (accepted by the user) says so in
    /// itself: `offsets_estimated: true`, a key absent from every other event.
    func testEstimatedOffsetsAreMarkedInTheEvent() throws {
        var event = try event(TCPSample())
        XCTAssertFalse(try EventJSONEncoder().encode(event).contains("offsets_estimated"))
        event.offsetsEstimated = true
        let line = try EventJSONEncoder().encode(event)
        XCTAssertEqual(try object(line)["offsets_estimated"] as? Bool, true, line)
        XCTAssertEqual(try JSONDecoder().decode(TCPConnectionEvent.self, from: Data(line.utf8)), event)
        XCTAssertEqual(String(decoding: try JSONEncoder().encode(event), as: UTF8.self).contains("\"offsets_estimated\":true"), true)
    }

    func testUnknownDurationIsNull() throws {
        var sample = TCPSample()
        sample.start = 0
        let line = try EventJSONEncoder().encode(try event(sample))
        let object = try object(line)
        XCTAssertTrue(object["duration_ns"] is NSNull)
        XCTAssertTrue(line.contains("\"duration_ns\":null"), line)
    }

    /// `JSONEncoder` writes the same keys (the `Codable` conformance is their one definition), and
    /// a line decodes back to the event it came from.
    func testJSONEncoderAgreesAndLinesRoundTrip() throws {
        var ipv6 = TCPSample()
        ipv6.family = 10
        ipv6.saddr = Array(repeating: 0, count: 15) + [1]
        ipv6.daddr = Array(repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 7]
        ipv6.comm = "a\u{1}b\tc"
        ipv6.ownerSource = 0  // unknown
        ipv6.oldState = 12
        var noDuration = TCPSample()
        noDuration.start = 0
        noDuration.ownerSource = 2
        noDuration.oldState = 10
        var large = TCPSample()
        large.timestamp = UInt64.max
        large.rxBytes = UInt64.max
        large.cgroup = 0xffff_ffff_ffff_fff0
        large.pid = UInt32.max  // -1 as a pid
        large.uid = UInt32.max
        var givenUp = TCPSample(kind: .fail)!
        givenUp.error = 0
        var noExecutable = TCPSample()
        noExecutable.exe = ""
        var events = try [TCPSample(), ipv6, noDuration, large, givenUp, noExecutable].map(event) + TCPConnectionEvent.Kind.allCases.map(event(of:))
        var attributed = try event(TCPSample())
        attributed.cgroup = Cgroup(id: 77, path: "/kubepods.slice/kubepods-pod1b2c3d4e_0000_4000_8000_00000000abcd.slice/cri-containerd-\(String(repeating: "5e", count: 32)).scope")
        attributed.networkNamespaceName = "blue"
        events.append(attributed)
        for event in events {
            let line = try EventJSONEncoder().encode(event)
            let foundation = try JSONEncoder().encode(event)
            let foundationObject = try XCTUnwrap(JSONSerialization.jsonObject(with: foundation) as? [String: Any])
            XCTAssertEqual(Set(foundationObject.keys), Set(try object(line).keys), line)
            XCTAssertEqual(
                Set(foundationObject.keys),
                Set(Self.keys(event.kind, error: event.error != nil)).subtracting(event.executable == nil ? ["exe"] : [])
                    .union(event.cgroup == nil ? [] : ["cgroup", "container_id", "container_runtime", "pod_uid"])
                    .union(event.networkNamespaceName == nil ? [] : ["netns_name"]))
            XCTAssertEqual(try JSONDecoder().decode(TCPConnectionEvent.self, from: Data(line.utf8)), event, line)
            XCTAssertEqual(try JSONDecoder().decode(TCPConnectionEvent.self, from: foundation), event)
        }
    }

    func testEveryOwnerAndStateNameDecodes() throws {
        for owner in TCPConnectionEvent.OwnerSource.allCases where owner != .openFile {
            for state in TCPState.allCases {
                var sample = TCPSample()
                sample.ownerSource = owner.rawValue
                sample.oldState = state.rawValue
                let event = try event(sample)
                let line = try EventJSONEncoder().encode(event)
                XCTAssertEqual(try object(line)["owner"] as? String, owner.description)
                XCTAssertEqual(try object(line)["prev_state"] as? String, state.description)
                XCTAssertEqual(try JSONDecoder().decode(TCPConnectionEvent.self, from: Data(line.utf8)), event)
            }
        }
    }

    /// `fd` owners are found in user space: a kernel sample that says so is malformed.
    func testAnOpenFileOwnerIsNoKernelSample() throws {
        var sample = TCPSample()
        sample.ownerSource = TCPConnectionEvent.OwnerSource.openFile.rawValue
        XCTAssertThrowsError(try event(sample))
        let line = try EventJSONEncoder().encode(try event(of: .interval))
        XCTAssertEqual(try object(line)["owner"] as? String, "fd")
    }

    func testUnknownNamesAndMissingKeysDoNotDecode() throws {
        let line = try EventJSONEncoder().encode(try event(TCPSample()))
        for (from, to) in [("\"owner\":\"connect\"", "\"owner\":\"telepathy\""), ("\"prev_state\":\"ESTABLISHED\"", "\"prev_state\":\"NAP\""),
                           ("\"saddr\":\"127.0.0.1\"", "\"saddr\":\"localhost\""), ("\"pid\":4242,", ""),
                           ("\"event\":\"close\"", "\"event\":\"open\""), ("\"srtt_us\":120,", "")] {
            let broken = line.replacingOccurrences(of: from, with: to)
            XCTAssertNotEqual(broken, line, from)
            XCTAssertThrowsError(try JSONDecoder().decode(TCPConnectionEvent.self, from: Data(broken.utf8)), broken)
        }
    }

    func testControlCharactersAreEscaped() throws {
        XCTAssertEqual(try EventJSONEncoder().encode("a\u{1}b\nc"), "\"a\\u0001b\\nc\"")
        var sample = TCPSample()
        sample.comm = "a\u{1}b\nc"
        let line = try EventJSONEncoder().encode(try event(sample))
        XCTAssertTrue(line.contains("\"comm\":\"a\\u0001b\\nc\""), line)
        XCTAssertEqual(try object(line)["comm"] as? String, "a\u{1}b\nc")
    }
}
