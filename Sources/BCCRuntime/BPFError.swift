import Glibc

/// Everything the runtime can fail with, each case naming what went wrong and, where there is one,
/// the fix.
public enum BPFError: Error, Sendable, Equatable {
    /// The process lacks the privilege to load eBPF programs (run as root, or grant
    /// `CAP_BPF` and `CAP_PERFMON`).
    case notPrivileged(operation: String)
    /// The running kernel lacks a feature. `minimumKernel` is the first mainline version with it.
    case notSupported(feature: String, minimumKernel: String?, reason: String)
    /// BCC's clang front end rejected the program; `diagnostics` is what clang printed.
    case compileFailed(diagnostics: String)
    /// The kernel refused to load a program; `verifierLog` is the verifier's explanation.
    case loadFailed(program: String, errno: Int32, verifierLog: String)
    /// A program loaded but could not be attached to its hook.
    case attachFailed(target: String, errno: Int32)
    /// No kernel header tree was found for BCC to compile against.
    case headersMissing(searched: [String])
    /// tracefs is not mounted, so tracepoints cannot be found or attached.
    case tracefsNotMounted
    /// A map operation failed.
    case mapOperationFailed(map: String, operation: String, errno: Int32)
    /// A perf or ring buffer could not be opened or polled.
    case bufferFailed(map: String, errno: Int32)
    /// The program has no table or function of this name.
    case noSuchObject(kind: String, name: String)
    /// BTF is missing, or lacks a type or member a program needs.
    case btf(String)
    /// An argument or option was invalid.
    case invalidArgument(String)
    /// A raw sample did not match the layout the decoder expects.
    case malformedSample(expectedSize: Int, actualSize: Int, detail: String)
}

extension BPFError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .notPrivileged(let operation):
            return "\(operation) needs root (or CAP_BPF and CAP_PERFMON): run with sudo"
        case .notSupported(let feature, let minimumKernel, let reason):
            let version = minimumKernel.map { " (needs Linux \($0) or later)" } ?? ""
            return "\(feature) is not supported by this kernel\(version): \(reason)"
        case .compileFailed(let diagnostics):
            return "the eBPF program failed to compile:\n\(diagnostics)"
        case .loadFailed(let program, let code, let log):
            let tail = log.isEmpty ? "" : "\nverifier log:\n\(log)"
            return "the kernel refused to load \(program): \(errnoName(code))\(tail)"
        case .attachFailed(let target, let code):
            var text = "could not attach to \(target): \(errnoName(code))"
            if target.hasPrefix("kprobe") || target.hasPrefix("kretprobe") {
                text += " (is CONFIG_KPROBES set, and the function traceable? see /sys/kernel/tracing/available_filter_functions)"
            }
            return text
        case .headersMissing(let searched):
            return """
                no kernel headers for BCC to compile against (looked in \(searched.joined(separator: ", "))): \
                install them with `apt-get install linux-headers-amd64` (or linux-headers-$(uname -r)), \
                or point BCC_KERNEL_SOURCE at a header tree
                """
        case .tracefsNotMounted:
            return "tracefs is not mounted: run `mount -t tracefs nodev /sys/kernel/tracing`"
        case .mapOperationFailed(let map, let operation, let code):
            return "\(operation) on map \(map) failed: \(errnoName(code))"
        case .bufferFailed(let map, let code):
            return "could not open the buffer of \(map): \(errnoName(code))"
        case .noSuchObject(let kind, let name):
            return "the program has no \(kind) named \(name)"
        case .btf(let message):
            return "BTF: \(message)"
        case .invalidArgument(let message):
            return message
        case .malformedSample(let expected, let actual, let detail):
            return "malformed sample: \(actual) bytes, expected \(expected): \(detail)"
        }
    }
}

/// `EPERM (Operation not permitted)`.
func errnoName(_ code: Int32) -> String {
    let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EINVAL: "EINVAL", EACCES: "EACCES", EBUSY: "EBUSY",
        EEXIST: "EEXIST", ENOSPC: "ENOSPC", ENOMEM: "ENOMEM", E2BIG: "E2BIG", ENOTSUP: "ENOTSUP",
        ESRCH: "ESRCH", EBADF: "EBADF", EFAULT: "EFAULT", ENODEV: "ENODEV",
    ]
    let message = String(cString: strerror(code))
    return "\(names[code] ?? "errno \(code)") (\(message))"
}

extension BPFError {
    /// Maps an errno from a privileged operation: EPERM/EACCES when not root become
    /// `.notPrivileged`, anything else goes through `otherwise`.
    static func privileged(_ code: Int32, operation: String, otherwise: (Int32) -> BPFError) -> BPFError {
        if (code == EPERM || code == EACCES) && geteuid() != 0 {
            return .notPrivileged(operation: operation)
        }
        return otherwise(code)
    }
}
