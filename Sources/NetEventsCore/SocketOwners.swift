import Glibc

/// Which process holds a socket, found the way `ss -p` finds it: the socket's inode among the
/// links of `/proc/PID/fd`. For sockets opened before tracing began, whose opening no program saw.
package enum SocketOwners {
    /// A process holding a socket.
    package struct Owner: Sendable, Hashable {
        /// The process: pid, real uid, and its name (`/proc/PID/comm`, the thread-group leader's).
        package var process: EventProcess
        /// The process's cgroup v2 id (the inode of its cgroup directory), 0 when unknown.
        package var cgroupID: UInt64
    }

    /// The owner of each of `inodes` that some process holds: the lowest pid holding it (a socket
    /// inherited across `fork` is held by several). `pids` limits the search to those processes.
    package static func find(_ inodes: Set<UInt32>, among pids: [Int32]? = nil) -> [UInt32: Owner] {
        guard !inodes.isEmpty else { return [:] }
        var holders: [UInt32: Int32] = [:]
        var candidates: [Int32] = pids ?? []
        if pids == nil { FileSystem.forEachEntry(of: "/proc") { name, _, _ in if let pid = Int32(name), pid > 0 { candidates.append(pid) } } }
        for pid in candidates {
            FileSystem.forEachEntry(of: "/proc/\(pid)/fd") { descriptor, _, _ in
                guard let inode = socketInode("/proc/\(pid)/fd/\(descriptor)"), inodes.contains(inode) else { return }
                if holders[inode].map({ pid < $0 }) ?? true { holders[inode] = pid }
            }
        }
        var processes: [Int32: Owner] = [:]
        var owners: [UInt32: Owner] = [:]
        let cgroups = holders.isEmpty ? nil : try? CgroupResolver.system()
        for (inode, pid) in holders {
            if processes[pid] == nil, let owner = owner(of: pid, cgroups: cgroups) { processes[pid] = owner }
            if let owner = processes[pid] { owners[inode] = owner }
        }
        return owners
    }

    /// What `/proc/PID` says of a process; nil once it has exited.
    static func owner(of pid: Int32, cgroups: CgroupResolver?) -> Owner? {
        guard let status = SystemChecks.readKernelFile("/proc/\(pid)/status"), let comm = SystemChecks.readKernelFile("/proc/\(pid)/comm") else { return nil }
        // "Uid:\treal\teffective\tsaved\tfs"
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }),
            let uid = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap({ UInt32($0) })
        else { return nil }
        let name = comm.hasSuffix("\n") ? String(comm.dropLast()) : comm
        return Owner(
            process: EventProcess(pid: pid, uid: uid, command: name, executable: executable(of: pid)),
            cgroupID: cgroups?.cgroup(ofProcess: pid)?.id ?? 0)
    }

    /// The file name of the process's executable, as the kernel's `exe_file` names it (at most 63
    /// bytes, like the programs' `read_exe`); nil for a kernel thread.
    static func executable(of pid: Int32) -> String? {
        guard var path = FileSystem.readLink("/proc/\(pid)/exe") else { return nil }
        // The link of an executable replaced since it started ends in " (deleted)"; the dentry's name does not.
        if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
        guard let name = path.split(separator: "/").last else { return nil }
        return String(decoding: name.utf8.prefix(63), as: UTF8.self)
    }

    /// `N` of a `socket:[N]` link; nil for anything else.
    static func socketInode(_ path: String) -> UInt32? {
        guard let target = FileSystem.readLink(path), target.hasPrefix("socket:["), target.hasSuffix("]") else { return nil }
        return UInt32(target.dropFirst(8).dropLast())
    }
}
