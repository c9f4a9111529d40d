extension UDPKind {
    /// Which kernel hooks count sends and receives: tracepoints `sock:sock_send_length` /
    /// `sock:sock_recv_length` (6.3+, attached as raw tracepoints: no trace record is built, and a
    /// run is skipped only while the same program runs on the CPU), fexit on `udp_sendmsg`, `udpv6_sendmsg`, `udp_recvmsg`,
    /// `udpv6_recvmsg` (5.5+ with BTF), or kprobes and kretprobes on the same functions (4.1+).
    public typealias Hook = HookType

    /// Which hook reports a socket's release.
    public enum CloseHook: String, Sendable, CaseIterable, CustomStringConvertible {
        /// A cgroup `sock_release` program at the root of the cgroup v2 hierarchy. Minimum kernel: 5.9.
        case cgroup
        /// kprobes on `udp_destruct_sock` / `udpv6_destruct_sock`. Minimum kernel: 4.1.
        case kprobe
        /// No close hook: sockets are reported every interval, at stop, and when idle.
        case none

        /// The hook as a report names it.
        public var description: String {
            switch self {
            case .cgroup: return "cgroup sock_release"
            case .kprobe: return "kprobe udp_destruct_sock"
            case .none: return "none (interval and idle reports only)"
            }
        }
    }

    /// The hooks chosen at start (`AttachReport/hooks`).
    public struct Hooks: Sendable, Equatable, CustomStringConvertible {
        /// The hooks that count traffic.
        public var hook: Hook
        /// The hook that reports a socket's release.
        public var closeHook: CloseHook
        /// Where `flags` sits among `udp_recvmsg`'s parameters (1-based), for the kprobe and fexit hooks.
        public var receiveFlagsArgument: Int
        /// Whether every socket gets its kernel cookie as it is made (``UDPTrafficEvent/socketID``).
        public var socketCookies = false
        /// Whether cgroup `sendmsg`/`recvmsg` programs give the peer of each datagram of an
        /// unconnected socket; without them such a socket's flows have no peer.
        public var peers = false

        /// `hook: ..., close: ..., socket ids: cookie|none, peers: cgroup|connected only`.
        public var description: String {
            "hook: \(hook), close: \(closeHook), socket ids: \(socketCookies ? "cookie" : "none"), "
                + "peers: \(peers ? "cgroup sendmsg/recvmsg" : "connected sockets only")"
        }
    }

    /// The functions the kprobe and fentry hooks count on.
    static let sendFunctions = ["udp_sendmsg", "udpv6_sendmsg"]
    static let receiveFunctions = ["udp_recvmsg", "udpv6_recvmsg"]
    static let destructFunctions = ["udp_destruct_sock", "udpv6_destruct_sock"]

    /// The counting ladder: the configured hook, or tracepoints, fentry, kprobes, by probing.
    static func chooseHook(_ configured: Hook?, features: KernelFeatures, notes: inout [String]) throws(BPFError) -> Hook {
        try HookType.choose(
            configured,
            ladder: [
                (.tracepoint, {
                    let send = features.tracepoint("sock", "sock_send_length")
                    return send.isYes ? features.tracepoint("sock", "sock_recv_length") : send
                }),
                (.fentry, { features.fentry("udp_sendmsg") }),
                (.kprobe, { features.kprobes }),
            ],
            feature: "counting UDP traffic", minimumKernel: "6.3 (tracepoints), 5.5 (fentry) or 4.1 (kprobes)", notes: &notes)
    }

    /// The close ladder: the configured hook, or a cgroup `sock_release` program where one loads,
    /// kprobes where the kernel has them, or none.
    static func chooseCloseHook(_ configured: CloseHook?, features: KernelFeatures, notes: inout [String]) -> CloseHook {
        if let configured { return configured }
        let cgroup = features.cgroupSocketRelease
        if cgroup.isYes { return .cgroup }
        notes.append("cgroup sock_release: \(cgroup)")
        if features.kprobes.isYes { return .kprobe }
        notes.append("no close hook: sockets are reported every interval and when idle")
        return .none
    }

    /// Where `flags` sits in `udp_recvmsg`'s parameters, from BTF: 4th since Linux 5.19, 5th
    /// before (after `noblock`). Without BTF (kernels that old are mostly older than 5.19) the
    /// kernel version is the only sign left, and the report says it was used.
    static func receiveFlagsArgument(notes: inout [String]) -> Int {
        if let index = try? KernelBTF.vmlinux().parameterIndex("flags", ofFunction: "udp_recvmsg") { return index }
        let index = KernelVersion.running.isAtLeast(5, 19) ? 4 : 5
        notes.append("udp_recvmsg's flags position from the kernel version (no BTF): parameter \(index)")
        return index
    }

    /// Plans `bpf/udp_datagrams.h`, the hooks that see each datagram with its peer, for any kind
    /// whose program includes it: the counting hook, `flags`' position, and the cgroup programs
    /// that give the peers of unconnected sockets where they load.
    package static func planDatagrams(_ configured: Hook?, peers wanted: Bool = true, features: KernelFeatures, into program: inout ProgramPlan)
        throws(BPFError) -> (hook: Hook, receiveFlagsArgument: Int, peers: Bool)
    {
        let hook = try chooseHook(configured, features: features, notes: &program.notes)
        let flagsArgument = hook == .tracepoint ? 4 : receiveFlagsArgument(notes: &program.notes)
        program.flags.append("-DRECVMSG_FLAGS_ARG=\(flagsArgument)")
        switch hook {
        case .tracepoint:
            program.flags.append("-DCOUNT_TRACEPOINT")
            // Raw, the program reads the socket's kind at offsets it must be able to trust.
            if program.offsetSource == .btf {
                program.flags.append("-DRAW_COUNTING")
                program.offsets += MemberOffset.socketKind
            } else {
                program.notes.append("sock_send_length/sock_recv_length as tracepoints, not raw: offsets from headers")
            }
        case .kprobe: program.flags.append("-DCOUNT_KPROBE")
        case .fentry: program.flags.append("-DCOUNT_FENTRY")
        }
        guard wanted else {
            program.notes.append("peers of unconnected sockets off (Options.peers)")
            return (hook, flagsArgument, false)
        }
        let peers = features.cgroupUDPAddresses
        if peers.isYes {
            program.flags.append("-DPEERS_CGROUP")
        } else {
            program.notes.append("no peers for unconnected UDP sockets: \(peers)")
        }
        return (hook, flagsArgument, peers.isYes)
    }

    public static func plan(_ configuration: Configuration, features: KernelFeatures, into program: inout ProgramPlan)
        throws(BPFError) -> Hooks
    {
        let options = configuration.options
        program.text = EmbeddedBPF.udpEvents
        program.headers = EmbeddedBPF.headers
        program.offsets = MemberOffset.socketEndpoints + MemberOffset.taskNames
        program.flags.append("-DMAX_FLOWS=\(options.maxFlows)")
        let datagrams = try planDatagrams(options.hook, peers: options.peers, features: features, into: &program)
        let closeHook = chooseCloseHook(options.closeHook, features: features, notes: &program.notes)
        switch closeHook {
        case .cgroup: program.flags.append("-DCLOSE_CGROUP")
        case .kprobe: program.flags.append("-DCLOSE_KPROBE")
        case .none: break
        }
        var hooks = Hooks(hook: datagrams.hook, closeHook: closeHook, receiveFlagsArgument: datagrams.receiveFlagsArgument)
        hooks.peers = datagrams.peers
        hooks.socketCookies = SocketCookies.plan(features: features, into: &program)
        return hooks
    }

    public static func attach(_ hooks: Hooks, module: BPFModule, links: inout [BPFLink]) throws(BPFError) {
        if hooks.socketCookies { try SocketCookies.attach(module: module, links: &links, passiveOpens: false) }
        // The close hook first: a socket counted must never close unseen.
        switch hooks.closeHook {
        case .cgroup:
            guard let root = SystemChecks.cgroup2Path else {
                throw .notSupported(feature: "cgroup sock_release", minimumKernel: "5.9", reason: "no cgroup v2 hierarchy is mounted")
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
        try attachDatagrams(hooks.hook, peers: hooks.peers, module: module, links: &links)
    }

    /// Attaches what ``planDatagrams(_:features:into:)`` planned: the peer programs first (a
    /// datagram counted must find its peer), then the hook that sees each datagram.
    package static func attachDatagrams(_ hook: Hook, peers: Bool, module: BPFModule, links: inout [BPFLink]) throws(BPFError) {
        if peers {
            guard let root = SystemChecks.cgroup2Path else {
                throw .notSupported(feature: "cgroup UDP sendmsg/recvmsg", minimumKernel: "5.2", reason: "no cgroup v2 hierarchy is mounted")
            }
            let programs: [(String, CgroupAttachType)] = [
                ("ne_peer_sendmsg4", .udp4SendMessage), ("ne_peer_sendmsg6", .udp6SendMessage),
                ("ne_peer_recvmsg4", .udp4ReceiveMessage), ("ne_peer_recvmsg6", .udp6ReceiveMessage),
            ]
            for (name, type) in programs {
                let program = try module.loadProgram(name, type: .cgroupSockAddr, expectedAttachType: type.rawValue)
                links.append(try BPFLink.cgroup(program, path: root, type: type))
            }
        }
        switch hook {
        case .tracepoint:
            for name in ["sock_send_length", "sock_recv_length"] {
                links.append(try module.attachTracepoint(category: "sock", name: name))  // raw with RAW_COUNTING
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
    }

    private static func hasFunction(_ name: String) -> Bool {
        (try? KernelBTF.vmlinux().hasFunction(name)) ?? true
    }
}
