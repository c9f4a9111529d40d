import BCCRuntime
import Foundation
import XCTest
@testable import UDPEvent

final class UDPConfigurationTests: XCTestCase {
    func testDefaultsAndEdgesAreValid() throws {
        XCTAssertNoThrow(try UDPMonitor.Configuration().validate())
        XCTAssertNoThrow(try UDPMonitor.Configuration(pid: 1, uid: 0, port: 65_535, family: .ipv6, interval: 0.01).validate())
        var edges = UDPMonitor.Configuration(port: 1, interval: 86_400)
        edges.idleReportsBeforeEviction = 1
        edges.maxFlows = 64
        edges.bufferPages = 1
        edges.deliveryCapacity = 1
        XCTAssertNoThrow(try edges.validate())
        edges.idleReportsBeforeEviction = nil
        edges.bufferPages = 1024
        XCTAssertNoThrow(try edges.validate())
        XCTAssertNoThrow(try UDPMonitor(configuration: edges), "valid options need no privileges until start")
    }

    func testDefaultValues() {
        let configuration = UDPMonitor.Configuration()
        XCTAssertNil(configuration.pid)
        XCTAssertNil(configuration.uid)
        XCTAssertNil(configuration.port)
        XCTAssertNil(configuration.family)
        XCTAssertNil(configuration.hook)
        XCTAssertNil(configuration.closeHook)
        XCTAssertNil(configuration.transport)
        XCTAssertNil(configuration.offsetSource)
        XCTAssertEqual(configuration.interval, 1)
        XCTAssertEqual(configuration.idleReportsBeforeEviction, 60)
        XCTAssertEqual(configuration.maxFlows, 65_536)
        XCTAssertEqual(configuration.bufferPages, 64)
        XCTAssertEqual(configuration.deliveryCapacity, 65_536)
    }

    func testInvalidOptionsAreNamed() {
        func with(_ change: (inout UDPMonitor.Configuration) -> Void) -> UDPMonitor.Configuration {
            var configuration = UDPMonitor.Configuration()
            change(&configuration)
            return configuration
        }
        let cases: [(UDPMonitor.Configuration, String)] = [
            (.init(pid: 0), "pid"), (.init(pid: -5), "pid"), (.init(pid: Int32.min), "pid"),
            (.init(port: 0), "port"),
            (.init(interval: 0), "interval"), (.init(interval: -1), "interval"), (.init(interval: .nan), "interval"),
            (.init(interval: 0.009), "interval"), (.init(interval: 86_400.5), "interval"),
            (.init(interval: .infinity), "interval"),
            (with { $0.idleReportsBeforeEviction = 0 }, "idleReportsBeforeEviction"),
            (with { $0.idleReportsBeforeEviction = -1 }, "idleReportsBeforeEviction"),
            (with { $0.maxFlows = 63 }, "maxFlows"), (with { $0.maxFlows = 0 }, "maxFlows"),
            (with { $0.bufferPages = 3 }, "bufferPages"), (with { $0.bufferPages = 0 }, "bufferPages"),
            (with { $0.bufferPages = -4 }, "bufferPages"), (with { $0.bufferPages = 96 }, "bufferPages"),
            (with { $0.deliveryCapacity = 0 }, "deliveryCapacity"), (with { $0.deliveryCapacity = -1 }, "deliveryCapacity"),
        ]
        for (configuration, name) in cases {
            XCTAssertThrowsError(try configuration.validate(), name) { error in
                guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(name): \(error)") }
                XCTAssertTrue(message.contains(name), "\(message) names \(name)")
            }
            XCTAssertThrowsError(try UDPMonitor(configuration: configuration), "the initializer validates \(name)") { error in
                guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(name): \(error)") }
                XCTAssertTrue(message.contains(name), "\(message) names \(name)")
            }
            XCTAssertThrowsError(try UDPMonitor(source: MockSampleSource(), configuration: configuration), name)
        }
    }

