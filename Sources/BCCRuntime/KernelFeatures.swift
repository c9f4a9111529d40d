import CLibBPF
import Foundation
import Synchronization
import SystemPackage

/// Probes of what the running kernel supports. Conclusive answers are cached; "could not tell"
/// (for example, when not privileged enough to try) is asked again next time.
///
/// Hooks are chosen by what these probes find, never by the kernel's version: distributions
/// backport features and disable others (kprobes, BPF trampolines under lockdown), so a version
/// says little about what loads.
public final class KernelFeatures: Sendable {
    /// The answer to a probe.
    public enum Answer: Sendable, Equatable, CustomStringConvertible {
        /// The kernel has it.
        case yes
        /// The kernel does not have it; `reason` says what the probe found.
        case no(reason: String)
        /// The probe itself failed (not root, tracefs missing): ask again later.
        case unknown(reason: String)

        /// No, without a reason (for comparisons: answers compare by kind, not reason).
        public static let no = Answer.no(reason: "")

        /// Only `.yes` and `.no` are conclusive.
        public var isConclusive: Bool { if case .unknown = self { return false } else { return true } }
        /// Whether the answer is `.yes`.
        public var isYes: Bool { self == .yes }

        public static func == (lhs: Answer, rhs: Answer) -> Bool {
            switch (lhs, rhs) {
            case (.yes, .yes), (.no, .no), (.unknown, .unknown): return true
            default: return false
            }
        }

        public var description: String {
            switch self {
            case .yes: return "yes"
            case .no(let reason): return reason.isEmpty ? "no" : "no (\(reason))"
            case .unknown(let reason): return "unknown (\(reason))"
            }
        }
    }

    /// The probes of the running kernel, shared by the process.
    public static let shared = KernelFeatures()

    private let cache = Locked<[String: Answer]>([:])

    /// Probes with an empty cache (``shared`` is the process-wide one).
    public init() {}

    private func cached(_ key: String, _ probe: () -> Answer) -> Answer {
        if let answer = cache.withLock({ $0[key] }) { return answer }
        let answer = probe()
        if answer.isConclusive { cache.withLock { $0[key] = answer } }
        return answer
    }

    /// Whether the kernel exposes BTF at `/sys/kernel/btf/vmlinux` (Linux 5.4+, `CONFIG_DEBUG_INFO_BTF`).
    public var btf: Answer {
        cached("btf") {
            access(KernelBTF.vmlinuxPath, R_OK) == 0 ? .yes : .no(reason: "no \(KernelBTF.vmlinuxPath)")
        }
    }

    /// Whether kprobes can be created (`CONFIG_KPROBES` with the kprobe PMU or kprobe_events).
    public var kprobes: Answer {
        cached("kprobes") {
            if SystemChecks.isAccessible("/sys/bus/event_source/devices/kprobe/type") { return .yes }
            guard let tracefs = SystemChecks.tracefsPath else {
                return .unknown(reason: "no kprobe PMU and tracefs is not mounted")
            }
            return SystemChecks.isAccessible(tracefs + "/kprobe_events")
                ? .yes : .no(reason: "the kernel was built without CONFIG_KPROBES")
        }
    }

    /// Whether the tracepoint `category:name` exists.
    public func tracepoint(_ category: String, _ name: String) -> Answer {
        cached("tracepoint:\(category):\(name)") {
            guard let tracefs = SystemChecks.tracefsPath else { return .unknown(reason: "tracefs is not mounted") }
            return SystemChecks.isAccessible("\(tracefs)/events/\(category)/\(name)")
                ? .yes : .no(reason: "no tracepoint \(category):\(name)")
        }
    }

