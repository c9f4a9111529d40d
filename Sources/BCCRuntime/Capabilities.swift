import Foundation

/// A Linux capability: one of the slices of root's privilege that a process can hold without
/// being root (`capabilities(7)`), or lack while being root.
///
/// The kernel decides every eBPF permission by capability, not by user id: root with an empty
/// effective set cannot create a map, and user 65534 with the right set can trace.
public struct Capability: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The kernel's number for it (`CAP_BPF` is 39): its bit in the `CapEff` mask.
    public let number: Int
    /// Its name as `capabilities(7)` spells it, e.g. `CAP_BPF`.
    public let name: String

    /// A capability by number and name (the name is for messages only).
    public init(number: Int, name: String) {
        self.number = number
        self.name = name
    }

    /// `CAP_DAC_OVERRIDE` (1): bypasses file read, write and search permission checks.
    public static let dacOverride = Capability(number: 1, name: "CAP_DAC_OVERRIDE")
    /// `CAP_DAC_READ_SEARCH` (2): bypasses file read and directory search permission checks (the
    /// root-only tracefs), and allows `open_by_handle_at` (a cgroup's path from its id).
    public static let dacReadSearch = Capability(number: 2, name: "CAP_DAC_READ_SEARCH")
    /// `CAP_NET_ADMIN` (12): among much else, loading and attaching cgroup socket programs
    /// (`cgroup_sock`, `sock_ops`, `cgroup_sock_addr`).
    public static let netAdmin = Capability(number: 12, name: "CAP_NET_ADMIN")
    /// `CAP_SYS_PTRACE` (19): reading `/proc/PID/fd` of other users' processes.
    public static let sysPtrace = Capability(number: 19, name: "CAP_SYS_PTRACE")
    /// `CAP_SYS_ADMIN` (21): the kernel accepts it in place of `CAP_BPF`, `CAP_PERFMON` and,
    /// for eBPF, `CAP_NET_ADMIN`.
    public static let sysAdmin = Capability(number: 21, name: "CAP_SYS_ADMIN")
    /// `CAP_SYS_RESOURCE` (24): raising `RLIMIT_MEMLOCK`, which eBPF maps count against before Linux 5.11.
    public static let sysResource = Capability(number: 24, name: "CAP_SYS_RESOURCE")
    /// `CAP_PERFMON` (38, Linux 5.8+): tracing programs, system-wide perf events (tracepoint
    /// attachments, perf buffers) and reading kernel memory from eBPF.
    public static let perfmon = Capability(number: 38, name: "CAP_PERFMON")
    /// `CAP_BPF` (39, Linux 5.8+): creating maps and loading programs.
    public static let bpf = Capability(number: 39, name: "CAP_BPF")

    /// The capabilities this runtime knows by name.
    public static let known: [Capability] = [
        .dacOverride, .dacReadSearch, .netAdmin, .sysPtrace, .sysAdmin, .sysResource, .perfmon, .bpf,
    ]

    /// The name `setpriv` and `capsh` take, e.g. `bpf` for `CAP_BPF`.
    public var shortName: String { String(name.dropFirst("CAP_".count)).lowercased() }

    /// The name, e.g. `CAP_BPF`.
    public var description: String { name }

    /// Orders by number, as the kernel lists them.
    public static func < (lhs: Capability, rhs: Capability) -> Bool { lhs.number < rhs.number }
}

/// A set of capabilities as the kernel holds it: a 64-bit mask, one bit per capability number.
public struct CapabilitySet: Hashable, Sendable, CustomStringConvertible {
    /// The mask: bit `n` set when the capability numbered `n` is in the set.
    public var mask: UInt64

    /// The set whose mask is `mask`.
    public init(mask: UInt64) { self.mask = mask }

    /// The set of `capabilities`.
    public init(_ capabilities: [Capability]) {
        mask = capabilities.reduce(0) { $0 | (1 << UInt64($1.number)) }
    }

    /// Whether `capability` is in the set.
    public func contains(_ capability: Capability) -> Bool {
        capability.number < 64 && mask & (1 << UInt64(capability.number)) != 0
    }

    /// The known capabilities in the set (``Capability/known``), by number.
    public var capabilities: [Capability] { Capability.known.filter(contains) }

    /// The known capabilities in the set by name, comma-separated; `none` when the set is empty,
    /// the mask in hexadecimal when it holds only others.
    public var description: String {
        if mask == 0 { return "none" }
        let names = capabilities.map(\.name)
        return names.isEmpty ? "0x" + String(mask, radix: 16) : names.joined(separator: ", ")
    }

    /// The effective set in a `/proc/PID/status` text: its `CapEff:` line (16 hex digits).
    /// - Returns: nil when the text has no such line or it is not hexadecimal.
    public static func effective(inStatus status: String) -> CapabilitySet? {
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            let digits = line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces)
            return UInt64(digits, radix: 16).map(CapabilitySet.init(mask:))
        }
        return nil
    }

    /// The calling process's effective set, from `/proc/self/status`; nil when that cannot be read
    /// (no `/proc`).
    public static var effective: CapabilitySet? {
        SystemChecks.readKernelFile("/proc/self/status").flatMap(effective(inStatus:))
    }
}

