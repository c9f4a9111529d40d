import Foundation

/// Checks of the environment that turn a cryptic failure later into a clear error now.
public enum SystemChecks {
    /// The directories where tracefs may be mounted, newest first.
    public static let tracefsCandidates = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]

    /// The mounted tracefs, if any.
    public static var tracefsPath: String? {
        tracefsCandidates.first { access($0 + "/events", F_OK) == 0 }
    }

    /// Checks that tracefs is mounted, before anything that reads tracepoints from it.
    ///
    /// BCC reads each tracepoint's format from tracefs while compiling, and attaching looks the
    /// tracepoint up there; without tracefs both fail with messages that do not say why.
    /// - Throws: `BPFError.tracefsNotMounted` (whose description gives the `mount` command).
    public static func requireTracefs() throws(BPFError) {
        guard tracefsPath != nil else { throw BPFError.tracefsNotMounted }
    }

    /// Checks that the process may load eBPF programs: it is root, or holds `CAP_BPF` or
    /// `CAP_SYS_ADMIN` in its effective set.
    ///
    /// - Parameter operation: what needs the privilege, for the error message.
    /// - Throws: `BPFError.notPrivileged` naming `operation`.
    public static func requirePrivileges(for operation: String) throws(BPFError) {
        if geteuid() == 0 { return }
        // CAP_SYS_ADMIN (21) or CAP_BPF (39) in the effective set, from /proc/self/status.
        if let status = readKernelFile("/proc/self/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
            let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16),
            mask & (1 << 21) != 0 || mask & (1 << 39) != 0
        {
            return
        }
        throw BPFError.notPrivileged(operation: operation)
    }

    /// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on unified systems,
    /// `/sys/fs/cgroup/unified` on hybrid ones. Nil when there is none.
    public static var cgroup2Path: String? {
        guard let mounts = readKernelFile("/proc/self/mounts") else { return nil }
        let paths = mounts.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            return fields.count > 2 && fields[2] == "cgroup2" ? String(fields[1]) : nil
        }
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
