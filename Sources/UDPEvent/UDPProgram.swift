import BCCRuntime

/// Builds, compiles and attaches `bpf/udp_events.c` for a configuration.
enum UDPProgram {
    struct Attached {
        var module: BPFModule
        var links: [BPFLink]
        var source: any SampleSource
        var report: UDPMonitor.AttachReport
    }

    static let offsets: [MemberOffset] = [
        .init("OFF_SKC_FAMILY", "sock.__sk_common.skc_family", size: 2),
        .init("OFF_SKC_NUM", "sock.__sk_common.skc_num", size: 2),
        .init("OFF_SKC_DPORT", "sock.__sk_common.skc_dport", size: 2),
        .init("OFF_SKC_RCV_SADDR", "sock.__sk_common.skc_rcv_saddr", size: 4),
        .init("OFF_SKC_DADDR", "sock.__sk_common.skc_daddr", size: 4),
        .init("OFF_SKC_V6_RCV_SADDR", "sock.__sk_common.skc_v6_rcv_saddr", size: 16),
        .init("OFF_SKC_V6_DADDR", "sock.__sk_common.skc_v6_daddr", size: 16),
        .init("OFF_SKC_NET", "sock.__sk_common.skc_net", size: 8),
        .init("OFF_NET_NS_INUM", "net.ns.inum", size: 4),
    ]

    /// The functions the kprobe and fentry hooks count on.
    static let sendFunctions = ["udp_sendmsg", "udpv6_sendmsg"]
    static let receiveFunctions = ["udp_recvmsg", "udpv6_recvmsg"]
    static let destructFunctions = ["udp_destruct_sock", "udpv6_destruct_sock"]

    static func chooseHook(_ configuration: UDPMonitor.Configuration, features: KernelFeatures, notes: inout [String]) throws
        -> UDPMonitor.Hook
    {
        if let hook = configuration.hook { return hook }
        let send = features.tracepoint("sock", "sock_send_length")
        let receive = features.tracepoint("sock", "sock_recv_length")
        if send.isYes && receive.isYes { return .tracepoint }
        notes.append("tracepoints: \(send.isYes ? receive : send)")
        let fentry = features.fentry("udp_sendmsg")
        if fentry.isYes { return .fentry }
        notes.append("fentry: \(fentry)")
        let kprobes = features.kprobes
        if kprobes.isYes { return .kprobe }
        notes.append("kprobes: \(kprobes)")
        throw BPFError.notSupported(
            feature: "counting UDP traffic", minimumKernel: "6.3 (tracepoints), 5.5 (fentry) or 4.1 (kprobes)",
            reason: notes.joined(separator: "; "))
    }

    static func chooseCloseHook(_ configuration: UDPMonitor.Configuration, features: KernelFeatures, notes: inout [String])
        -> UDPMonitor.CloseHook
    {
        if let hook = configuration.closeHook { return hook }
        if KernelVersion.running.isAtLeast(5, 9), SystemChecks.cgroup2Path != nil { return .cgroup }
        notes.append("no cgroup sock_release (needs Linux 5.9 and cgroup v2)")
        if features.kprobes.isYes { return .kprobe }
        notes.append("no close hook: sockets are reported every interval and when idle")
        return .none
    }

    /// Where `flags` sits in `udp_recvmsg`'s parameters: 4th since Linux 5.19, 5th before (after `noblock`).
    static func receiveFlagsArgument() -> Int {
        KernelVersion.running.isAtLeast(5, 19) ? 4 : 5
    }

    static func flags(
        _ configuration: UDPMonitor.Configuration, hook: UDPMonitor.Hook, closeHook: UDPMonitor.CloseHook,
        transport: SampleTransport
    ) -> [String] {
        var flags = ["-DMAX_FLOWS=\(configuration.maxFlows)", "-DRECVMSG_FLAGS_ARG=\(receiveFlagsArgument())"]
        switch hook {
        case .tracepoint: flags.append("-DCOUNT_TRACEPOINT")
        case .kprobe: flags.append("-DCOUNT_KPROBE")
        case .fentry: flags.append("-DCOUNT_FENTRY")
        }
        switch closeHook {
        case .cgroup: flags.append("-DCLOSE_CGROUP")
        case .kprobe: flags.append("-DCLOSE_KPROBE")
        case .none: break
        }
        if transport == .ringBuffer { flags += ["-DUSE_RINGBUF", "-DRINGBUF_PAGES=\(configuration.bufferPages)"] }
        if let pid = configuration.pid { flags.append("-DFILTER_PID=\(pid)") }
        if let uid = configuration.uid { flags.append("-DFILTER_UID=\(uid)") }
        if let port = configuration.port { flags.append("-DFILTER_PORT=\(port)") }
        if let family = configuration.family { flags.append("-DFILTER_FAMILY=\(family.rawFamily)") }
        return flags
    }

