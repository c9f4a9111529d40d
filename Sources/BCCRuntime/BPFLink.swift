import CBCCLoader
import CLibBPF
import Glibc
import Synchronization
import SystemPackage

/// An attached program. `close()` detaches it; it is safe to call twice and also runs on deinit.
///
/// Each hook has its own constructor, which checks the hook exists first and throws a typed
/// error naming it when it cannot attach.
public final class BPFLink: Sendable {
    /// What the program is attached to, e.g. `tracepoint sock:inet_sock_set_state`.
    public let target: String
    /// The program, kept alive while attached.
    public let program: BPFProgram
    private let state: Locked<(fd: Int32, eventName: String?)>

    private init(target: String, program: BPFProgram, fd: Int32, eventName: String? = nil) {
        self.target = target
        self.program = program
        self.state = Locked((fd, eventName))
    }

    /// Whether the link is still attached.
    public var isAttached: Bool { state.withLock { $0.fd >= 0 } }

    /// Detaches the program. Safe to call more than once.
    public func close() {
        state.withLock { state in
            guard state.fd >= 0 else { return }
            Glibc.close(state.fd)
            if let name = state.eventName { _ = LibBCC.functions.bpf_detach_kprobe(name) }
            state.fd = -1
        }
    }

    deinit { close() }

    /// Attaches a ``ProgramType/tracepoint`` program to `category:name`.
    ///
    /// Minimum kernel: 4.7.
    /// - Throws: `BPFError.tracefsNotMounted`, `.notSupported` when the tracepoint does not exist,
    ///   `.notPrivileged`, or `.attachFailed`.
    public static func tracepoint(_ program: BPFProgram, category: String, name: String) throws(BPFError) -> BPFLink {
        let target = "tracepoint \(category):\(name)"
        guard let tracefs = SystemChecks.tracefsPath else { throw BPFError.tracefsNotMounted }
        guard SystemChecks.isAccessible("\(tracefs)/events/\(category)/\(name)") else {
            throw BPFError.notSupported(feature: target, minimumKernel: nil, reason: "this kernel has no such tracepoint")
        }
        let fd = LibBCC.functions.bpf_attach_tracepoint(program.fd, category, name)
        guard fd >= 0 else { throw attachError(target, .current) }
        return BPFLink(target: target, program: program, fd: fd)
    }

    /// Attaches a ``ProgramType/rawTracepoint`` program to the raw tracepoint `name`.
    ///
    /// Minimum kernel: 4.17.
    /// - Throws: `BPFError.notPrivileged` or `.attachFailed`.
    public static func rawTracepoint(_ program: BPFProgram, name: String) throws(BPFError) -> BPFLink {
        let fd = LibBCC.functions.bpf_attach_raw_tracepoint(program.fd, name)
        guard fd >= 0 else { throw attachError("raw tracepoint \(name)", .current) }
        return BPFLink(target: "raw tracepoint \(name)", program: program, fd: fd)
    }

    private static let kprobeCounter = Atomic<Int>(0)

    /// Attaches a ``ProgramType/kprobe`` program to the entry (or, with `isReturn`, the return) of
    /// the kernel function `function`.
    ///
    /// Minimum kernel: 4.1, built with `CONFIG_KPROBES`.
    /// - Throws: `BPFError.notSupported` when the kernel has no kprobes, `.notPrivileged`, or
    ///   `.attachFailed` (for instance when the function does not exist or is not traceable).
    public static func kprobe(_ program: BPFProgram, function: String, isReturn: Bool = false) throws(BPFError) -> BPFLink {
        let target = "\(isReturn ? "kretprobe" : "kprobe") \(function)"
        if KernelFeatures.shared.kprobes == .no {
            throw BPFError.notSupported(feature: target, minimumKernel: "4.1", reason: "the kernel was built without CONFIG_KPROBES")
        }
        let serial = kprobeCounter.add(1, ordering: .relaxed).newValue
        let eventName = "\(isReturn ? "r" : "p")_\(function)_\(getpid())_\(serial)"
        let fd = LibBCC.functions.bpf_attach_kprobe(
            program.fd, isReturn ? BPF_PROBE_RETURN : BPF_PROBE_ENTRY, eventName, function, 0, 0)
        guard fd >= 0 else { throw attachError(target, .current) }
        return BPFLink(target: target, program: program, fd: fd, eventName: eventName)
    }