    func testTheMessageShowsTheBadValue() {
        XCTAssertThrowsError(try UDPMonitor.Configuration(pid: -5).validate()) { error in
            XCTAssertTrue("\(error)".contains("-5"), "\(error)")
        }
        var pages = UDPMonitor.Configuration()
        pages.bufferPages = 3
        XCTAssertThrowsError(try pages.validate()) { error in
            guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("3"), message)
        }
    }
}

final class UDPProgramFlagsTests: XCTestCase {
    let source = EmbeddedBPF.udpEvents

    func flags(
        _ configuration: UDPMonitor.Configuration = .init(), hook: UDPMonitor.Hook = .tracepoint,
        closeHook: UDPMonitor.CloseHook = .cgroup, transport: UDPMonitor.Transport = .ringBuffer
    ) -> [String] {
        UDPProgram.flags(configuration, hook: hook, closeHook: closeHook, transport: transport)
    }

    func testFiltersBecomeCompilerFlags() {
        let configuration = UDPMonitor.Configuration(pid: 42, uid: 1000, port: 8080, family: .ipv6)
        let all = flags(configuration)
        for flag in ["-DFILTER_PID=42", "-DFILTER_UID=1000", "-DFILTER_PORT=8080", "-DFILTER_FAMILY=10"] {
            XCTAssertTrue(all.contains(flag), "\(flag) in \(all)")
        }
        XCTAssertTrue(flags(.init(uid: 0, family: .ipv4)).contains("-DFILTER_UID=0"), "uid 0 is a filter too")
        XCTAssertTrue(flags(.init(family: .ipv4)).contains("-DFILTER_FAMILY=2"))
        XCTAssertFalse(flags().contains { $0.hasPrefix("-DFILTER_") }, "no filter, no flag")
    }

    func testCountingHooks() {
        let expected: [UDPMonitor.Hook: String] = [.tracepoint: "-DCOUNT_TRACEPOINT", .kprobe: "-DCOUNT_KPROBE", .fentry: "-DCOUNT_FENTRY"]
        for hook in UDPMonitor.Hook.allCases {
            let counting = flags(hook: hook).filter { $0.hasPrefix("-DCOUNT_") }
            XCTAssertEqual(counting, [expected[hook]!], "\(hook)")
        }
    }

    func testCloseHooks() {
        XCTAssertEqual(flags(closeHook: .cgroup).filter { $0.hasPrefix("-DCLOSE_") }, ["-DCLOSE_CGROUP"])
        XCTAssertEqual(flags(closeHook: .kprobe).filter { $0.hasPrefix("-DCLOSE_") }, ["-DCLOSE_KPROBE"])
        XCTAssertEqual(flags(closeHook: .none).filter { $0.hasPrefix("-DCLOSE_") }, [])
    }

    func testRingBufferOrPerfBuffer() {
        var configuration = UDPMonitor.Configuration()
        configuration.bufferPages = 128
        let ring = flags(configuration, transport: .ringBuffer)
        XCTAssertTrue(ring.contains("-DUSE_RINGBUF"))
        XCTAssertTrue(ring.contains("-DRINGBUF_PAGES=128"))
        let perf = flags(configuration, transport: .perfBuffer)
        XCTAssertFalse(perf.contains("-DUSE_RINGBUF"))
        XCTAssertFalse(perf.contains { $0.hasPrefix("-DRINGBUF_PAGES") })
    }

    func testMapSizeAndReceiveFlagsArgument() {
        var configuration = UDPMonitor.Configuration()
        configuration.maxFlows = 4096
        let all = flags(configuration)
        XCTAssertTrue(all.contains("-DMAX_FLOWS=4096"), "\(all)")
        let expected = KernelVersion.running.isAtLeast(5, 19) ? 4 : 5
        XCTAssertEqual(UDPProgram.receiveFlagsArgument(), expected)
        XCTAssertEqual(all.filter { $0.hasPrefix("-DRECVMSG_FLAGS_ARG=") }, ["-DRECVMSG_FLAGS_ARG=\(expected)"])
    }

