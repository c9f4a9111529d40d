import CNetEventsABI
import Foundation
import NetEventsTesting
import XCTest
@testable import NetEventsCore
@testable import UDPEvent

final class UDPConfigurationTests: XCTestCase {
    func testDefaultsAndEdgesAreValid() throws {
        XCTAssertNoThrow(try UDPMonitor.Configuration().validate())
        XCTAssertNoThrow(try UDPMonitor.Configuration(filter: .init(pids: [1], uid: 0, ports: [65_535], family: .ipv6), options: .init(interval: 0.01)).validate())
        var edges = UDPMonitor.Configuration(filter: .init(ports: [1]), options: .init(interval: 86_400))
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
        XCTAssertEqual(configuration.drainInterval, .milliseconds(2))
        XCTAssertEqual(configuration.filter, EventFilter())
        XCTAssertEqual(configuration.options, UDPMonitor.Options())
    }

    /// The kind's options and the filter's fields read and write as the configuration's own.
    func testOptionsAndFilterFieldsAreTheConfigurationsOwn() {
        var configuration = UDPMonitor.Configuration()
        configuration.interval = 0.5
        configuration.hook = .kprobe
        configuration.closeHook = UDPMonitor.CloseHook.none
        configuration.maxFlows = 128
        configuration.idleReportsBeforeEviction = nil
        configuration.port = 5
        configuration.uid = 0
        XCTAssertEqual(configuration.options.interval, 0.5)
        XCTAssertEqual(configuration.options.hook, .kprobe)
        XCTAssertEqual(configuration.options.closeHook, UDPMonitor.CloseHook.none)
        XCTAssertEqual(configuration.options.maxFlows, 128)
        XCTAssertNil(configuration.options.idleReportsBeforeEviction)
        XCTAssertEqual(configuration.filter, EventFilter(uid: 0, ports: [5]))
        let options = UDPMonitor.Options(interval: 2, hook: .fentry, closeHook: .kprobe)
        XCTAssertEqual(options.interval, 2)
        XCTAssertEqual(options.hook, .fentry)
        XCTAssertEqual(options.closeHook, .kprobe)
        XCTAssertEqual(UDPMonitor.Options(), UDPMonitor.Options(interval: 1, hook: nil, closeHook: nil))
    }

