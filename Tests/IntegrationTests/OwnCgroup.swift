import Foundation
import NetEventsCore

/// This process's cgroup v2 (its children's too, unless moved), read from `/proc/self/cgroup`
/// and the directory's inode, not through the library's resolver; nil without a cgroup v2 hierarchy.
func ownCgroup() -> Cgroup? {
    guard let mount = SystemChecks.cgroup2Path, let path = TestCgroup.path(of: getpid()) else { return nil }
    var status = stat()
    guard stat(path == "/" ? mount : mount + path, &status) == 0 else { return nil }
    return Cgroup(id: UInt64(status.st_ino), path: path)
}
