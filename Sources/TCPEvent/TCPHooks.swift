internal import CNetEventsABI

extension TCPKind {
    /// Which kernel hook sees TCP state changes: tracepoint `sock:inet_sock_set_state` (4.16+),
    /// fentry on `tcp_set_state` (5.5+ with BTF), or a kprobe on `tcp_set_state` (4.1+).
    public typealias Hook = HookType

    /// The hooks chosen at start (`AttachReport/hooks`).
    public struct Hooks: Sendable, Equatable, CustomStringConvertible {
        /// The hook that sees state changes.
        public var hook: Hook
        /// Whether passive sockets are claimed at `accept(2)` (the syscalls tracepoints).
        public var tracksAccept: Bool
        /// Whether unowned sockets are claimed at their first send or receive (`sock:sock_send_length`, 6.3+).
        public var tracksFirstIO: Bool
        /// Whether every socket gets its kernel cookie as it is made (``TCPConnectionEvent/socketID``).
        public var socketCookies = false
        /// Whether the kernel's count of closes can be held against the program's runs: only where
        /// the state change is a raw tracepoint. A record tracepoint's program returns 0, and
        /// that keeps each hit from every perf event on the tracepoint, the count's included.
        var countsUnseenCloses = false

        /// `hook: ..., owners: connect+accept+io, socket ids: cookie`.
        public var description: String {
            var owners = ["connect"]
            if tracksAccept { owners.append("accept") }
            if tracksFirstIO { owners.append("io") }
            return "hook: \(hook), owners: " + owners.joined(separator: "+") + ", socket ids: \(socketCookies ? "cookie" : "none")"
        }
    }

    /// Every struct member the program reads, with the size it reads it as.
    static let offsets: [MemberOffset] = [
        .init("OFF_TCP_BYTES_RECEIVED", "tcp_sock.bytes_received", size: 8), .init("OFF_TCP_BYTES_ACKED", "tcp_sock.bytes_acked", size: 8),
        .init("OFF_TCP_SEGS_IN", "tcp_sock.segs_in", size: 4), .init("OFF_TCP_SEGS_OUT", "tcp_sock.segs_out", size: 4),
        .init("OFF_TCP_DATA_SEGS_IN", "tcp_sock.data_segs_in", size: 4), .init("OFF_TCP_DATA_SEGS_OUT", "tcp_sock.data_segs_out", size: 4),
        .init("OFF_SKC_STATE", "sock.__sk_common.skc_state", size: 1),
        .init("OFF_TCP_SRTT_US", "tcp_sock.srtt_us", size: 4), .init("OFF_TCP_MDEV_US", "tcp_sock.mdev_us", size: 4),
        // struct minmax: three {u32 t; u32 v;} samples, the first holding the minimum.
        .init("OFF_TCP_RTT_MIN", "tcp_sock.rtt_min", size: 24), .init("OFF_TCP_TOTAL_RETRANS", "tcp_sock.total_retrans", size: 4),
        .init("OFF_SK_ERR", "sock.sk_err", size: 4),
    ] + MemberOffset.socketEndpoints + MemberOffset.taskNames

    /// Members followed from a task to the socket `accept(2)` returned.
    static let acceptOffsets: [MemberOffset] = [
        .init("OFF_TASK_FILES", "task_struct.files", size: 8), .init("OFF_FILES_FDT", "files_struct.fdt", size: 8),
        .init("OFF_FDTABLE_FD", "fdtable.fd", size: 8), .init("OFF_FDTABLE_MAX_FDS", "fdtable.max_fds", size: 4),
        .init("OFF_FILE_PRIVATE_DATA", "file.private_data", size: 8), .init("OFF_SOCKET_SK", "socket.sk", size: 8),
    ]

    /// The hook ladder: the configured hook, or the first of tracepoint, fentry, kprobe that the
    /// kernel has, by probing.
    static func chooseHook(_ configured: Hook?, features: KernelFeatures, notes: inout [String]) throws(BPFError) -> Hook {
        try HookType.choose(
            configured,
            ladder: [
                (.tracepoint, { features.tracepoint("sock", "inet_sock_set_state") }),
                (.fentry, { features.fentry("tcp_set_state") }),
                (.kprobe, { features.kprobes }),
            ],
            feature: "tracing TCP state changes", minimumKernel: "4.16", notes: &notes)
    }