    static func attach(_ configuration: UDPMonitor.Configuration, features: KernelFeatures = .shared) throws -> Attached {
        try SystemChecks.requirePrivileges(for: "tracing UDP traffic")
        try SystemChecks.requireTracefs()
        var notes: [String] = []
        let hook = try chooseHook(configuration, features: features, notes: &notes)
        let closeHook = chooseCloseHook(configuration, features: features, notes: &notes)
        let transport = configuration.transport ?? .best(features)
        let offsetSource = configuration.offsetSource ?? .best(features)

        var cflags = flags(configuration, hook: hook, closeHook: closeHook, transport: transport)
        switch offsetSource {
        case .btf:
            cflags += try KernelBTF.vmlinux().defines(for: offsets)
        case .headers:
            cflags.append("-DOFFSETS_FROM_HEADERS")
        }

        // With BTF offsets the program needs no kernel struct definitions, only a few constants.
        let text = offsetSource == .btf ? EmbeddedBPF.abiConstantsHeader + EmbeddedBPF.udpEvents : EmbeddedBPF.udpEvents
        let module = try BPFModule(source: text, cflags: cflags)
        var links: [BPFLink] = []
        var succeeded = false
        defer { if !succeeded { links.forEach { $0.close() } } }

        // The close hook first: a socket counted must never close unseen.
        switch closeHook {
        case .cgroup:
            guard let root = SystemChecks.cgroup2Path else {
                throw BPFError.notSupported(feature: "cgroup sock_release", minimumKernel: "5.9", reason: "no cgroup v2 hierarchy is mounted")
            }
            let program = try module.loadProgram(
                "udp_sock_release", type: .cgroupSock, expectedAttachType: CgroupAttachType.socketRelease.rawValue)
            links.append(try BPFLink.cgroup(program, path: root, type: .socketRelease))
        case .kprobe:
            let program = try module.loadProgram("kprobe_udp_destruct_sock", type: .kprobe)
            for function in destructFunctions where function == destructFunctions[0] || hasFunction(function) {
                links.append(try BPFLink.kprobe(program, function: function))
            }
        case .none:
            break
        }
        switch hook {
        case .tracepoint:
            for name in ["sock_send_length", "sock_recv_length"] {
                let program = try module.loadProgram("tracepoint__sock__\(name)", type: .tracepoint)
                links.append(try BPFLink.tracepoint(program, category: "sock", name: name))
            }
        case .kprobe:
            let sendEntry = try module.loadProgram("kprobe_udp_sendmsg", type: .kprobe)
            let sendReturn = try module.loadProgram("kretprobe_udp_sendmsg", type: .kprobe)
            let receiveEntry = try module.loadProgram("kprobe_udp_recvmsg", type: .kprobe)
            let receiveReturn = try module.loadProgram("kretprobe_udp_recvmsg", type: .kprobe)
            for function in sendFunctions {
                links.append(try BPFLink.kprobe(sendEntry, function: function))
                links.append(try BPFLink.kprobe(sendReturn, function: function, isReturn: true))
            }
            for function in receiveFunctions {
                links.append(try BPFLink.kprobe(receiveEntry, function: function))
                links.append(try BPFLink.kprobe(receiveReturn, function: function, isReturn: true))
            }
        case .fentry:
            for function in sendFunctions + receiveFunctions {
                let program = try module.loadProgram("kretfunc__\(function)", type: .tracing)
                links.append(try BPFLink.kfunc(program))
            }
        }

        let source = try transport.reader(for: module.table("closes"), pages: configuration.bufferPages, minimumDrainInterval: configuration.drainInterval)
        let report = UDPMonitor.AttachReport(
            hook: hook, closeHook: closeHook, transport: transport, offsetSource: offsetSource, headers: module.headers,
            attachments: links.map(\.target), notes: notes)
        // Loading touches the compiler's code again: release it once everything is in the kernel.
        CompilerMemory.release()
        succeeded = true
        return Attached(module: module, links: links, source: source, report: report)
    }

    private static func hasFunction(_ name: String) -> Bool {
        (try? KernelBTF.vmlinux().hasFunction(name)) ?? true
    }
}
