import Foundation
import NetEventsCore

/// This process's cgroup v2 (its children's too, unless moved): the `0::` line of
/// `/proc/self/cgroup`, with the id of its directory; nil without a cgroup v2 hierarchy.
func ownCgroup() -> Cgroup? {
    guard let resolver = try? CgroupResolver(),
        let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
    else { return nil }
    return resolver.cgroup(path: String(line.dropFirst(3)))
}
