import Glibc
import SystemPackage

/// Everything the runtime can fail with, each case naming what went wrong and, where there is one,
/// the fix.
///
/// Every public throwing API of the runtime throws exactly this type (`throws(BPFError)`), so a
/// caller can switch over the cases without a cast. Cases that come from a failed system call
/// carry its `errno` as swift-system's `Errno`, read right after the call.
public enum BPFError: Error, Sendable, Equatable {
    /// The process lacks the privilege to load eBPF programs.
    ///
    /// The fix: run as root, or grant `CAP_BPF` and `CAP_PERFMON`, plus `CAP_NET_ADMIN` where
    /// cgroup v2 is mounted and `CAP_DAC_READ_SEARCH` as a user other than root.
    case notPrivileged(operation: String)

    /// The process lacks capabilities `operation` needs: `missing`, each with what it is for, out
    /// of the whole set `required`.
    ///
    /// The fix: run as root, or grant exactly `required` (the description gives the `setpriv`
    /// and `setcap` commands).
    case missingCapabilities(operation: String, missing: [CapabilityNeed], required: [Capability])

    /// The running kernel lacks a feature.
    ///
    /// `minimumKernel` is the first mainline version with it, when one is known; `reason` is what
    /// the probe found.
    case notSupported(feature: String, minimumKernel: String?, reason: String)

    /// BCC's clang front end rejected the program; `diagnostics` is what clang printed.
    case compileFailed(diagnostics: String)

    /// The kernel refused to load a program.
    ///
    /// `verifierLog` is the verifier's explanation (empty when the kernel gave none). `EACCES`
    /// usually means the verifier rejected the code; `EPERM` for root means the kernel refuses the
    /// program type itself (lockdown, or a security module).
    case loadFailed(program: String, errno: Errno, verifierLog: String)

    /// A loaded program could not be attached to its hook (`target`, e.g. `kprobe tcp_set_state`).
    case attachFailed(target: String, errno: Errno)

    /// No kernel header tree was found for BCC to compile against; `searched` lists where the
    /// runtime looked.
    ///
    /// The fix: install the distribution's kernel headers or set `BCC_KERNEL_SOURCE`.
    case headersMissing(searched: [String])

    /// tracefs is not mounted, so tracepoints cannot be found or attached.
    ///
    /// The fix: `mount -t tracefs nodev /sys/kernel/tracing`.
    case tracefsNotMounted

    /// The kernel has no BTF to take struct offsets from, and the only headers (`headers`) are
    /// not the running kernel's (`running`): offsets from them may be wrong, and so would every
    /// field read through them. Refused unless the configuration accepts estimates.
    ///
    /// The fix: a kernel with BTF, this kernel's headers, or accepting estimated offsets.
    case untrustedOffsets(headers: String, running: String)

    /// A map operation (`operation`: lookup, update, delete, iterate, ...) failed.
    case mapOperationFailed(map: String, operation: String, errno: Errno)

    /// A perf or ring buffer over the map `map` could not be opened.
    case bufferFailed(map: String, errno: Errno)

    /// Something that runs once was started a second time; the payload names it, e.g.
    /// `perf buffer events`.
    ///
    /// The fix: close it first, or make a new one.
    case alreadyStarted(String)

    /// A file-system operation failed.
    ///
    /// `operation` says what was being done to `path` (e.g. `create the directory`); `errno` is
    /// nil when the failure came from a helper process rather than a system call (then
    /// `operation` carries its exit status).
    case fileSystemFailed(path: String, operation: String, errno: Errno?)

    /// A system call that is not about eBPF failed: a `pipe` or `pthread_create` the readers need.
    ///
    /// `call` is the C function's name, `purpose` what it was for (e.g. `the poll thread of perf
    /// buffer events`).
    case systemCallFailed(call: String, purpose: String, errno: Errno)

    /// The program has no table or function of this name.
    case noSuchObject(kind: String, name: String)

    /// BTF is missing, or lacks a type or member a program needs.
    case btf(String)

    /// An argument or option was invalid; the message names it and the values it may take.
    case invalidArgument(String)

    /// A shared library the runtime opens when it first needs it could not be opened, or lacks a
    /// function the runtime calls: `name`, with the dynamic loader's `reason`.
    ///
    /// The fix: install BCC's library (`apt-get install libbpfcc` on Debian and Ubuntu,
    /// `dnf install bcc` on Fedora).
    case libraryMissing(name: String, reason: String)

    /// A raw sample did not match the layout the decoder expects.
    case malformedSample(expectedSize: Int, actualSize: Int, detail: String)
}

