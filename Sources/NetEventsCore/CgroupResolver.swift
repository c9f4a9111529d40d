import CFileHandles
import Glibc
import Synchronization

/// Names cgroup ids (`cgroup_id` in every event): the ``Cgroup`` with its path and what the path
/// says, for cgroups made before or after the resolver.
///
/// An id is looked up once and cached. It is opened by its id (`open_by_handle_at(2)`, which
/// needs `CAP_DAC_READ_SEARCH`: root has it) and named by the path of what was opened; without
/// that capability the hierarchy is walked instead, at most every 100 ms. A cgroup removed
/// before it was looked up has no name: nil, never a guess. Safe to call from any thread.
///
/// ```swift
/// let resolver = try CgroupResolver()
/// if let cgroup = resolver.cgroup(id: event.cgroupID) { print(cgroup.path, cgroup.container?.id ?? "-") }
/// ```
public final class CgroupResolver: Sendable {
    /// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
    /// in the hybrid layout (cgroup v1 controllers beside a v2 hierarchy).
    public let mountPoint: String
    private let mountDescriptor: Int32
    /// Whether ids can be opened as file handles: only on cgroupfs itself.
    private let opensHandles: Bool
    private let state = Locked(State())

    private struct State {
        /// Ids looked up: their cgroup, or nil for one that no longer existed.
        var known: [UInt64: Cgroup?] = [:]
        /// When the hierarchy was last walked (monotonic nanoseconds), for the walking fallback.
        var lastWalk: UInt64 = 0
    }

    /// Ids kept before the cache starts afresh (a long-running monitor on a host with churning cgroups).
    static let cacheLimit = 65_536
    /// The least time between two walks of the hierarchy when ids cannot be opened directly.
    static let walkInterval: UInt64 = 100_000_000