    func testEveryFlagIsAMacroTheProgramKnows() {
        let configuration = UDPMonitor.Configuration(pid: 1, uid: 2, port: 3, family: .ipv4)
        var names = Set<String>()
        for hook in UDPMonitor.Hook.allCases {
            for closeHook in UDPMonitor.CloseHook.allCases {
                for transport in UDPMonitor.Transport.allCases {
                    for flag in flags(configuration, hook: hook, closeHook: closeHook, transport: transport) {
                        XCTAssertTrue(flag.hasPrefix("-D"), flag)
                        names.insert(String(flag.dropFirst(2).prefix { $0 != "=" }))
                    }
                }
            }
        }
        XCTAssertTrue(names.isSuperset(of: ["COUNT_TRACEPOINT", "CLOSE_CGROUP", "USE_RINGBUF", "FILTER_PID"]))
        for name in names {
            XCTAssertTrue(source.contains(name), "\(name) is used by udp_events.c")
        }
    }

    func testForcedHooksNeedNoProbing() throws {
        var notes: [String] = []
        for hook in UDPMonitor.Hook.allCases {
            XCTAssertEqual(try UDPProgram.chooseHook(.init(hook: hook), features: .shared, notes: &notes), hook)
        }
        for closeHook in UDPMonitor.CloseHook.allCases {
            XCTAssertEqual(UDPProgram.chooseCloseHook(.init(closeHook: closeHook), features: .shared, notes: &notes), closeHook)
        }
        XCTAssertEqual(notes, [])
    }
}

/// The struct offsets the program reads, against this machine's kernel, and the C structs the
/// decoder reads, against the decoder.
final class UDPLayoutTests: XCTestCase {
    let source = EmbeddedBPF.udpEvents

    func testEveryOffsetTheProgramReadsResolvesFromThisKernelsBTF() throws {
        guard FileManager.default.fileExists(atPath: KernelBTF.vmlinuxPath) else {
            print("skipping: \(KernelBTF.vmlinuxPath) is missing (kernel built without CONFIG_DEBUG_INFO_BTF)")
            throw XCTSkip("\(KernelBTF.vmlinuxPath) is missing")
        }
        let btf = try KernelBTF.vmlinux()
        var offsets: [String: Int] = [:]
        for entry in UDPProgram.offsets {
            let layout = try btf.member(entry.path)
            XCTAssertEqual(layout.size, entry.size, "\(entry.path): the size UDPProgram.attach insists on")
            XCTAssertGreaterThanOrEqual(layout.offset, 0)
            offsets[entry.macro] = layout.offset
        }
        XCTAssertEqual(offsets.count, UDPProgram.offsets.count, "macros are unique")
        // IPv4 address fields and ports sit in struct sock_common, within its first cache lines.
        for macro in ["OFF_SKC_FAMILY", "OFF_SKC_NUM", "OFF_SKC_DPORT", "OFF_SKC_RCV_SADDR", "OFF_SKC_DADDR"] {
            XCTAssertLessThan(offsets[macro] ?? .max, 64, macro)
        }
        XCTAssertNotEqual(offsets["OFF_SKC_RCV_SADDR"], offsets["OFF_SKC_DADDR"])
        XCTAssertNotEqual(offsets["OFF_SKC_V6_RCV_SADDR"], offsets["OFF_SKC_V6_DADDR"])
    }

    func testEveryOffsetMacroIsUsedAndEveryUsedOneIsPassed() throws {
        let passed = Set(UDPProgram.offsets.map(\.macro))
        var used = Set<String>()
        let pattern = try NSRegularExpression(pattern: "\\bOFF_[A-Z0-9_]+\\b")
        let range = NSRange(source.startIndex..., in: source)
        for match in pattern.matches(in: source, range: range) {
            used.insert(String(source[Range(match.range, in: source)!]))
        }
        XCTAssertEqual(used, passed, "OFF_* macros in udp_events.c vs UDPProgram.offsets")
        for macro in passed {
            XCTAssertTrue(source.contains("#define \(macro) "), "\(macro) also has a header fallback")
        }
    }