    public static func plan(_ configuration: Configuration, features: KernelFeatures, into program: inout ProgramPlan)
        throws(BPFError) -> Hooks
    {
        let options = configuration.options
        let hook = try chooseHook(options.hook, features: features, notes: &program.notes)
        var tracksAccept = options.tracksAccept
        var countsUnseenCloses = false
        if tracksAccept
            && !(features.tracepoint("syscalls", "sys_exit_accept4").isYes && features.tracepoint("syscalls", "sys_exit_accept").isYes)
        {
            tracksAccept = false
            program.notes.append("no syscalls:sys_exit_accept* tracepoints: passive sockets are claimed at first I/O")
        }
        if tracksAccept { tracksAccept = program.addOptionalOffsets(acceptOffsets, for: "accept tracking") }
        let tracksFirstIO = options.tracksFirstIO
            && features.tracepoint("sock", "sock_send_length").isYes && features.tracepoint("sock", "sock_recv_length").isYes
        if options.tracksFirstIO && !tracksFirstIO {
            program.notes.append("no sock:sock_send_length tracepoints (Linux 6.3+): no first-I/O claims")
        }

        program.text = EmbeddedBPF.tcpEvents
        program.headers = EmbeddedBPF.headers
        program.offsets = offsets
        // Interval records need the owners the connect and accept samples carry.
        let sampled = options.events.union(options.pollsConnections ? [.connect, .accept] : [])
        let kinds = sampled.compactMap(\.sampleKind).reduce(0) { $0 | 1 << Int($1) }
        program.flags += ["-DMAX_SOCKETS=\(options.maxTrackedSockets)", "-DEVENT_KINDS=\(kinds)"]
        switch hook {
        case .tracepoint:
            // Attached raw where planned: the attach follows the compiled program (the attach
            // report names a "raw tracepoint").
            program.flags.append("-DHOOK_TRACEPOINT")
            if planRawStateChange(&program) {
                program.flags.append("-DRAW_STATE_CHANGE")
                countsUnseenCloses = true
            } else {
                program.notes.append("no count of unseen closes: only the raw tracepoint can be held against the kernel's count")
            }
        case .kprobe: program.flags.append("-DHOOK_KPROBE")
        case .fentry: program.flags.append("-DHOOK_FENTRY")
        }
        if tracksAccept { program.flags.append("-DTRACK_ACCEPT") }
        if tracksFirstIO { program.flags.append("-DTRACK_IO") }
        // The poll may know the owner of a close the kernel does not: user space filters those.
        if options.pollsConnections { program.flags.append("-DPASS_UNKNOWN_OWNERS") }
        var hooks = Hooks(hook: hook, tracksAccept: tracksAccept, tracksFirstIO: tracksFirstIO)
        hooks.socketCookies = SocketCookies.plan(features: features, into: &program)
        hooks.countsUnseenCloses = countsUnseenCloses
        if options.pollsConnections && !hooks.socketCookies {
            // Records are joined with the opens and closes by socket cookie; without cookies they
            // could neither carry their owners nor add up with the closes.
            throw .notSupported(
                feature: "interval records", minimumKernel: "5.10",
                reason: "they need socket cookies (\(features.socketCookies)); set the interval to 0")
        }
        return hooks
    }

    /// Whether `sock:inet_sock_set_state` can be attached raw: its program then reads the
    /// socket's `sk_type` and `sk_protocol`, whole members since Linux 5.6 (a bitfield before,
    /// where the tracepoint's record is the only cheap way to the protocol), at offsets from BTF.
    static func planRawStateChange(_ program: inout ProgramPlan) -> Bool {
        guard program.offsetSource == .btf else {
            // A header tree may be another kernel's: its offsets of sk_type and sk_protocol would
            // tell every socket apart wrongly, where the record's protocol is the kernel's own.
            program.notes.append("inet_sock_set_state as a tracepoint, not raw: offsets from headers")
            return false
        }
        guard KernelVersion.running.isAtLeast(5, 6) else {
            program.notes.append("inet_sock_set_state as a tracepoint, not raw: sk_protocol is a bitfield before Linux 5.6")
            return false
        }
        return program.addOptionalOffsets(rawStateChangeOffsets, for: "the raw inet_sock_set_state tracepoint")
    }

    /// What the raw `inet_sock_set_state` program reads besides ``offsets``: the socket's kind,
    /// and its local port as the tracepoint's record gives it (`inet_sport`: a closing socket's
    /// `inet_num` is 0 by the time the tracepoint runs).
    static let rawStateChangeOffsets = MemberOffset.socketKind + [.init("OFF_INET_SPORT", "inet_sock.inet_sport", size: 2)]

    /// On the raw tracepoint hook, the kernel's count of TCP sockets reaching TCP_CLOSE, held
    /// against the program's runs for them: closes no run saw (`MonitorStatistics.unseenEvents`).
    /// None on the record tracepoint (offsets from headers), whose program keeps the hits from the
    /// count, nor on the kprobe and fentry hooks, which see `tcp_set_state` calls, not the
    /// tracepoint's hits.
    public static func crossCheck(_ hooks: Hooks) -> KernelCrossCheck? {
        hooks.hook == .tracepoint && hooks.countsUnseenCloses ? closeCrossCheck : nil
    }

    /// TCP sockets reaching TCP_CLOSE, as the kernel counts them and as the state-change program
    /// counts its runs for them.
    public static let closeCrossCheck = KernelCrossCheck(
        category: "sock", name: "inet_sock_set_state", filter: "protocol == 6 && newstate == 7",  // IPPROTO_TCP, TCP_CLOSE
        runsCounter: NE_TCP_STAT_CLOSE_RUNS.rawValue)

    public static func attach(_ hooks: Hooks, module: BPFModule, links: inout [BPFLink]) throws(BPFError) {
        if hooks.socketCookies { try SocketCookies.attach(module: module, links: &links, passiveOpens: true) }
        // Owner-claiming hooks first, so no socket closes between its accept and our seeing it.
        if hooks.tracksAccept {
            for name in ["sys_exit_accept4", "sys_exit_accept"] {
                links.append(try module.attachTracepoint(category: "syscalls", name: name))
            }
        }
        if hooks.tracksFirstIO {
            for name in ["sock_send_length", "sock_recv_length"] {
                links.append(try module.attachTracepoint(category: "sock", name: name))
            }
        }
        switch hooks.hook {
        case .tracepoint:
            links.append(try module.attachTracepoint(category: "sock", name: "inet_sock_set_state"))  // raw with RAW_STATE_CHANGE
        case .kprobe:
            let program = try module.loadProgram("kprobe_tcp_set_state", type: .kprobe)
            links.append(try BPFLink.kprobe(program, function: "tcp_set_state"))
        case .fentry:
            let program = try module.loadProgram("kfunc__tcp_set_state", type: .tracing)
            links.append(try BPFLink.kfunc(program))
        }
    }
}
