import BCCRuntime

/// Builds, compiles and attaches `bpf/tcp_events.c` for a configuration.
enum TCPProgram {
    struct Attached {
        var module: BPFModule
        var links: [BPFLink]
        var source: any SampleSource
        var report: TCPMonitor.AttachReport
    }

    /// Every struct member the program reads, with the size it reads it as.
    static let offsets: [MemberOffset] = [
        .init("OFF_TCP_BYTES_RECEIVED", "tcp_sock.bytes_received", size: 8),
        .init("OFF_TCP_BYTES_ACKED", "tcp_sock.bytes_acked", size: 8),
        .init("OFF_TCP_SEGS_IN", "tcp_sock.segs_in", size: 4),
        .init("OFF_TCP_SEGS_OUT", "tcp_sock.segs_out", size: 4),
        .init("OFF_TCP_DATA_SEGS_IN", "tcp_sock.data_segs_in", size: 4),
        .init("OFF_TCP_DATA_SEGS_OUT", "tcp_sock.data_segs_out", size: 4),
        .init("OFF_SKC_FAMILY", "sock.__sk_common.skc_family", size: 2),
        .init("OFF_SKC_STATE", "sock.__sk_common.skc_state", size: 1),
        .init("OFF_SKC_NUM", "sock.__sk_common.skc_num", size: 2),
        .init("OFF_SKC_DPORT", "sock.__sk_common.skc_dport", size: 2),
        .init("OFF_SKC_RCV_SADDR", "sock.__sk_common.skc_rcv_saddr", size: 4),
        .init("OFF_SKC_DADDR", "sock.__sk_common.skc_daddr", size: 4),
        .init("OFF_SKC_V6_RCV_SADDR", "sock.__sk_common.skc_v6_rcv_saddr", size: 16),
        .init("OFF_SKC_V6_DADDR", "sock.__sk_common.skc_v6_daddr", size: 16),
        .init("OFF_SKC_NET", "sock.__sk_common.skc_net", size: 8),
        .init("OFF_NET_NS_INUM", "net.ns.inum", size: 4),
    ]

    /// Members followed from a task to the socket `accept(2)` returned.
    static let acceptOffsets: [MemberOffset] = [
        .init("OFF_TASK_FILES", "task_struct.files", size: 8),
        .init("OFF_FILES_FDT", "files_struct.fdt", size: 8),
        .init("OFF_FDTABLE_FD", "fdtable.fd", size: 8),
        .init("OFF_FDTABLE_MAX_FDS", "fdtable.max_fds", size: 4),
        .init("OFF_FILE_PRIVATE_DATA", "file.private_data", size: 8),
        .init("OFF_SOCKET_SK", "socket.sk", size: 8),
    ]

    /// Picks the hook: the configured one, or the best the kernel supports.
    static func chooseHook(_ configuration: TCPMonitor.Configuration, features: KernelFeatures, notes: inout [String]) throws
        -> TCPMonitor.Hook
    {
        if let hook = configuration.hook { return hook }
        let tracepoint = features.tracepoint("sock", "inet_sock_set_state")
        if tracepoint.isYes { return .tracepoint }
        notes.append("tracepoint: \(tracepoint)")
        let fentry = features.fentry("tcp_set_state")
        if fentry.isYes { return .fentry }
        notes.append("fentry: \(fentry)")
        let kprobes = features.kprobes
        if kprobes.isYes { return .kprobe }
        notes.append("kprobes: \(kprobes)")
        throw BPFError.notSupported(
            feature: "tracing TCP state changes", minimumKernel: "4.16",
            reason: "no usable hook: " + notes.joined(separator: "; "))
    }

    /// The compiler flags for a configuration (everything but offsets).
    static func flags(
        _ configuration: TCPMonitor.Configuration, hook: TCPMonitor.Hook, transport: SampleTransport,
        tracksAccept: Bool, tracksIO: Bool
    ) -> [String] {
        var flags = ["-DMAX_SOCKETS=\(configuration.maxTrackedSockets)"]
        switch hook {
        case .tracepoint: flags.append("-DHOOK_TRACEPOINT")
        case .kprobe: flags.append("-DHOOK_KPROBE")
        case .fentry: flags.append("-DHOOK_FENTRY")
        }
        if transport == .ringBuffer { flags += ["-DUSE_RINGBUF", "-DRINGBUF_PAGES=\(configuration.bufferPages)"] }
        if tracksAccept { flags.append("-DTRACK_ACCEPT") }
        if tracksIO { flags.append("-DTRACK_IO") }
        if let pid = configuration.pid { flags.append("-DFILTER_PID=\(pid)") }
        if let uid = configuration.uid { flags.append("-DFILTER_UID=\(uid)") }
        if let port = configuration.port { flags.append("-DFILTER_PORT=\(port)") }
        if let family = configuration.family { flags.append("-DFILTER_FAMILY=\(family.rawFamily)") }
        return flags
    }