    /// Attaches a ``ProgramType/tracing`` program (BCC's `KFUNC_PROBE`/`KRETFUNC_PROBE`, the
    /// kernel's fentry/fexit) to the function it was loaded for.
    ///
    /// Minimum kernel: 5.5, x86-64, with BTF. ``KernelFeatures/fentry(_:)`` tells beforehand
    /// whether this kernel lets such a program load and attach.
    /// - Throws: `BPFError.notPrivileged` or `.attachFailed`.
    public static func kfunc(_ program: BPFProgram) throws(BPFError) -> BPFLink {
        let function = program.name.split(separator: "__", maxSplits: 1).last.map(String.init) ?? program.name
        let target = "\(program.name.hasPrefix("kretfunc__") ? "fexit" : "fentry") \(function)"
        let fd = LibBCC.functions.bpf_attach_kfunc(program.fd)
        guard fd >= 0 else { throw attachError(target, .current) }
        return BPFLink(target: target, program: program, fd: fd)
    }

    /// Attaches a ``ProgramType/cgroupSock``, ``ProgramType/sockOps`` or ``ProgramType/cgroupSockAddr``
    /// program to the cgroup v2 directory `cgroupPath` (and so
    /// to every cgroup below it), through a BPF link that detaches when closed or when the process
    /// exits.
    ///
    /// Minimum kernel: 5.7 for cgroup links; ``CgroupAttachType/socketRelease`` needs 5.9
    /// (``KernelFeatures/cgroupSocketRelease`` probes for it).
    /// - Throws: `BPFError.fileSystemFailed` when `cgroupPath` cannot be opened as a directory,
    ///   `.notPrivileged`, or `.attachFailed`.
    public static func cgroup(_ program: BPFProgram, path cgroupPath: String, type: CgroupAttachType) throws(BPFError) -> BPFLink {
        let target = "cgroup \(type) \(cgroupPath)"
        let cgroup = open(cgroupPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard cgroup >= 0 else {
            throw BPFError.fileSystemFailed(path: cgroupPath, operation: "open the cgroup directory", errno: .current)
        }
        defer { Glibc.close(cgroup) }
        // libbpf sets errno as well as returning -errno, in its 0.x and 1.x modes alike.
        let fd = bpf_link_create(program.fd, cgroup, bpf_attach_type(rawValue: UInt32(type.rawValue)), nil)
        guard fd >= 0 else { throw attachError(target, .current) }
        return BPFLink(target: target, program: program, fd: fd)
    }

    private static func attachError(_ target: String, _ code: Errno) -> BPFError {
        BPFError.privileged(code, operation: "attaching to \(target)") { .attachFailed(target: target, errno: $0) }
    }
}

/// Where in a cgroup's socket life a ``ProgramType/cgroupSock`` (or ``ProgramType/sockOps``, or
/// ``ProgramType/cgroupSockAddr``) program runs.
public enum CgroupAttachType: Int32, Sendable, CustomStringConvertible {
    /// On `socket(2)` (`BPF_CGROUP_INET_SOCK_CREATE`). Linux 4.10+.
    case socketCreate = 2
    /// At points of a TCP connection's life, for ``ProgramType/sockOps`` programs
    /// (`BPF_CGROUP_SOCK_OPS`). Linux 4.13+.
    case socketOperations = 3
    /// When the socket is released (`BPF_CGROUP_INET_SOCK_RELEASE`). Linux 5.9+.
    case socketRelease = 34
    /// On an unconnected IPv4 UDP send, with its destination, for ``ProgramType/cgroupSockAddr``
    /// programs (`BPF_CGROUP_UDP4_SENDMSG`). Linux 4.18+.
    case udp4SendMessage = 14
    /// The same for IPv6 (`BPF_CGROUP_UDP6_SENDMSG`). Linux 4.18+.
    case udp6SendMessage = 15
    /// On an IPv4 UDP receive that asks for the source address, with it (`BPF_CGROUP_UDP4_RECVMSG`). Linux 5.2+.
    case udp4ReceiveMessage = 19
    /// The same for IPv6 (`BPF_CGROUP_UDP6_RECVMSG`). Linux 5.2+.
    case udp6ReceiveMessage = 20

    /// The name the kernel's documentation uses, e.g. `sock_release`.
    public var description: String {
        switch self {
        case .socketCreate: return "sock_create"
        case .socketOperations: return "sock_ops"
        case .socketRelease: return "sock_release"
        case .udp4SendMessage: return "sendmsg4"
        case .udp6SendMessage: return "sendmsg6"
        case .udp4ReceiveMessage: return "recvmsg4"
        case .udp6ReceiveMessage: return "recvmsg6"
        }
    }
}