    /// Parses `struct udp_flow_t` from the embedded source: each member's natural offset, the
    /// offset its comment states, and the decoder's offset must agree.
    func testTheDecoderOffsetsMatchTheCStruct() throws {
        let members = try Self.members(of: "udp_flow_t", in: source)
        typealias O = UDPFlowDecoder.Offset
        let decoder: [String: Int] = [
            "start_ns": O.start, "close_ns": O.close, "tx_bytes": O.txBytes, "rx_bytes": O.rxBytes,
            "tx_packets": O.txPackets, "rx_packets": O.rxPackets, "cgroup_id": O.cgroup, "uid": O.uid, "netns": O.netns,
            "family": O.family, "sport": O.sport, "dport": O.dport, "filtered": O.filtered, "saddr": O.saddr,
            "daddr": O.daddr, "comm": O.comm,
        ]
        var offset = 0
        var alignment = 1
        for member in members {
            offset = (offset + member.elementSize - 1) / member.elementSize * member.elementSize
            alignment = max(alignment, member.elementSize)
            if let stated = member.commentOffset {
                XCTAssertEqual(stated, offset, "the comment of \(member.name)")
            }
            if let expected = decoder[member.name] {
                XCTAssertEqual(expected, offset, "UDPFlowDecoder.Offset of \(member.name)")
            } else {
                XCTAssertEqual(member.name, "pad", "a member the decoder does not read")
            }
            offset += member.elementSize * member.count
        }
        let size = (offset + alignment - 1) / alignment * alignment
        XCTAssertEqual(size, UDPFlowDecoder.flowSize)
        XCTAssertEqual(Set(members.map(\.name)).subtracting(["pad"]), Set(decoder.keys))

        let key = try Self.members(of: "udp_key_t", in: source)
        XCTAssertEqual(key.map(\.name), ["sk", "pid", "pad"])
        XCTAssertEqual(key.reduce(0) { $0 + $1.elementSize * $1.count }, UDPFlowDecoder.keySize)

        let close = try Self.members(of: "udp_close_t", in: source, structMembers: true)
        XCTAssertEqual(close.map(\.name), ["key", "flow"], "a close sample is the key, then the flow")
    }

    struct Member {
        var name: String
        var elementSize: Int
        var count: Int
        var commentOffset: Int?
    }

    static func members(of name: String, in source: String, structMembers: Bool = false) throws -> [Member] {
        guard let start = source.range(of: "struct \(name) {") else { throw XCTSkip("no struct \(name) in the source") }
        guard let end = source[start.upperBound...].range(of: "};") else { throw XCTSkip("unterminated struct \(name)") }
        let body = source[start.upperBound..<end.lowerBound]
        let sizes = ["u64": 8, "u32": 4, "u16": 2, "u8": 1, "char": 1]
        var members: [Member] = []
        for line in body.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty || text.hasPrefix("//") { continue }
            let parts = text.split(separator: "//", maxSplits: 1)
            let declaration = parts[0].trimmingCharacters(in: .whitespaces)
            let comment = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
            var words = declaration.dropLast().split(separator: " ").map(String.init)  // drop ";"
            if structMembers {
                if words.first == "struct" { words.removeFirst() }
                members.append(Member(name: words.last ?? "", elementSize: 0, count: 0, commentOffset: nil))
                continue
            }
            guard words.count == 2, let size = sizes[words[0]] else {
                XCTFail("unexpected member of \(name): \(text)")
                continue
            }
            var memberName = words[1]
            var count = 1
            if let bracket = memberName.firstIndex(of: "[") {
                let length = memberName[memberName.index(after: bracket)...].dropLast()
                count = length == "TASK_COMM_LEN" ? 16 : Int(length) ?? -1
                memberName = String(memberName[..<bracket])
            }
            let number = comment.prefix { $0.isNumber }
            members.append(Member(name: memberName, elementSize: size, count: count, commentOffset: Int(number)))
        }
        return members
    }
}