    func testInvalidOptionsAreNamed() {
        func with(_ change: (inout UDPMonitor.Configuration) -> Void) -> UDPMonitor.Configuration {
            var configuration = UDPMonitor.Configuration()
            change(&configuration)
            return configuration
        }
        let cases: [(UDPMonitor.Configuration, String)] = [
            (.init(filter: .init(pids: [0])), "pid"), (.init(filter: .init(pids: [-5])), "pid"), (.init(filter: .init(pids: [Int32.min])), "pid"),
            (.init(filter: .init(ports: [0])), "port"),
            (.init(options: .init(interval: 0)), "interval"), (.init(options: .init(interval: -1)), "interval"), (.init(options: .init(interval: .nan)), "interval"),
            (.init(options: .init(interval: 0.009)), "interval"), (.init(options: .init(interval: 86_400.5)), "interval"),
            (.init(options: .init(interval: .infinity)), "interval"), (with { $0.interval = 0 }, "interval"),
            (with { $0.idleReportsBeforeEviction = 0 }, "idleReportsBeforeEviction"),
            (with { $0.idleReportsBeforeEviction = -1 }, "idleReportsBeforeEviction"),
            (with { $0.maxFlows = 63 }, "maxFlows"), (with { $0.maxFlows = 0 }, "maxFlows"),
            (with { $0.bufferPages = 3 }, "bufferPages"), (with { $0.bufferPages = 0 }, "bufferPages"),
            (with { $0.bufferPages = -4 }, "bufferPages"), (with { $0.bufferPages = 96 }, "bufferPages"),
            (with { $0.deliveryCapacity = 0 }, "deliveryCapacity"), (with { $0.deliveryCapacity = -1 }, "deliveryCapacity"),
            (with { $0.drainInterval = .milliseconds(-1) }, "drainInterval"), (with { $0.drainInterval = .seconds(2) }, "drainInterval"),
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
        XCTAssertThrowsError(try UDPMonitor.Configuration(filter: .init(pids: [-5])).validate()) { error in
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
    /// A plan for forced hooks; `.headers` offsets, as the plan does not depend on them.
    func plan(
        _ configuration: UDPMonitor.Configuration = .init(), hook: UDPMonitor.Hook = .tracepoint,
        closeHook: UDPMonitor.CloseHook = .cgroup, offsetSource: OffsetSource = .headers, transport: SampleTransport = .ringBuffer
    ) throws -> (ProgramPlan, UDPKind.Hooks) {
        var configuration = configuration
        configuration.hook = hook
        configuration.closeHook = closeHook
        var plan = ProgramPlan(offsetSource: offsetSource, transport: transport)
        let hooks = try UDPKind.plan(configuration, features: .shared, into: &plan)
        return (plan, hooks)
    }

    func flags(
        _ configuration: UDPMonitor.Configuration = .init(), hook: UDPMonitor.Hook = .tracepoint,
        closeHook: UDPMonitor.CloseHook = .cgroup
    ) throws -> [String] {
        try plan(configuration, hook: hook, closeHook: closeHook).0.flags
    }

    func testTheKindAddsNoFilterFlagOfItsOwn() throws {
        // The filters are the core's, the same for every kind.
        let filter = EventFilter(pids: [42], uid: 1000, ports: [8080], family: .ipv6)
        XCTAssertFalse(try flags(.init(filter: filter)).contains { $0.hasPrefix("-DFILTER") })
    }

    func testCountingHooks() throws {
        let expected: [UDPMonitor.Hook: String] = [.tracepoint: "-DCOUNT_TRACEPOINT", .kprobe: "-DCOUNT_KPROBE", .fentry: "-DCOUNT_FENTRY"]
        for hook in UDPMonitor.Hook.allCases {
            let (plan, hooks) = try plan(hook: hook)
            XCTAssertEqual(plan.flags.filter { $0.hasPrefix("-DCOUNT_") }, [expected[hook]!], "\(hook)")
            XCTAssertEqual(hooks.hook, hook)
        }
    }

    func testCloseHooks() throws {
        XCTAssertEqual(try flags(closeHook: .cgroup).filter { $0.hasPrefix("-DCLOSE_") }, ["-DCLOSE_CGROUP"])
        XCTAssertEqual(try flags(closeHook: .kprobe).filter { $0.hasPrefix("-DCLOSE_") }, ["-DCLOSE_KPROBE"])
        XCTAssertEqual(try flags(closeHook: .none).filter { $0.hasPrefix("-DCLOSE_") }, [])
        for closeHook in UDPMonitor.CloseHook.allCases {
            XCTAssertEqual(try plan(closeHook: closeHook).1.closeHook, closeHook)
        }
    }

    /// The plan is the same for either transport and offset source: those flags are the core's.
    func testTransportAndOffsetsAreTheCoresNotTheKinds() throws {
        var configuration = UDPMonitor.Configuration()
        configuration.bufferPages = 128
        let (ring, hooks) = try plan(configuration, transport: .ringBuffer)
        let (perf, _) = try plan(configuration, transport: .perfBuffer)
        XCTAssertEqual(ring.flags, perf.flags)
        XCTAssertEqual(ring.transport, .ringBuffer)
        XCTAssertEqual(perf.transport, .perfBuffer)
        for flags in [ring.flags, perf.flags] {
            XCTAssertFalse(flags.contains { $0.hasPrefix("-DUSE_RINGBUF") || $0.hasPrefix("-DRINGBUF_PAGES") || $0.hasPrefix("-DOFF") }, "\(flags)")
        }
        let cookies = KernelFeatures.shared.socketCookies.isYes ? SocketCookies.offsets : []
        // The raw tracepoints tell UDP sockets apart at offsets from BTF; from headers, the record does.
        let kind = hooks.hook == .tracepoint && ring.offsetSource == .btf ? MemberOffset.socketKind : []
        XCTAssertEqual(ring.offsets, MemberOffset.socketEndpoints + MemberOffset.taskNames + kind + cookies)
        XCTAssertEqual(ring.text, EmbeddedBPF.udpEvents)
        XCTAssertEqual(ring.headers, EmbeddedBPF.headers)
        XCTAssertEqual(ring.offsetSource, .headers)
    }

    func testMapSizeAndReceiveFlagsArgument() throws {
        var configuration = UDPMonitor.Configuration()
        configuration.maxFlows = 4096
        let all = try flags(configuration)
        XCTAssertTrue(all.contains("-DMAX_FLOWS=4096"), "\(all)")
        // The tracepoints carry no flags: the argument is fixed.
        XCTAssertEqual(try plan(hook: .tracepoint).1.receiveFlagsArgument, 4)
        XCTAssertEqual(try flags(hook: .tracepoint).filter { $0.hasPrefix("-DRECVMSG_FLAGS_ARG=") }, ["-DRECVMSG_FLAGS_ARG=4"])
        // kprobes and fexit read it from udp_recvmsg's parameters: 4th since 5.19, 5th before.
        let expected: Int
        var notes: [String] = []
        if KernelFeatures.shared.btf.isYes {
            expected = KernelVersion.running.isAtLeast(5, 19) ? 4 : 5
            XCTAssertEqual(UDPKind.receiveFlagsArgument(notes: &notes), expected)
            XCTAssertEqual(notes, [])
        } else {
            expected = 4
            XCTAssertEqual(UDPKind.receiveFlagsArgument(notes: &notes), expected)
            XCTAssertTrue(notes.contains { $0.contains("flags position unknown") }, "\(notes)")
        }
        for hook in [UDPMonitor.Hook.kprobe, .fentry] {
            let (plan, hooks) = try plan(configuration, hook: hook)
            XCTAssertEqual(hooks.receiveFlagsArgument, expected)
            XCTAssertEqual(plan.flags.filter { $0.hasPrefix("-DRECVMSG_FLAGS_ARG=") }, ["-DRECVMSG_FLAGS_ARG=\(expected)"])
        }
    }

    func testEveryFlagIsAMacroTheProgramKnows() throws {
        let filter = EventFilter(pids: [1], uid: 2, ports: [3], family: .ipv4)
        var names = Set<String>()
        for hook in UDPMonitor.Hook.allCases {
            for closeHook in UDPMonitor.CloseHook.allCases {
                for flag in try flags(.init(filter: filter), hook: hook, closeHook: closeHook) + filter.compilerFlags {
                    XCTAssertTrue(flag.hasPrefix("-D"), flag)
                    names.insert(String(flag.dropFirst(2).prefix { $0 != "=" }))
                }
            }
        }
        names.formUnion(["USE_RINGBUF", "RINGBUF_PAGES", "OFFSETS_FROM_HEADERS"])  // the core's
        XCTAssertTrue(names.isSuperset(of: ["COUNT_TRACEPOINT", "CLOSE_CGROUP", "USE_RINGBUF", "FILTERS", "MAX_FLOWS", "RECVMSG_FLAGS_ARG"]))
        let program = try plan().0.expandedText()
        for name in names {
            XCTAssertTrue(program.contains(name), "\(name) is used by udp_events.c or the headers it includes")
        }
    }

    func testForcedHooksNeedNoProbing() throws {
        var notes: [String] = []
        for hook in UDPMonitor.Hook.allCases {
            XCTAssertEqual(try UDPKind.chooseHook(hook, features: .shared, notes: &notes), hook)
        }
        for closeHook in UDPMonitor.CloseHook.allCases {
            XCTAssertEqual(UDPKind.chooseCloseHook(closeHook, features: .shared, notes: &notes), closeHook)
        }
        XCTAssertEqual(notes, [])
    }

    /// The program's `#include "..."` lines all name embedded headers, and expand once each.
    func testTheProgramExpandsItsIncludes() throws {
        let (plan, _) = try plan()
        XCTAssertTrue(plan.text.contains("#include \"udp_events_abi.h\""))
        XCTAssertTrue(plan.text.contains("#include \"netevents_bpf.h\""))
        let program = plan.expandedText()
        XCTAssertFalse(program.contains("#include \""), "every quoted include is an embedded header")
        XCTAssertEqual(program.components(separatedBy: "struct ne_udp_flow {").count, 2, "the contract is expanded once")
        XCTAssertEqual(program.components(separatedBy: "#define NETEVENTS_BPF_H").count, 2)
        XCTAssertEqual(program.components(separatedBy: "#define NETEVENTS_COMMON_H").count, 2)
    }
}

/// The struct offsets the program reads, against this machine's kernel, and the contract structs
/// the decoder reads.
final class UDPLayoutTests: XCTestCase {
    /// `bpf/udp_events.c` with its headers expanded, as BCC compiles it.
    var program: String {
        get throws {
            var plan = ProgramPlan(offsetSource: .headers, transport: .ringBuffer)
            var configuration = UDPMonitor.Configuration()
            configuration.hook = .tracepoint
            configuration.closeHook = UDPMonitor.CloseHook.none
            _ = try UDPKind.plan(configuration, features: .shared, into: &plan)
            return plan.expandedText()
        }
    }

    func testEveryOffsetTheProgramReadsResolvesFromThisKernelsBTF() throws {
        guard FileManager.default.fileExists(atPath: KernelBTF.vmlinuxPath) else {
            print("skipping: \(KernelBTF.vmlinuxPath) is missing (kernel built without CONFIG_DEBUG_INFO_BTF)")
            throw XCTSkip("\(KernelBTF.vmlinuxPath) is missing")
        }
        let btf = try KernelBTF.vmlinux()
        var offsets: [String: Int] = [:]
        for entry in MemberOffset.socketEndpoints {
            let layout = try btf.member(entry.path)
            XCTAssertEqual(layout.size, entry.size, "\(entry.path): the size KernelBTF.defines insists on")
            XCTAssertGreaterThanOrEqual(layout.offset, 0)
            offsets[entry.macro] = layout.offset
        }
        XCTAssertEqual(offsets.count, MemberOffset.socketEndpoints.count, "macros are unique")
        XCTAssertEqual(try btf.defines(for: MemberOffset.socketEndpoints).count, MemberOffset.socketEndpoints.count)
        // IPv4 address fields and ports sit in struct sock_common, within its first cache lines.
        for macro in ["OFF_SKC_FAMILY", "OFF_SKC_NUM", "OFF_SKC_DPORT", "OFF_SKC_RCV_SADDR", "OFF_SKC_DADDR"] {
            XCTAssertLessThan(offsets[macro] ?? .max, 64, macro)
        }
        XCTAssertNotEqual(offsets["OFF_SKC_RCV_SADDR"], offsets["OFF_SKC_DADDR"])
        XCTAssertNotEqual(offsets["OFF_SKC_V6_RCV_SADDR"], offsets["OFF_SKC_V6_DADDR"])
    }

    /// The `OFF_*` macros the program (with `netevents_bpf.h`, where the socket reads live) uses
    /// are exactly the ones the kind passes, and each has a header fallback.
    func testEveryOffsetMacroIsUsedAndEveryUsedOneIsPassed() throws {
        let program = try program
        let passed = Set((MemberOffset.socketEndpoints + MemberOffset.taskNames + MemberOffset.socketKind + SocketCookies.offsets).map(\.macro))
        var used = Set<String>()
        let pattern = try NSRegularExpression(pattern: "(?<!#define )\\bOFF_[A-Z0-9_]+\\b")
        for match in pattern.matches(in: program, range: NSRange(program.startIndex..., in: program)) {
            used.insert(String(program[Range(match.range, in: program)!]))
        }
        XCTAssertEqual(used, passed, "OFF_* macros read by udp_events.c and its headers vs MemberOffset.socketEndpoints + taskNames + socketKind + SocketCookies'")
        for macro in passed {
            XCTAssertTrue(program.contains("#define \(macro) "), "\(macro) also has a header fallback")
        }
    }

    /// The decoder reads `struct ne_udp_key`, `struct ne_udp_flow` and `struct ne_udp_close` of the
    /// contract header, which the program compiles against too: their sizes and offsets are the
    /// kernel/user ABI (the map value's layout as before the `filtered` byte became padding).
    func testTheContractStructsHaveTheirLayout() throws {
        let flow: [(String, Int?, Int)] = [
            ("start_ns", MemoryLayout<ne_udp_flow>.offset(of: \.start_ns), 0),
            ("close_ns", MemoryLayout<ne_udp_flow>.offset(of: \.close_ns), 8),
            ("tx_bytes", MemoryLayout<ne_udp_flow>.offset(of: \.tx_bytes), 16),
            ("rx_bytes", MemoryLayout<ne_udp_flow>.offset(of: \.rx_bytes), 24),
            ("tx_packets", MemoryLayout<ne_udp_flow>.offset(of: \.tx_packets), 32),
            ("rx_packets", MemoryLayout<ne_udp_flow>.offset(of: \.rx_packets), 40),
            ("cgroup_id", MemoryLayout<ne_udp_flow>.offset(of: \.cgroup_id), 48),
            ("uid", MemoryLayout<ne_udp_flow>.offset(of: \.uid), 56),
            ("netns", MemoryLayout<ne_udp_flow>.offset(of: \.netns), 60),
            ("family", MemoryLayout<ne_udp_flow>.offset(of: \.family), 64),
            ("sport", MemoryLayout<ne_udp_flow>.offset(of: \.sport), 66),
            ("dport", MemoryLayout<ne_udp_flow>.offset(of: \.dport), 68),
            ("pad", MemoryLayout<ne_udp_flow>.offset(of: \.pad), 70),
            ("saddr", MemoryLayout<ne_udp_flow>.offset(of: \.saddr), 72),
            ("daddr", MemoryLayout<ne_udp_flow>.offset(of: \.daddr), 88),
            ("comm", MemoryLayout<ne_udp_flow>.offset(of: \.comm), 104),
            ("thread", MemoryLayout<ne_udp_flow>.offset(of: \.thread), 120),
            ("cookie", MemoryLayout<ne_udp_flow>.offset(of: \.cookie), 136),
            ("exe", MemoryLayout<ne_udp_flow>.offset(of: \.exe), 144),
        ]
        for (name, offset, expected) in flow {
            XCTAssertEqual(offset, expected, "ne_udp_flow.\(name)")
        }
        XCTAssertEqual(MemoryLayout<ne_udp_flow>.size, 208)
        XCTAssertEqual(UDPFlowDecoder.flowSize, 208)

        XCTAssertEqual(MemoryLayout<ne_udp_key>.offset(of: \.sk), 0)
        XCTAssertEqual(MemoryLayout<ne_udp_key>.offset(of: \.pid), 8)
        XCTAssertEqual(MemoryLayout<ne_udp_key>.offset(of: \.peer), 12)
        XCTAssertEqual(MemoryLayout<ne_udp_key>.offset(of: \.peer.port), 12)
        XCTAssertEqual(MemoryLayout<ne_udp_key>.offset(of: \.peer.family), 14)
        XCTAssertEqual(MemoryLayout<ne_udp_key>.offset(of: \.peer.addr), 16)
        XCTAssertEqual(MemoryLayout<ne_udp_key>.size, UDPFlowDecoder.keySize)
        XCTAssertEqual(UDPFlowDecoder.keySize, 32)

        // A close sample is the key, then the flow.
        XCTAssertEqual(MemoryLayout<ne_udp_close>.offset(of: \.key), 0)
        XCTAssertEqual(MemoryLayout<ne_udp_close>.offset(of: \.flow), 32)
        XCTAssertEqual(MemoryLayout<ne_udp_close>.size, UDPFlowDecoder.closeSampleSize)
        XCTAssertEqual(UDPCloseSample().bytes, UDPCloseSample().keyBytes + UDPCloseSample().flowBytes)

        // The counter slots the kind reads: lost first (the core reads slot 0 as lost samples).
        XCTAssertEqual(NE_UDP_STAT_LOST.rawValue, 0)
        XCTAssertEqual(UDPKind.filteredCounter, NE_UDP_STAT_FILTERED.rawValue)
        XCTAssertLessThan(NE_UDP_STAT_FILTERED.rawValue, NE_UDP_STAT_COUNT.rawValue)
    }
}