extension BPFError: CustomStringConvertible {
    /// What went wrong and, where there is one, the fix, in one message for a person.
    public var description: String {
        switch self {
        case .notPrivileged(let operation):
            // The README's set, as CapabilityNeed.monitors(cgroupPrograms:tracefsClosedToUser:) picks it.
            return "\(operation) needs privileges this process lacks: run it as root, or with "
                + "\(CapabilityNeed.programs.capability.name) and \(CapabilityNeed.tracing.capability.name), "
                + "plus \(CapabilityNeed.cgroupPrograms) where cgroup v2 is mounted "
                + "and \(CapabilityNeed.tracefs) as a user other than root"
        case .missingCapabilities(let operation, let missing, let required):
            return Self.missingCapabilitiesDescription(operation: operation, missing: missing, required: required)
        case .notSupported(let feature, let minimumKernel, let reason):
            let version = minimumKernel.map { " (needs Linux \($0) or later)" } ?? ""
            return "\(feature) is not supported by this kernel\(version): \(reason)"
        case .compileFailed(let diagnostics):
            return "the eBPF program failed to compile:\n\(diagnostics)"
        case .loadFailed(let program, let code, let log):
            var text = "the kernel refused to load \(program): \(code.withNumber)"
            switch code {
            case .permissionDenied where log.isEmpty:
                text += " (the verifier rejected the program)"
            case .notPermitted where geteuid() == 0:
                text += " (the kernel refuses this program type even to root: kernel lockdown or a security module restricting BPF; see dmesg)"
            case .argListTooLong:
                text += " (the program is too large for this kernel's verifier: split it or simplify it)"
            default:
                break
            }
            return log.isEmpty ? text : "\(text)\nverifier log:\n\(log)"
        case .attachFailed(let target, let code):
            var text = "could not attach to \(target): \(code.withNumber)"
            if target.hasPrefix("kprobe") || target.hasPrefix("kretprobe") {
                text += " (is CONFIG_KPROBES set, and the function traceable? see /sys/kernel/tracing/available_filter_functions)"
            } else if code == .resourceBusy {
                text += " (another program holds this hook: detach it first)"
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
        case .untrustedOffsets(let headers, let running):
            return """
                no kernel BTF (/sys/kernel/btf/vmlinux) to take struct offsets from, and the only kernel headers are \(headers), \
                not this kernel's (\(running)): offsets from them may be wrong, and so would every field read through them \
                (bytes, addresses, namespaces). Fix: a kernel built with CONFIG_DEBUG_INFO_BTF=y; or this kernel's headers \
                (`apt-get install linux-headers-\(running)`, or CONFIG_IKHEADERS); or accept estimates with \
                --accept-estimated-offsets (MonitorConfiguration.acceptsEstimatedOffsets), and every event then carries \
                offsets_estimated: true
                """
        case .mapOperationFailed(let map, let operation, let code):
            var text = "\(operation) on map \(map) failed: \(code.withNumber)"
            if code == .argListTooLong && operation == "update" {
                text += " (the map is full: raise its max_entries)"
            }
            return text
        case .bufferFailed(let map, let code):
            var text = "could not open the buffer of \(map): \(code.withNumber)"
            if code == .noMemory {
                text += " (use fewer pages per CPU, or raise RLIMIT_MEMLOCK on kernels before 5.11)"
            } else if code == .tooManyOpenFiles {
                text += " (raise the open file limit: `ulimit -n`)"
            }
            return text
        case .alreadyStarted(let what):
            return "\(what) is already started: close it first, or make a new one"
        case .fileSystemFailed(let path, let operation, let code):
            var text = "could not \(operation) \(path)"
            guard let code else { return text }
            text += ": \(code.withNumber)"
            switch code {
            case .permissionDenied, .notPermitted:
                text += " (check the permissions of \(path), or run as root)"
            case .readOnlyFileSystem:
                text += " (the file system is read-only: choose a writable directory)"
            case .noSpace:
                text += " (the file system is full)"
            default:
                break
            }
            return text
        case .systemCallFailed(let call, let purpose, let code):
            var text = "\(call) failed for \(purpose): \(code.withNumber)"
            switch code {
            case .resourceTemporarilyUnavailable, .noMemory:
                text += " (the process hit its thread or memory limit: check `ulimit -u` and available memory)"
            case .tooManyOpenFiles, .tooManyOpenFilesInSystem:
                text += " (raise the open file limit: `ulimit -n`)"
            default:
                break
            }
            return text
        case .noSuchObject(let kind, let name):
            return "the program has no \(kind) named \(name)"
        case .libraryMissing(let name, let reason):
            return """
                could not open \(name), BCC's library, which compiles and loads the eBPF programs (\(reason)): \
                install it, or a BCC release with this function, with `apt-get install libbpfcc` (Debian, Ubuntu) \
                or `dnf install bcc` (Fedora)
                """
        case .btf(let message):
            return "BTF: \(message)"
        case .invalidArgument(let message):
            return message
        case .malformedSample(let expected, let actual, let detail):
            return "malformed sample: \(actual) bytes, expected \(expected): \(detail)"
        }
    }
}

extension Errno {
    /// `Operation not permitted (errno 1)`: the C library's message and the number, the one way
    /// every runtime message spells an errno.
    var withNumber: String { "\(description) (errno \(rawValue))" }

    /// The calling thread's `errno`. Read it as the first thing after the failing call: any other
    /// call in between, including Swift's own allocations, may change it.
    static var current: Errno { Errno(rawValue: errno) }
}

extension BPFError {
    /// Maps an errno from a privileged operation: EPERM/EACCES become `.notPrivileged` when the
    /// process is not root or lacks `CAP_BPF`/`CAP_PERFMON` (root without capabilities is not
    /// privileged), anything else goes through `otherwise`.
    static func privileged(_ code: Errno, operation: String, otherwise: (Errno) -> BPFError) -> BPFError {
        if (code == .notPermitted || code == .permissionDenied) && (geteuid() != 0 || !SystemChecks.holds([.programs, .tracing])) {
            return .notPrivileged(operation: operation)
        }
        return otherwise(code)
    }
}
