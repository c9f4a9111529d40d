import Foundation
import XCTest
@testable import NetEventsCore
@testable import TCPEvent

final class TCPConfigurationTests: XCTestCase {
    func testValidConfigurations() throws {
        XCTAssertNoThrow(try TCPMonitor.Configuration().validate())
        XCTAssertNoThrow(try TCPMonitor.Configuration(filter: .init(pids: [1], uid: 0, ports: [65_535], family: .ipv6)).validate())
        var edges = TCPMonitor.Configuration(options: .init(hook: .kprobe))
        edges.maxTrackedSockets = 64
        edges.bufferPages = 1
        edges.deliveryCapacity = 1
        edges.drainInterval = .zero
        XCTAssertNoThrow(try edges.validate())
        XCTAssertNoThrow(try TCPMonitor(configuration: edges), "valid options need no privileges until start")
    }

    /// The owner map holds as many sockets as the kernel's table of established sockets (twice
    /// `tcp_max_orphans`), within 65,536 and 1,048,576.
    func testTheOwnerMapIsSizedLikeTheKernelsTableOfSockets() throws {
        let text = try String(contentsOfFile: "/proc/sys/net/ipv4/tcp_max_orphans", encoding: .utf8)
        let table = 2 * (try XCTUnwrap(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), text))
        let size = TCPKind.Options.defaultMaxTrackedSockets
        XCTAssertTrue((65_536...1_048_576).contains(size), "\(size)")
        if (65_536...1_048_576).contains(table) { XCTAssertEqual(size, table) }
        for wrong in [63, 16_777_217] {
            var options = TCPKind.Options()
            options.maxTrackedSockets = wrong
            XCTAssertThrowsError(try options.validate(), "\(wrong)")
        }
    }

    func testDefaultValues() {
        let configuration = TCPMonitor.Configuration()
        XCTAssertEqual(configuration.filter, EventFilter())
        XCTAssertNil(configuration.hook)
        XCTAssertEqual(configuration.maxTrackedSockets, TCPKind.Options.defaultMaxTrackedSockets)
        XCTAssertTrue(configuration.tracksAccept)
        XCTAssertTrue(configuration.tracksFirstIO)
        XCTAssertNil(configuration.transport)
        XCTAssertNil(configuration.offsetSource)
        XCTAssertEqual(configuration.bufferPages, 256, "TCPKind.defaultBufferPages")
        XCTAssertEqual(configuration.deliveryCapacity, 65_536)
        XCTAssertEqual(configuration.drainInterval, .milliseconds(2))
    }

    /// The kind's options and the filter's fields read and write as the configuration's own.
    func testOptionsAndFilterFieldsAreTheConfigurationsOwn() {
        var configuration = TCPMonitor.Configuration()
        configuration.hook = .kprobe
        configuration.maxTrackedSockets = 64
        configuration.tracksAccept = false
        configuration.port = 5
        configuration.pid = 42
        configuration.family = .ipv4
        XCTAssertEqual(configuration.options.hook, .kprobe)
        XCTAssertEqual(configuration.options.maxTrackedSockets, 64)
        XCTAssertFalse(configuration.options.tracksAccept)
        XCTAssertEqual(configuration.filter, EventFilter(pids: [42], ports: [5], family: .ipv4))
        XCTAssertEqual(configuration, TCPMonitor.Configuration(filter: .init(pids: [42], ports: [5], family: .ipv4), options: {
            var options = TCPMonitor.Options(hook: .kprobe)
            options.maxTrackedSockets = 64
            options.tracksAccept = false
            return options
        }()))
        XCTAssertEqual(TCPMonitor.Options(hook: .fentry).hook, .fentry)
        XCTAssertEqual(TCPMonitor.Hook.allCases, TCPKind.Hook.allCases)
    }

    func testInvalidOptionsAreNamed() {
        var cases: [(TCPMonitor.Configuration, String)] = [
            (.init(filter: .init(pids: [0])), "pid"), (.init(filter: .init(pids: [-5])), "pid"), (.init(filter: .init(ports: [0])), "port"),
        ]
        var pages = TCPMonitor.Configuration()
        pages.bufferPages = 3
        cases.append((pages, "bufferPages"))
        var sockets = TCPMonitor.Configuration()
        sockets.maxTrackedSockets = 1
        cases.append((sockets, "maxTrackedSockets"))
        sockets.maxTrackedSockets = 63
        cases.append((sockets, "maxTrackedSockets"))
        var capacity = TCPMonitor.Configuration()
        capacity.deliveryCapacity = 0
        cases.append((capacity, "deliveryCapacity"))
        var drain = TCPMonitor.Configuration()
        drain.drainInterval = .milliseconds(1_001)
        cases.append((drain, "drainInterval"))
        for (configuration, name) in cases {
            XCTAssertThrowsError(try configuration.validate(), name) { error in
                guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains(name), "\(message) names \(name)")
            }
            XCTAssertThrowsError(try TCPMonitor(configuration: configuration), "the initializer validates \(name)") { error in
                guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains(name), "\(message) names \(name)")
            }
        }
    }

    /// A plan for a forced hook; `.headers` offsets, so optional members need no BTF lookup.
    func plan(
        _ configuration: TCPMonitor.Configuration, offsetSource: OffsetSource = .headers, transport: SampleTransport = .perfBuffer
    ) throws -> (ProgramPlan, TCPKind.Hooks) {
        var plan = ProgramPlan(offsetSource: offsetSource, transport: transport)
        let hooks = try TCPKind.plan(configuration, features: .shared, into: &plan)
        return (plan, hooks)
    }

    var acceptTracepoints: Bool {
        KernelFeatures.shared.tracepoint("syscalls", "sys_exit_accept4").isYes
            && KernelFeatures.shared.tracepoint("syscalls", "sys_exit_accept").isYes
    }

    var firstIOTracepoints: Bool {
        KernelFeatures.shared.tracepoint("sock", "sock_send_length").isYes
            && KernelFeatures.shared.tracepoint("sock", "sock_recv_length").isYes
    }

    func testAFilteredKprobePlanKeepsTheAcceptOffsets() throws {
        let filter = EventFilter(pids: [42], uid: 1000, ports: [8080], family: .ipv6)
        var configuration = TCPMonitor.Configuration(filter: filter, options: .init(hook: .kprobe))
        configuration.tracksFirstIO = false
        let (plan, hooks) = try plan(configuration)
        XCTAssertEqual(hooks.hook, .kprobe)
        XCTAssertTrue(plan.flags.contains("-DHOOK_KPROBE"), "\(plan.flags)")
        XCTAssertEqual(plan.flags.contains("-DTRACK_ACCEPT"), acceptTracepoints, "\(plan.flags)")
        XCTAssertEqual(hooks.tracksAccept, acceptTracepoints)
        XCTAssertFalse(plan.flags.contains("-DTRACK_IO"), "first-I/O tracking is off")
        XCTAssertFalse(hooks.tracksFirstIO)
        // The kind adds only its own flags: filters, transport and offsets are the core's.
        XCTAssertFalse(plan.flags.contains { $0.hasPrefix("-DFILTER_") || $0.hasPrefix("-DUSE_RINGBUF") || $0.hasPrefix("-DOFF_") }, "\(plan.flags)")
    }

    func testEachHookHasItsFlag() throws {
        let expected: [TCPMonitor.Hook: String] = [.tracepoint: "-DHOOK_TRACEPOINT", .kprobe: "-DHOOK_KPROBE", .fentry: "-DHOOK_FENTRY"]
        for hook in TCPMonitor.Hook.allCases {
            let (plan, hooks) = try plan(.init(options: .init(hook: hook)))
            XCTAssertEqual(plan.flags.filter { $0.hasPrefix("-DHOOK_") }, [expected[hook]!], "\(hook)")
            XCTAssertEqual(hooks.hook, hook)
            XCTAssertEqual(plan.notes.filter { $0.hasPrefix("tracepoint:") || $0.hasPrefix("fentry:") }, [], "a forced hook needs no probing")
        }
    }

    func testOwnerTrackingAndMapSize() throws {
        var configuration = TCPMonitor.Configuration(options: .init(hook: .tracepoint))
        configuration.maxTrackedSockets = 4_096
        let (plan, hooks) = try plan(configuration)
        XCTAssertTrue(plan.flags.contains("-DMAX_SOCKETS=4096"), "\(plan.flags)")
        XCTAssertEqual(plan.flags.contains("-DTRACK_ACCEPT"), acceptTracepoints)
        XCTAssertEqual(plan.flags.contains("-DTRACK_IO"), firstIOTracepoints)
        XCTAssertEqual(hooks.tracksFirstIO, firstIOTracepoints)
        if !firstIOTracepoints {
            XCTAssertTrue(plan.notes.contains { $0.contains("sock_send_length") }, "\(plan.notes)")
        }
        XCTAssertEqual(plan.text, EmbeddedBPF.tcpEvents)
        // Socket cookies are planned where the kernel can give them (the probe is KernelFeatures').
        XCTAssertEqual(hooks.socketCookies, KernelFeatures.shared.socketCookies.isYes)
        XCTAssertEqual(plan.flags.contains("-DSOCKET_COOKIES"), hooks.socketCookies)
        XCTAssertEqual(plan.offsets, TCPKind.offsets + (hooks.socketCookies ? SocketCookies.offsets : []))

        configuration.tracksAccept = false
        configuration.tracksFirstIO = false
        let (without, withoutHooks) = try self.plan(configuration)
        XCTAssertFalse(without.flags.contains("-DTRACK_ACCEPT"))
        XCTAssertFalse(without.flags.contains("-DTRACK_IO"))
        let ids = ", socket ids: " + (hooks.socketCookies ? "cookie" : "none")
        // Attached raw from Linux 5.6, where the program can read the socket's protocol, at
        // offsets from BTF (this plan's are the headers').
        XCTAssertFalse(plan.flags.contains("-DRAW_STATE_CHANGE"))
        // Only the raw tracepoint's closes are held against the kernel's count: a record
        // tracepoint's program keeps the hits from it.
        XCTAssertNil(TCPKind.crossCheck(hooks), "the record tracepoint has no count of unseen closes")
        if KernelFeatures.shared.btf.isYes {
            let (fromBTF, btfHooks) = try self.plan(configuration, offsetSource: .btf)
            let raw = KernelVersion.running.isAtLeast(5, 6)
            XCTAssertEqual(fromBTF.flags.contains("-DRAW_STATE_CHANGE"), raw)
            XCTAssertEqual(fromBTF.flags.contains { $0.hasPrefix("-DOFF_INET_SPORT=") }, raw, "\(fromBTF.flags)")
            XCTAssertEqual(TCPKind.crossCheck(btfHooks), raw ? TCPKind.closeCrossCheck : nil)
            XCTAssertEqual(TCPKind.closeCrossCheck.filter, "protocol == 6 && newstate == 7", "TCP sockets reaching TCP_CLOSE")
        }
        let hook = "hook: \(TCPMonitor.Hook.tracepoint)"
        XCTAssertEqual(withoutHooks.description, "\(hook), owners: connect" + ids)
        XCTAssertEqual(
            hooks.description,
            "\(hook), owners: "
                + (["connect"] + (acceptTracepoints ? ["accept"] : []) + (firstIOTracepoints ? ["io"] : [])).joined(separator: "+") + ids)
    }

    /// With BTF offsets, accept tracking needs the accept path's members; this kernel has them.
    func testAcceptTrackingWithBTFOffsetsAddsTheirDefines() throws {
        guard KernelFeatures.shared.btf.isYes else { throw XCTSkip("this kernel has no BTF") }
        guard acceptTracepoints else { throw XCTSkip("no syscalls:sys_exit_accept* tracepoints") }
        let (plan, hooks) = try plan(.init(options: .init(hook: .kprobe)), offsetSource: .btf)
        XCTAssertTrue(hooks.tracksAccept, "\(plan.notes)")
        for entry in TCPKind.acceptOffsets {
            XCTAssertTrue(plan.flags.contains { $0.hasPrefix("-D\(entry.macro)=") }, "\(entry.macro) in \(plan.flags)")
        }
    }

    func testEveryFlagIsAMacroTheProgramKnows() throws {
        var names = Set<String>()
        for hook in TCPMonitor.Hook.allCases {
            let (plan, _) = try plan(.init(filter: .init(pids: [1], uid: 2, ports: [3], family: .ipv4), options: .init(hook: hook)))
            for flag in plan.flags + EventFilter(pids: [1], uid: 2, ports: [3], family: .ipv4).compilerFlags {
                XCTAssertTrue(flag.hasPrefix("-D"), flag)
                names.insert(String(flag.dropFirst(2).prefix { $0 != "=" }))
            }
        }
        names.formUnion(["USE_RINGBUF", "RINGBUF_PAGES", "OFFSETS_FROM_HEADERS"])  // the core's
        XCTAssertTrue(names.isSuperset(of: ["HOOK_TRACEPOINT", "HOOK_KPROBE", "HOOK_FENTRY", "MAX_SOCKETS", "FILTERS"]))
        let (plan, _) = try plan(.init())
        let program = plan.expandedText()
        for name in names {
            XCTAssertTrue(program.contains(name), "\(name) is used by tcp_events.c or the headers it includes")
        }
    }

    /// The program's `#include "..."` lines all name embedded headers, and expand once each.
    func testTheProgramExpandsItsIncludes() throws {
        let (plan, _) = try plan(.init())
        XCTAssertEqual(plan.headers, EmbeddedBPF.headers)
        XCTAssertTrue(plan.text.contains("#include \"tcp_events_abi.h\""))
        XCTAssertTrue(plan.text.contains("#include \"netevents_bpf.h\""))
        let program = plan.expandedText()
        XCTAssertFalse(program.contains("#include \""), "every quoted include is an embedded header")
        XCTAssertEqual(program.components(separatedBy: "struct ne_tcp_event {").count, 2, "the contract is expanded once")
        XCTAssertEqual(program.components(separatedBy: "#define NETEVENTS_BPF_H").count, 2)
        XCTAssertEqual(program.components(separatedBy: "#define NETEVENTS_COMMON_H").count, 2)
    }

    func testEveryOffsetTheProgramReadsResolvesFromThisKernelsBTF() throws {
        guard KernelFeatures.shared.btf.isYes else { throw XCTSkip("this kernel has no BTF") }
        let btf = try KernelBTF.vmlinux()
        let defines = try btf.defines(for: TCPKind.offsets + TCPKind.acceptOffsets)
        XCTAssertEqual(defines.count, TCPKind.offsets.count + TCPKind.acceptOffsets.count)
        // Every macro the C program uses is passed, and every one passed is used.
        let (plan, _) = try plan(.init())
        let program = plan.expandedText()
        let used = try offsetMacrosUsed(in: program)
        let all = TCPKind.offsets + TCPKind.acceptOffsets + TCPKind.rawStateChangeOffsets + SocketCookies.offsets
        XCTAssertEqual(used, Set(all.map(\.macro)), "OFF_* macros the program reads vs TCPKind's and SocketCookies'")
        XCTAssertEqual(try btf.defines(for: SocketCookies.offsets).count, 1)
        for entry in all {
            XCTAssertTrue(program.contains("#define \(entry.macro) "), "\(entry.macro) also has a header fallback")
        }
        XCTAssertEqual(Set(TCPKind.offsets.map(\.macro)).count, TCPKind.offsets.count, "macros are unique")
        XCTAssertTrue(Set(MemberOffset.socketEndpoints).isSubset(of: Set(TCPKind.offsets)))
    }
}

/// The `OFF_*` macros a C text reads, leaving out those it only defines (header fallbacks).
func offsetMacrosUsed(in text: String) throws -> Set<String> {
    let pattern = try NSRegularExpression(pattern: "(?<!#define )\\bOFF_[A-Z0-9_]+\\b")
    var used = Set<String>()
    for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
        used.insert(String(text[Range(match.range, in: text)!]))
    }
    return used
}
