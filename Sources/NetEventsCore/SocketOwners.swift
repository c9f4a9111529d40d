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
        if pids == nil { forEachEntry(of: "/proc") { name in if let pid = Int32(name), pid > 0 { candidates.append(pid) } } }
        for pid in candidates {
            forEachEntry(of: "/proc/\(pid)/fd") { descriptor in
                guard let inode = socketInode("/proc/\(pid)/fd/\(descriptor)"), inodes.contains(inode) else { return }
                if holders[inode].map({ pid < $0 }) ?? true { holders[inode] = pid }
            }
        }
        var processes: [Int32: Owner] = [:]
        var owners: [UInt32: Owner] = [:]
        for (inode, pid) in holders {
            if processes[pid] == nil, let owner = owner(of: pid) { processes[pid] = owner }
            if let owner = processes[pid] { owners[inode] = owner }
        }
        return owners
    }

    /// What `/proc/PID` says of a process; nil once it has exited.
    static func owner(of pid: Int32) -> Owner? {
        guard let status = SystemChecks.readKernelFile("/proc/\(pid)/status"), let comm = SystemChecks.readKernelFile("/proc/\(pid)/comm") else { return nil }
        // "Uid:\treal\teffective\tsaved\tfs"
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }),
            let uid = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap({ UInt32($0) })
        else { return nil }
        let name = comm.hasSuffix("\n") ? String(comm.dropLast()) : comm
        return Owner(process: EventProcess(pid: pid, uid: uid, command: name), cgroupID: cgroupID(of: pid))
    }

    /// The id of the process's cgroup v2: the inode of its directory (`0::/PATH` in `/proc/PID/cgroup`).
    static func cgroupID(of pid: Int32) -> UInt64 {
        guard let root = SystemChecks.cgroup2Path, let text = SystemChecks.readKernelFile("/proc/\(pid)/cgroup"),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return 0 }
        var info = stat()
        guard stat(root + line.dropFirst(3), &info) == 0 else { return 0 }
        return UInt64(info.st_ino)
    }

    /// `N` of a `socket:[N]` link; nil for anything else.
    static func socketInode(_ path: String) -> UInt32? {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 9 else { return nil }
        let target = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard target.hasPrefix("socket:["), target.hasSuffix("]") else { return nil }
        return UInt32(target.dropFirst(8).dropLast())
    }

    private static func forEachEntry(of directory: String, _ body: (String) -> Void) {
        guard let handle = opendir(directory) else { return }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { body(name) }
        }
    }
}
