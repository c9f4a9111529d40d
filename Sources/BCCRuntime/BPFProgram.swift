import CLibBPF
import Glibc
import Synchronization

/// A program loaded into the kernel. Closing it releases the file descriptor; the kernel keeps the
/// program alive for as long as an attachment still uses it.
public final class BPFProgram: Sendable {
    /// The function's name in the C source.
    public let name: String
    /// The program type it was loaded as.
    public let type: ProgramType
    private let descriptor: Locked<Int32>

    init(fd: Int32, name: String, type: ProgramType) {
        self.descriptor = Locked(fd)
        self.name = name
        self.type = type
    }

    /// The program's file descriptor, or -1 once closed.
    public var fd: Int32 { descriptor.withLock { $0 } }

    /// Runs of the program the kernel skipped because an eBPF program was already running on
    /// that CPU (`bpf_prog_info.recursion_misses`): a tracepoint or kprobe program interrupted by
    /// a softirq (loopback packets are processed in one) whose work fires the same or another
    /// such program. Each skipped run is an event that was never made, or an owner not recorded.
    /// The kernel counts them for fentry programs from Linux 5.11, for tracepoint, raw tracepoint
    /// and kprobe programs only from 6.7; cgroup programs are never skipped (0). Nil once closed,
    /// and where the kernel skips runs without counting them.
    public var missedRuns: UInt64? {
        if [.tracepoint, .rawTracepoint, .kprobe].contains(type) && !KernelVersion.running.isAtLeast(6, 7) { return nil }
        return descriptor.withLock { fd -> UInt64? in
            guard fd >= 0 else { return nil }
            var info = bpf_prog_info()
            var length = UInt32(MemoryLayout<bpf_prog_info>.size)
            // A kernel older than the field fills less of the struct, and says so in `length`.
            guard bpf_obj_get_info_by_fd(fd, &info, &length) == 0,
                let offset = MemoryLayout<bpf_prog_info>.offset(of: \.recursion_misses),
                Int(length) >= offset + MemoryLayout<UInt64>.size
            else { return nil }
            return info.recursion_misses
        }
    }

    /// Releases the program. Safe to call more than once.
    public func close() {
        descriptor.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    deinit { close() }
}
