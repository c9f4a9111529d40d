import CLibBPF
import Foundation
import Synchronization

/// Probes of what the running kernel supports. Conclusive answers are cached; "could not tell"
/// (for example, when not privileged enough to try) is asked again next time.
public final class KernelFeatures: Sendable {
    /// The answer to a probe.
    public enum Answer: Sendable, Equatable, CustomStringConvertible {
        case yes
        case no(reason: String)
        /// The probe itself failed (not root, tracefs missing): ask again later.
        case unknown(reason: String)

        public static let no = Answer.no(reason: "")

        /// Only `.yes` and `.no` are conclusive.
        public var isConclusive: Bool { if case .unknown = self { return false } else { return true } }
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

    private let cache = Mutex<[String: Answer]>([:])

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
            if access("/sys/bus/event_source/devices/kprobe/type", F_OK) == 0 { return .yes }
            guard let tracefs = SystemChecks.tracefsPath else {
                return .unknown(reason: "no kprobe PMU and tracefs is not mounted")
            }
            return access(tracefs + "/kprobe_events", F_OK) == 0
                ? .yes : .no(reason: "the kernel was built without CONFIG_KPROBES")
        }
    }

    /// Whether the tracepoint `category:name` exists.
    public func tracepoint(_ category: String, _ name: String) -> Answer {
        cached("tracepoint:\(category):\(name)") {
            guard let tracefs = SystemChecks.tracefsPath else { return .unknown(reason: "tracefs is not mounted") }
            return access("\(tracefs)/events/\(category)/\(name)", F_OK) == 0
                ? .yes : .no(reason: "no tracepoint \(category):\(name)")
        }
    }

    /// Whether the kernel supports BPF ring buffers (Linux 5.8+), by creating one.
    public var ringBuffer: Answer {
        cached("ringbuf") {
            let result = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nil)
            if result == 1 { return .yes }
            if result == 0 { return .no(reason: "the kernel has no BPF_MAP_TYPE_RINGBUF (Linux 5.8+)") }
            return .unknown(reason: "probe failed: \(errnoName(-result))")
        }
    }

    /// Whether an fentry program on `function` loads, by loading a two-instruction one.
    ///
    /// fentry needs Linux 5.5+ on x86-64 with BTF, and some kernels (locked down, or with
    /// restricted BPF trampolines) still refuse it with EPERM even for root.
    public func fentry(_ function: String = "tcp_set_state") -> Answer {
        cached("fentry:\(function)") {
            guard geteuid() == 0 else { return .unknown(reason: "probing fentry needs root") }
            guard let btf = try? KernelBTF.vmlinux() else { return .no(reason: "no kernel BTF") }
            guard let id = btf.functionID(function) else { return .no(reason: "no BTF for function \(function)") }
            // r0 = 0; exit
            var instructions = [bpf_insn](repeating: bpf_insn(), count: 2)
            instructions[0].code = 0xb7
            instructions[1].code = 0x95
            var options = bpf_prog_load_opts()
            options.sz = MemoryLayout<bpf_prog_load_opts>.size
            options.expected_attach_type = BPF_TRACE_FENTRY
            options.attach_btf_id = UInt32(id)
            let fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "probe_fentry", "GPL", &instructions, 2, &options)
            if fd >= 0 {
                close(fd)
                return .yes
            }
            return .no(reason: "loading an fentry program on \(function) failed: \(errnoName(-fd == 0 ? errno : -fd))")
        }
    }

    /// A one-line summary of every probe, for attach reports and bug reports.
    public var summary: String {
        [
            "kernel \(KernelVersion.running)",
            "btf: \(btf)",
            "kprobes: \(kprobes)",
            "ringbuf: \(ringBuffer)",
            "fentry: \(fentry())",
        ].joined(separator: ", ")
    }
}