    /// Whether the kernel supports BPF ring buffers (Linux 5.8+), by creating one.
    public var ringBuffer: Answer {
        cached("ringbuf") {
            let result = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nil)
            if result == 1 { return .yes }
            if result == 0 { return .no(reason: "the kernel has no BPF_MAP_TYPE_RINGBUF (Linux 5.8+)") }
            return .unknown(reason: "probe failed: \(Errno(rawValue: -result).withNumber)")
        }
    }

    /// Whether an fentry program on `function` loads and attaches, by loading a two-instruction
    /// one and attaching it through a BPF trampoline, then detaching it at once.
    ///
    /// fentry needs Linux 5.5+ on x86-64 (later on other architectures) with BTF, and some kernels still refuse
    /// it with `EPERM` even to root: kernel lockdown, or a security module restricting BPF
    /// tracing. Loading alone is not enough to tell: a kernel may accept the program and then
    /// fail to build the trampoline (`ENOTSUPP`), so the probe attaches it as
    /// ``BPFLink/kfunc(_:)`` would (`BPF_RAW_TRACEPOINT_OPEN`).
    /// - Parameter function: the kernel function to probe, one the caller means to hook.
    /// - Returns: `.yes`; `.no` naming the step that failed, its errno and what to do about it;
    ///   `.unknown` without CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN).
    public func fentry(_ function: String = "tcp_set_state") -> Answer {
        cached("fentry:\(function)") {
            guard SystemChecks.holds([.programs, .tracing]) else {
                return .unknown(reason: "probing fentry needs CAP_BPF and CAP_PERFMON")
            }
            guard let btf = try? KernelBTF.vmlinux() else { return .no(reason: "no kernel BTF") }
            guard let id = btf.functionID(function) else { return .no(reason: "no BTF for function \(function)") }
            var options = bpf_prog_load_opts()
            options.sz = MemoryLayout<bpf_prog_load_opts>.size
            options.expected_attach_type = BPF_TRACE_FENTRY
            options.attach_btf_id = UInt32(id)
            let (program, loadError) = Self.loadTrivialProgram(BPF_PROG_TYPE_TRACING, name: "probe_fentry", options: &options)
            guard program >= 0 else {
                return .no(reason: "loading an fentry program on \(function) failed: \(loadError.withNumber)\(Self.fentryHint(loadError))")
            }
            defer { close(program) }
            let link = bpf_raw_tracepoint_open(nil, program)
            let attachError = Errno.current
            guard link >= 0 else {
                return .no(reason: "attaching an fentry program to \(function) failed: \(attachError.withNumber)\(Self.fentryHint(attachError))")
            }
            close(link)
            return .yes
        }
    }

    /// What to do about an fentry failure, for the probe's reason.
    private static func fentryHint(_ code: Errno) -> String {
        switch code.rawValue {
        case EPERM, EACCES:
            return "; the kernel refuses BPF trampolines even to root (kernel lockdown, see dmesg and "
                + "/sys/kernel/security/lockdown, or a security module restricting BPF tracing): use the tracepoint or kprobe hook"
        case 524:  // ENOTSUPP, kernel-internal: no trampoline for this architecture or function.
            return "; this kernel cannot build BPF trampolines here (needs CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS): "
                + "use the tracepoint or kprobe hook"
        case EINVAL:
            return "; the kernel does not support fentry (Linux 5.5+ with BTF) or cannot trace this function"
        default:
            return ""
        }
    }

    /// Whether a cgroup `sock_release` program can run: a cgroup v2 hierarchy is mounted
    /// (``SystemChecks/cgroup2Path``) and a `BPF_PROG_TYPE_CGROUP_SOCK` program with expected
    /// attach type `BPF_CGROUP_INET_SOCK_RELEASE` loads (a two-instruction one: `r0 = 1; exit`).
    ///
    /// Minimum kernel: 5.9. Only the loading half is cached: a hierarchy may be mounted later.
    /// The probe does not attach, which would briefly run the program on every socket release.
    /// - Returns: `.yes`; `.no` saying what is missing; `.unknown` without CAP_BPF and
    ///   CAP_NET_ADMIN (or CAP_SYS_ADMIN).
    public var cgroupSocketRelease: Answer {
        cgroupProgramLoads(
            key: "cgroupSockRelease", type: BPF_PROG_TYPE_CGROUP_SOCK, attach: BPF_CGROUP_INET_SOCK_RELEASE, what: "cgroup sock_release",
            minimumKernel: "5.9")
    }

    /// Whether cgroup `sendmsg`/`recvmsg` programs can see the addresses of UDP sends and
    /// receives: a cgroup v2 hierarchy is mounted and a `BPF_PROG_TYPE_CGROUP_SOCK_ADDR` program
    /// with expected attach type `BPF_CGROUP_UDP6_RECVMSG` loads.
    ///
    /// Minimum kernel: 5.2 (recvmsg; sendmsg is 4.18). Only the loading half is cached.
    /// - Returns: `.yes`; `.no` saying what is missing; `.unknown` without CAP_BPF and
    ///   CAP_NET_ADMIN (or CAP_SYS_ADMIN).
    public var cgroupUDPAddresses: Answer {
        cgroupProgramLoads(
            key: "cgroupUDPAddresses", type: BPF_PROG_TYPE_CGROUP_SOCK_ADDR, attach: BPF_CGROUP_UDP6_RECVMSG, what: "cgroup recvmsg",
            minimumKernel: "5.2")
    }

    /// Whether a cgroup v2 hierarchy is mounted and a two-instruction program (`r0 = 1; exit`) of
    /// `type` with expected attach type `attach` loads. Kernels that do not know the attach type
    /// answer EINVAL. Only the loading half is cached under `key`: a hierarchy may be mounted later.
    private func cgroupProgramLoads(key: String, type: bpf_prog_type, attach: bpf_attach_type, what: String, minimumKernel: String) -> Answer {
        guard SystemChecks.cgroup2Path != nil else {
            return .no(reason: "no cgroup v2 hierarchy is mounted (mount one: `mount -t cgroup2 none /sys/fs/cgroup/unified`)")
        }
        return cached(key) {
            guard SystemChecks.holds([.programs, .cgroupPrograms]) else {
                return .unknown(reason: "probing \(what) programs needs CAP_BPF and CAP_NET_ADMIN")
            }
            var options = bpf_prog_load_opts()
            options.sz = MemoryLayout<bpf_prog_load_opts>.size
            options.expected_attach_type = attach
            let (program, code) = Self.loadTrivialProgram(type, name: "probe_cgroup", returning: 1, options: &options)
            guard program >= 0 else {
                return .no(reason: "loading a \(what) program failed: \(code.withNumber) (needs Linux \(minimumKernel)+)")
            }
            close(program)
            return .yes
        }
    }

    /// Whether the kernel's socket cookies can be given to every socket as it is made, so that
    /// tracing programs can read them (`sock_common.skc_cookie`, which the kernel fills only on
    /// first request): a cgroup v2 hierarchy is mounted, and both a cgroup `sock_create` program
    /// and a `sock_ops` program that call `bpf_get_socket_cookie` load.
    ///
    /// Minimum kernel: 4.19 for `sock_ops`, and the cookie helper in cgroup socket programs
    /// (5.x). Only the loading half is cached.
    /// - Returns: `.yes`; `.no` saying what is missing; `.unknown` without CAP_BPF and
    ///   CAP_NET_ADMIN (or CAP_SYS_ADMIN).
    public var socketCookies: Answer {
        guard SystemChecks.cgroup2Path != nil else {
            return .no(reason: "no cgroup v2 hierarchy is mounted (mount one: `mount -t cgroup2 none /sys/fs/cgroup/unified`)")
        }
        return cached("socketCookies") {
            guard SystemChecks.holds([.programs, .cgroupPrograms]) else {
                return .unknown(reason: "probing socket cookie programs needs CAP_BPF and CAP_NET_ADMIN")
            }
            for (type, attach, name) in [
                (BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE, "sock_create"), (BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, "sock_ops"),
            ] {
                var options = bpf_prog_load_opts()
                options.sz = MemoryLayout<bpf_prog_load_opts>.size
                options.expected_attach_type = attach
                let (program, code) = Self.loadTrivialProgram(
                    type, name: "probe_cookie", returning: 1, callingHelper: Self.getSocketCookieHelper, options: &options)
                guard program >= 0 else {
                    return .no(reason: "loading a cgroup \(name) program that asks for socket cookies failed: \(code.withNumber)")
                }
                close(program)
            }
            return .yes
        }
    }

    /// `BPF_FUNC_get_socket_cookie`, stable kernel ABI.
    private static let getSocketCookieHelper: Int32 = 46

    /// Loads `r0 = value; exit` as a program of `type`, with a call of `helper` (its one argument
    /// the context, already in r1) first when one is given.
    /// - Returns: the program's descriptor (negative on failure) and errno, read right after the load.
    private static func loadTrivialProgram(
        _ type: bpf_prog_type, name: String, returning value: Int32 = 0, callingHelper helper: Int32? = nil,
        options: inout bpf_prog_load_opts
    ) -> (fd: Int32, errno: Errno) {
        var instructions: [bpf_insn] = []
        if let helper {
            var call = bpf_insn()
            call.code = 0x85  // BPF_JMP | BPF_CALL: r0 = helper(r1, ...)
            call.imm = helper
            instructions.append(call)
        }
        var move = bpf_insn()
        move.code = 0xb7  // BPF_ALU64 | BPF_MOV | BPF_K: r0 = imm
        move.imm = value
        var exit = bpf_insn()
        exit.code = 0x95  // BPF_JMP | BPF_EXIT
        instructions += [move, exit]
        // libbpf sets errno as well as returning -errno.
        let fd = bpf_prog_load(type, name, "GPL", &instructions, instructions.count, &options)
        let code = Errno.current
        return (fd, code)
    }

    /// A one-line summary of every probe, for attach reports and bug reports.
    public var summary: String {
        [
            "kernel \(KernelVersion.running)",
            "btf: \(btf)",
            "kprobes: \(kprobes)",
            "ringbuf: \(ringBuffer)",
            "fentry: \(fentry())",
            "cgroup sock_release: \(cgroupSocketRelease)",
            "socket cookies: \(socketCookies)",
            "cgroup UDP addresses: \(cgroupUDPAddresses)",
        ].joined(separator: ", ")
    }
}