/// A capability an operation needs, and what for, as errors name it.
public struct CapabilityNeed: Hashable, Sendable, CustomStringConvertible {
    /// The capability.
    public var capability: Capability
    /// What it is needed for, e.g. `cgroup socket programs`.
    public var purpose: String
    /// Capabilities the kernel accepts in its place: `CAP_SYS_ADMIN` for `CAP_BPF`, `CAP_PERFMON`
    /// and the eBPF uses of `CAP_NET_ADMIN`; `CAP_DAC_OVERRIDE` for reading.
    public var alternatives: [Capability]

    /// A need for `capability`, for `purpose`, which any of `alternatives` meets as well.
    public init(_ capability: Capability, for purpose: String, or alternatives: [Capability] = []) {
        self.capability = capability
        self.purpose = purpose
        self.alternatives = alternatives
    }

    /// Whether `set` meets the need: it holds the capability or one of its alternatives.
    public func isMet(by set: CapabilitySet) -> Bool {
        set.contains(capability) || alternatives.contains(where: set.contains)
    }

    /// `CAP_NET_ADMIN (cgroup socket programs)`.
    public var description: String { "\(capability.name) (\(purpose))" }

    /// Maps and programs of any type.
    public static let programs = CapabilityNeed(.bpf, for: "eBPF maps and programs", or: [.sysAdmin])
    /// Tracepoint and other tracing programs, their system-wide perf events and perf buffers, and
    /// reading kernel memory.
    public static let tracing = CapabilityNeed(.perfmon, for: "tracing programs, perf events, reading kernel memory", or: [.sysAdmin])
    /// Cgroup socket programs (socket ids, UDP closes and peers).
    public static let cgroupPrograms = CapabilityNeed(.netAdmin, for: "cgroup socket programs", or: [.sysAdmin])
    /// Reading tracefs as a user it is closed to: it is root's and mode 0700 on current kernels.
    /// (It also lets cgroup paths be found from their ids with `open_by_handle_at`, which is
    /// otherwise done by walking the hierarchy.)
    public static let tracefs = CapabilityNeed(.dacReadSearch, for: "reading tracefs, which is root's and mode 0700", or: [.dacOverride])
    /// Owners of the connections open before a start (the snapshot and interval records): the
    /// processes holding their sockets, found in other users' `/proc/PID/fd`. Without it those
    /// connections get no records and are counted as unowned.
    public static let connectionOwners = CapabilityNeed(
        .sysPtrace, for: "owners of connections open before the start, from other users' /proc/PID/fd")

    /// The tools' `--help` sentence on privileges; `ptrace` adds CAP_SYS_PTRACE (`when`: in
    /// which case, e.g. "with --interval"; nil: always).
    public static func helpText(ptrace: Bool = false, when: String? = nil) -> String {
        let base = "Needs root, or CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and (as another user) CAP_DAC_READ_SEARCH"
        guard ptrace else { return base + "." }
        return base + (when.map { " (and CAP_SYS_PTRACE \($0))." } ?? ", and CAP_SYS_PTRACE.")
    }

    /// What this runtime's monitors need: `CAP_BPF` and `CAP_PERFMON`; `CAP_NET_ADMIN` where a
    /// cgroup v2 hierarchy is mounted (their cgroup socket programs: socket ids, UDP closes and
    /// peers); `CAP_DAC_READ_SEARCH` where tracefs is closed to the process's user (any user but
    /// root, on current kernels).
    public static func monitors(cgroupPrograms: Bool, tracefsClosedToUser: Bool) -> [CapabilityNeed] {
        [.programs, .tracing] + (cgroupPrograms ? [.cgroupPrograms] : []) + (tracefsClosedToUser ? [.tracefs] : [])
    }
}

extension BPFError {
    /// The text of ``BPFError/missingCapabilities(operation:missing:required:)``: what is missing
    /// and why, and how to run with the whole required set.
    static func missingCapabilitiesDescription(operation: String, missing: [CapabilityNeed], required: [Capability]) -> String {
        let names = missing.map(\.description).joined(separator: ", ")
        let short = required.map { "+" + $0.shortName }.joined(separator: ",")
        let setcap = required.map { "cap_" + $0.shortName }.joined(separator: ",")
        let executable = SystemChecks.executablePath ?? "TOOL"
        return """
            \(operation) needs \(names), which this process lacks (its effective capabilities: \
            \(CapabilitySet.effective?.description ?? "unknown")). Run it as root, or with exactly \
            \(required.map(\.name).joined(separator: " + ")): `setpriv --inh-caps=\(short) --ambient-caps=\(short) \(executable)` \
            (add --reuid/--regid for another user), or `setcap \(setcap)+ep \(executable)`
            """
    }
}
