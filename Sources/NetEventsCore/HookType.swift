/// How a program meets the kernel: the three kinds of hook an event kind can count or report on.
///
/// Each kind says what it attaches for each (`TCPKind.Hook`, `UDPKind.Hook`) and the attach report
/// lists every attachment.
public enum HookType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Stable kernel tracepoints (`sock:inet_sock_set_state` 4.16+, `sock:sock_send_length` 6.3+).
    /// The preferred hook: cheap, and their arguments do not change between kernels.
    case tracepoint
    /// fentry/fexit on kernel functions. Minimum kernel: 5.5 on x86-64, with BTF; some kernels
    /// (locked down) refuse it even to root.
    case fentry
    /// kprobes on kernel functions (the reference system's path). Minimum kernel: 4.1, with
    /// `CONFIG_KPROBES`.
    case kprobe

    /// `tracepoint`, `fentry` or `kprobe`.
    public var description: String { rawValue }

    /// The configured hook, or the first in `ladder` whose probe answers yes; the answers of those
    /// passed over go to `notes`.
    /// - Throws: `BPFError.notSupported` naming every probe's answer when none answers yes.
    public static func choose(
        _ configured: HookType?, ladder: [(hook: HookType, probe: () -> KernelFeatures.Answer)], feature: String,
        minimumKernel: String, notes: inout [String]
    ) throws(BPFError) -> HookType {
        if let configured { return configured }
        var passed: [String] = []
        for step in ladder {
            let answer = step.probe()
            if answer.isYes {
                notes += passed
                return step.hook
            }
            passed.append("\(step.hook): \(answer)")
        }
        throw .notSupported(feature: feature, minimumKernel: minimumKernel, reason: "no usable hook: " + passed.joined(separator: "; "))
    }
}