    static func attach(_ configuration: TCPMonitor.Configuration, features: KernelFeatures = .shared) throws -> Attached {
        try SystemChecks.requirePrivileges(for: "tracing TCP connections")
        try SystemChecks.requireTracefs()
        var notes: [String] = []
        let hook = try chooseHook(configuration, features: features, notes: &notes)
        let transport = configuration.transport ?? .best(features)
        let offsetSource = configuration.offsetSource ?? .best(features)

        var tracksAccept = configuration.tracksAccept
        if tracksAccept && !(features.tracepoint("syscalls", "sys_exit_accept4").isYes && features.tracepoint("syscalls", "sys_exit_accept").isYes) {
            tracksAccept = false
            notes.append("no syscalls:sys_exit_accept* tracepoints: passive sockets are claimed at first I/O")
        }
        let tracksIO = configuration.tracksFirstIO
            && features.tracepoint("sock", "sock_send_length").isYes && features.tracepoint("sock", "sock_recv_length").isYes
        if configuration.tracksFirstIO && !tracksIO { notes.append("no sock:sock_send_length tracepoints (Linux 6.3+): no first-I/O claims") }

        var cflags = flags(configuration, hook: hook, transport: transport, tracksAccept: tracksAccept, tracksIO: tracksIO)
        switch offsetSource {
        case .btf:
            let btf = try KernelBTF.vmlinux()
            cflags += try btf.defines(for: offsets)
            if tracksAccept {
                do {
                    cflags += try btf.defines(for: acceptOffsets)
                } catch {
                    cflags.removeAll { $0 == "-DTRACK_ACCEPT" }
                    tracksAccept = false
                    notes.append("accept tracking off: \(error)")
                }
            }
        case .headers:
            cflags.append("-DOFFSETS_FROM_HEADERS")
        }

        // With BTF offsets the program needs no kernel struct definitions, only a few constants.
        let text = offsetSource == .btf ? EmbeddedBPF.abiConstantsHeader + EmbeddedBPF.tcpEvents : EmbeddedBPF.tcpEvents
        let module = try BPFModule(source: text, cflags: cflags)
        var links: [BPFLink] = []
        var succeeded = false
        defer { if !succeeded { links.forEach { $0.close() } } }

        // Owner-claiming hooks first, so no socket closes between its accept and our seeing it.
        if tracksAccept {
            for name in ["sys_exit_accept4", "sys_exit_accept"] {
                let program = try module.loadProgram("tracepoint__syscalls__\(name)", type: .tracepoint)
                links.append(try BPFLink.tracepoint(program, category: "syscalls", name: name))
            }
        }
        if tracksIO {
            for name in ["sock_send_length", "sock_recv_length"] {
                let program = try module.loadProgram("tracepoint__sock__\(name)", type: .tracepoint)
                links.append(try BPFLink.tracepoint(program, category: "sock", name: name))
            }
        }
        switch hook {
        case .tracepoint:
            let program = try module.loadProgram("tracepoint__sock__inet_sock_set_state", type: .tracepoint)
            links.append(try BPFLink.tracepoint(program, category: "sock", name: "inet_sock_set_state"))
        case .kprobe:
            let program = try module.loadProgram("kprobe_tcp_set_state", type: .kprobe)
            links.append(try BPFLink.kprobe(program, function: "tcp_set_state"))
        case .fentry:
            let program = try module.loadProgram("kfunc__tcp_set_state", type: .tracing)
            links.append(try BPFLink.kfunc(program))
        }

        let source = try transport.reader(for: module.table("events"), pages: configuration.bufferPages, minimumDrainInterval: configuration.drainInterval)
        let report = TCPMonitor.AttachReport(
            hook: hook, transport: transport, offsetSource: offsetSource, headers: module.headers,
            attachments: links.map(\.target), notes: notes)
        // Loading touches the compiler's code again: release it once everything is in the kernel.
        CompilerMemory.release()
        succeeded = true
        return Attached(module: module, links: links, source: source, report: report)
    }
}