    /// A resolver for the cgroup v2 hierarchy mounted at `mountPoint` (by default, the one this
    /// system has, found in `/proc/self/mounts`).
    /// - Throws: `BPFError.notSupported` when no cgroup v2 hierarchy is mounted;
    ///   `BPFError.invalidArgument` when `mountPoint` cannot be opened.
    public init(mountPoint: String? = nil) throws(BPFError) {
        guard let root = mountPoint ?? SystemChecks.cgroup2Path else {
            throw .notSupported(
                feature: "cgroup names", minimumKernel: "4.5",
                reason: "no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)")
        }
        let descriptor = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw .invalidArgument("cannot open the cgroup v2 hierarchy at \(root): \(String(cString: strerror(errno)))")
        }
        self.mountPoint = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        mountDescriptor = descriptor
        opensHandles = ne_is_cgroup2(descriptor) != 0
    }

    deinit { close(mountDescriptor) }

    /// The resolver of this system's cgroup v2 hierarchy that the monitors share (cgroup ids are
    /// the system's: one cache serves every monitor of the process), made on first use.
    /// - Throws: what ``init(mountPoint:)`` throws when no cgroup v2 hierarchy is mounted.
    public static func system() throws(BPFError) -> CgroupResolver { try systemResolver.get() }

    private static let systemResolver = Result { () throws(BPFError) in try CgroupResolver() }

    /// The cgroup whose id is `id`; nil for 0 (no cgroup recorded) and for a cgroup that no
    /// longer exists.
    public func cgroup(id: UInt64) -> Cgroup? {
        guard id != 0 else { return nil }
        if let known = state.withLock({ $0.known[id] }) { return known }
        let found = lookUp(id: id)
        state.withLock { state in
            if state.known.count >= Self.cacheLimit { state.known.removeAll(keepingCapacity: true) }
            switch found {
            case .some(let cgroup): state.known[id] = cgroup
            case .none: break  // walked too recently to tell: asked again next time
            }
        }
        return found ?? nil
    }

    /// The cgroup at `path` (below the mount point, or a full path inside it); nil if there is none.
    public func cgroup(path: String) -> Cgroup? {
        guard let relative = relativePath(path) else { return nil }
        var status = stat()
        guard stat(absolutePath(relative), &status) == 0, status.st_mode & S_IFMT == S_IFDIR else { return nil }
        return Cgroup(id: UInt64(status.st_ino), path: relative)
    }

    /// The cgroup v2 of a running process (the `0::` line of `/proc/PID/cgroup`); nil once it has
    /// exited.
    public func cgroup(ofProcess pid: Int32) -> Cgroup? {
        guard let text = SystemChecks.readKernelFile("/proc/\(pid)/cgroup"),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return nil }
        return cgroup(path: String(line.dropFirst(3)))
    }

    /// `path` relative to the hierarchy's root, starting with `/`: a full path inside the mount
    /// point loses the mount point; any other path is taken as relative already. Nil for a full
    /// path outside the mount point (`/sys/fs/cgroup/memory/x` in the hybrid layout).
    public func relativePath(_ path: String) -> String? {
        var trimmed = path
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        if trimmed == mountPoint { return "/" }
        if trimmed.hasPrefix(mountPoint + "/") { return String(trimmed.dropFirst(mountPoint.count)) }
        if trimmed.hasPrefix("/sys/fs/cgroup") { return nil }  // another hierarchy's mount
        return trimmed.hasPrefix("/") ? trimmed : "/" + trimmed
    }

    /// The full path of a cgroup's directory.
    public func absolutePath(_ relative: String) -> String {
        relative == "/" ? mountPoint : mountPoint + relative
    }

    /// Every cgroup now below the root whose path names a container whose id starts with `prefix`,
    /// outermost only (a container's own sub-cgroups lie inside its entry).
    public func containers(matching prefix: String) -> [Cgroup] { containers(matching: [prefix])[0] }

    /// ``containers(matching:)-(String)`` for each of `prefixes`, in one walk of the hierarchy.
    public func containers(matching prefixes: [String]) -> [[Cgroup]] {
        var found = [[Cgroup]](repeating: [], count: prefixes.count)
        walk { path, inode in
            guard let container = Cgroup.container(in: path.split(separator: "/").map(String.init)) else { return true }
            for (index, prefix) in prefixes.enumerated() where container.id.hasPrefix(prefix) {
                found[index].append(Cgroup(id: inode, path: path))
            }
            return false  // what lies below is the same container
        }
        return found
    }

    // MARK: Lookup

    /// `.some(cgroup)` when the answer is known (nil: the cgroup is gone); `.none` when it cannot
    /// be told now.
    private func lookUp(id: UInt64) -> Cgroup?? {
        guard opensHandles else { return walkingLookup(id: id) }
        let descriptor = ne_open_cgroup_by_id(mountDescriptor, id)
        guard descriptor >= 0 else {
            if errno == ESTALE || errno == ENOENT { return .some(nil) }
            return walkingLookup(id: id)
        }
        defer { close(descriptor) }
        guard var target = FileSystem.readLink("/proc/self/fd/\(descriptor)") else { return .none }
        // Removed while it was open: the rest of the path is still its path.
        if target.hasSuffix(" (deleted)") { target.removeLast(" (deleted)".count) }
        guard let path = relativePath(target) else { return .none }
        return .some(Cgroup(id: id, path: path))
    }

    /// Without `CAP_DAC_READ_SEARCH` (or file handles on cgroupfs): walk the hierarchy, naming
    /// every id in it, at most every ``walkInterval``. An id a whole walk did not find is gone.
    private func walkingLookup(id: UInt64) -> Cgroup?? {
        let now = UInt64(WallClock.now(CLOCK_MONOTONIC_COARSE))
        let due = state.withLock { state in
            guard now - state.lastWalk >= Self.walkInterval else { return false }
            state.lastWalk = now
            return true
        }
        guard due else { return .none }
        var named: [UInt64: Cgroup] = [:]
        walk { path, inode in
            named[inode] = Cgroup(id: inode, path: path)
            return true
        }
        state.withLock { state in
            for (key, cgroup) in named where state.known[key] == nil { state.known[key] = cgroup }
        }
        return .some(named[id])
    }

    /// Calls `visit` with the relative path and inode of every directory of the hierarchy, the root
    /// first; `visit` returns whether to descend into it.
    func walk(_ visit: (String, UInt64) -> Bool) {
        func descend(_ relative: String, depth: Int) {
            guard depth < 64 else { return }
            // A directory entry's inode number is the cgroup's id: no stat per directory.
            FileSystem.forEachEntry(of: absolutePath(relative)) { name, type, inode in
                guard type == UInt8(DT_DIR) else { return }
                let child = relative == "/" ? "/" + name : relative + "/" + name
                if visit(child, inode) { descend(child, depth: depth + 1) }
            }
        }
        guard let root = FileSystem.inode(of: mountPoint), visit("/", root) else { return }
        descend("/", depth: 0)
    }

}
