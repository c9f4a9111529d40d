import Foundation

/// Checks of the environment that turn a cryptic failure later into a clear error now.
public enum SystemChecks {
    /// The directories where tracefs may be mounted, newest first.
    public static let tracefsCandidates = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]

    /// The mounted tracefs, if any this process can read.
    public static var tracefsPath: String? {
        tracefsCandidates.first { tracefsAccess($0) == .readable }
    }

    /// What this process can do with a tracefs candidate directory.
    enum TracefsAccess: Equatable {
        /// tracefs is mounted there and its `events` directory can be read.
        case readable
        /// The directory, or the one it is in, refuses this process (`EACCES`): tracefs is mode
        /// 0700 and root's (and `access(2)` would not tell, since it checks the real user id
        /// without capabilities).
        case denied
        /// No tracefs there.
        case absent
    }

    /// Whether tracefs at `path` is readable with this process's effective user, groups and
    /// capabilities (what BCC's own reads of the tracepoints' files will have). Opening its
    /// `events` directory also mounts an automounted tracefs.
    static func tracefsAccess(_ path: String) -> TracefsAccess {
        let descriptor = open(path + "/events", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return errno == EACCES || errno == EPERM ? .denied : .absent }
        close(descriptor)
        return .readable
    }

    /// Whether `path` exists (or allows `mode`, e.g. `R_OK`) for this process's effective user,
    /// groups and capabilities. `access(2)` answers for the real user without capabilities, so
    /// under tracefs (root's, mode 0700) it says no to a process that holds
    /// `CAP_DAC_READ_SEARCH` as another user. The corresponding C function is `faccessat` with
    /// `AT_EACCESS`.
    public static func isAccessible(_ path: String, _ mode: Int32 = F_OK) -> Bool {
        faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0
    }

    /// The directories where a file system of `type` is mounted, from `/proc/self/mounts`.
    static func mountPoints(ofType type: String) -> [String] {
        guard let mounts = readKernelFile("/proc/self/mounts") else { return [] }
        return mounts.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            return fields.count > 2 && fields[2] == type ? String(fields[1]) : nil
        }
    }

    /// Checks that tracefs is mounted and readable, before anything that reads tracepoints from it.
    ///
    /// BCC reads each tracepoint's format from tracefs while compiling, and attaching looks the
    /// tracepoint up there; without tracefs both fail with messages that do not say why.
    /// - Throws: `BPFError.tracefsNotMounted` (whose description gives the `mount` command) when
    ///   no candidate is mounted; `.missingCapabilities` naming `CAP_DAC_READ_SEARCH` when tracefs
    ///   is there but closed to this process; `.fileSystemFailed` when it is closed although the
    ///   process holds that capability (a security module).
    public static func requireTracefs() throws(BPFError) {
        let access = tracefsCandidates.map { ($0, tracefsAccess($0)) }
        if access.contains(where: { $0.1 == .readable }) { return }
        guard let denied = access.first(where: { $0.1 == .denied })?.0 else { throw BPFError.tracefsNotMounted }
        let effective = CapabilitySet.effective ?? CapabilitySet(mask: 0)
        if !CapabilityNeed.tracefs.isMet(by: effective) {
            throw BPFError.missingCapabilities(
                operation: "reading tracepoints from tracefs (\(denied) is closed to user \(geteuid()))",
                missing: [.tracefs], required: monitorNeeds.map(\.capability))
        }
        throw BPFError.fileSystemFailed(path: denied, operation: "read tracefs (mounted) at", errno: .permissionDenied)
    }

    /// Checks that the process holds the capabilities this runtime's monitors need here
    /// (``monitorNeeds``): `CAP_BPF`, `CAP_PERFMON`, `CAP_NET_ADMIN` when a cgroup v2 hierarchy
    /// is mounted (cgroup socket programs), and `CAP_DAC_READ_SEARCH` when tracefs is closed to
    /// the process's user. Root passes when its effective set holds them, as it normally does.
    ///
    /// The check reads the effective set rather than the user id: the kernel decides every eBPF
    /// permission by capability, so root with an empty set fails later with "Operation not
    /// permitted" inside the compile, and user 65534 with the right set succeeds.
    /// - Parameter operation: what needs the privilege, for the error message.
    /// - Throws: `BPFError.missingCapabilities` naming each missing one and what it is for.
    public static func requirePrivileges(for operation: String) throws(BPFError) {
        try requireCapabilities(monitorNeeds, for: operation)
    }

    /// Checks that the process's effective capabilities meet `needs`.
    /// - Parameters:
    ///   - needs: the capabilities needed, each with what for.
    ///   - operation: what needs them, for the error message.
    /// - Throws: `BPFError.missingCapabilities` naming the unmet ones; `.notPrivileged` when the
    ///   set cannot be read (no `/proc`) and the process is not root.
    public static func requireCapabilities(_ needs: [CapabilityNeed], for operation: String) throws(BPFError) {
        guard let effective = CapabilitySet.effective else {
            if geteuid() == 0 { return }
            throw BPFError.notPrivileged(operation: operation)
        }
        let missing = needs.filter { !$0.isMet(by: effective) }
        guard missing.isEmpty else {
            throw BPFError.missingCapabilities(operation: operation, missing: missing, required: needs.map(\.capability))
        }
    }

    /// Whether the process's effective capabilities meet `needs` (for root without a readable
    /// `/proc`: yes).
    static func holds(_ needs: [CapabilityNeed]) -> Bool {
        guard let effective = CapabilitySet.effective else { return geteuid() == 0 }
        return needs.allSatisfy { $0.isMet(by: effective) }
    }

    /// What this runtime's monitors need on this system:
    /// ``CapabilityNeed/monitors(cgroupPrograms:tracefsClosedToUser:)`` for its cgroup v2
    /// hierarchy and its tracefs.
    public static var monitorNeeds: [CapabilityNeed] {
        CapabilityNeed.monitors(cgroupPrograms: cgroup2Path != nil, tracefsClosedToUser: tracefsClosedToUser)
    }

    /// Whether the mounted tracefs is closed to this process's user and groups by its mode alone
    /// (capabilities aside): root's and 0700, to anyone but root. False when none is mounted.
    static var tracefsClosedToUser: Bool {
        let mounted = mountPoints(ofType: "tracefs")
        guard let path = tracefsCandidates.first(where: mounted.contains) else { return false }
        var status = stat()
        guard stat(path, &status) == 0 else { return errno == EACCES }
        let needed = S_IRUSR | S_IXUSR  // read and search, in the owner's bits
        let shift: mode_t
        if status.st_uid == geteuid() {
            shift = 0
        } else if status.st_gid == getegid() || supplementaryGroups.contains(status.st_gid) {
            shift = 3
        } else {
            shift = 6
        }
        return (status.st_mode << shift) & needed != needed
    }

    /// The process's supplementary groups.
    private static var supplementaryGroups: [gid_t] {
        let count = getgroups(0, nil)
        guard count > 0 else { return [] }
        var groups = [gid_t](repeating: 0, count: Int(count))
        return Array(groups.prefix(Int(getgroups(count, &groups))))
    }

    /// This executable's path (`/proc/self/exe`), for commands in messages.
    static var executablePath: String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on unified systems,
    /// `/sys/fs/cgroup/unified` on hybrid ones. Nil when there is none.
    public static var cgroup2Path: String? {
        let paths = mountPoints(ofType: "cgroup2")
        // Prefer the conventional locations over bind mounts elsewhere.
        return paths.first { $0 == "/sys/fs/cgroup" } ?? paths.first { $0 == "/sys/fs/cgroup/unified" } ?? paths.first
    }

    /// The whole text of a kernel pseudo-file (`/proc`, `/sys`), or nil if it cannot be read.
    ///
    /// `String(contentsOfFile:)` trusts the file size, which such files report as 0 or 4096, and
    /// returns only the first read: 4 KB of `/proc/self/smaps` or of a long `/proc/self/mounts`.
    /// This reads to the end.
    public static func readKernelFile(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }
}
