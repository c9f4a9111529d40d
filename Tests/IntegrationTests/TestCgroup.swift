import Foundation
import Glibc
import NetEventsCore
import XCTest

/// A tree of cgroup v2 directories a test makes for itself below `<v2 mount>/netevents-test-<pid>`,
/// moves its own processes into, and removes at the end: deepest first, after ending the
/// processes it moved there that still run.
final class TestCgroup: @unchecked Sendable {
    /// Names this system's cgroup v2 hierarchy (and finds where it is mounted).
    let resolver: CgroupResolver
    /// The tree's root, below the hierarchy's root: `/netevents-test-<pid>`.
    let root: String

    /// Makes the tree's root (removing a tree of that name an earlier test of this process left).
    init() throws {
        resolver = try CgroupResolver()
        root = "/netevents-test-\(getpid())"
        try Self.remove(resolver.absolutePath(root))
        try make("")
    }

    deinit { try? Self.remove(resolver.absolutePath(root)) }

    /// Makes `root + relative` and every directory above it that is missing; returns its path
    /// below the hierarchy's root (as events report it).
    @discardableResult
    func make(_ relative: String) throws -> String {
        var path = ""
        for component in (root + relative).split(separator: "/") {
            path += "/\(component)"
            guard mkdir(resolver.absolutePath(path), 0o755) == 0 || errno == EEXIST else {
                throw CgroupError("mkdir \(resolver.absolutePath(path)): \(String(cString: strerror(errno)))")
            }
        }
        return path
    }

    /// The id of the cgroup at `path` (below the hierarchy's root): its directory's inode number.
    func id(of path: String) throws -> UInt64 {
        var status = stat()
        guard stat(resolver.absolutePath(path), &status) == 0 else { throw CgroupError("no cgroup \(path)") }
        return UInt64(status.st_ino)
    }

    /// Moves process `pid` (all its threads) into the cgroup at `path`, and checks the kernel
    /// says it is there.
    func move(_ pid: Int32, to path: String) throws {
        let procs = resolver.absolutePath(path) + "/cgroup.procs"
        guard let handle = FileHandle(forWritingAtPath: procs) else { throw CgroupError("cannot open \(procs)") }
        defer { try? handle.close() }
        try handle.write(contentsOf: Data("\(pid)\n".utf8))
        let now = Self.path(of: pid)
        guard now == path else { throw CgroupError("process \(pid) is in \(now ?? "no cgroup"), not \(path), after the move") }
    }

    /// The cgroup v2 path of process `pid`: the `0::` line of `/proc/PID/cgroup`.
    static func path(of pid: Int32) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) }
    }

    /// Removes the tree: ends the processes still in it, then every directory, deepest first.
    /// - Throws: naming the first directory that could not be removed.
    func remove() throws { try Self.remove(resolver.absolutePath(root)) }

    private static func remove(_ directory: String) throws {
        guard FileManager.default.fileExists(atPath: directory) else { return }
        let children = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for child in children.sorted() {
            var isDirectory: ObjCBool = false
            let path = directory + "/" + child
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { try remove(path) }
        }
        // Only this test's processes were moved here: end them, each by its id, until the
        // directory can go (a process just ended may keep it busy for a moment).
        let deadline = Date().addingTimeInterval(10)
        while rmdir(directory) != 0 {
            guard errno == EBUSY, Date() < deadline else {
                throw CgroupError("rmdir \(directory): \(String(cString: strerror(errno)))")
            }
            let pids = ((try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n")
            for pid in pids.compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            usleep(10_000)
        }
    }

    struct CgroupError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
