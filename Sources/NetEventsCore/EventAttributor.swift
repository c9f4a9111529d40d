import Glibc
import Synchronization

/// Gives events the names of where they happened: the ``Cgroup`` of their `cgroupID` (path,
/// container, pod, service) and the name of their network namespace. A monitor runs one on every
/// event it delivers, of every kind (``MonitorConfiguration/resolvesNames``); tools that read
/// events recorded elsewhere can run their own.
///
/// Each id is looked up once (see ``CgroupResolver`` and ``NetworkNamespaceNames``); the names of
/// the last event are kept for the next one, which is most often of the same process.
public final class EventAttributor: Sendable {
    /// Names cgroup ids; nil where no cgroup v2 hierarchy is mounted.
    public let cgroups: CgroupResolver?
    /// Names network namespaces.
    public let networkNamespaces: NetworkNamespaceNames
    private let recent = Mutex(Recent())

    /// The last names given, reused for the same ids for up to ``reuseNanoseconds``.
    private struct Recent {
        var cgroupID: UInt64 = 0
        var cgroup: Cgroup?
        var networkNamespace: UInt32 = 0
        var networkNamespaceName: String?
        var time: Int64 = .min
    }

    /// How long the last names are reused without asking the resolvers (a namespace named or
    /// renamed meanwhile shows after at most this long, as after their own refresh).
    static let reuseNanoseconds: Int64 = 100_000_000

    /// An attributor over this system's cgroup v2 hierarchy and `/run/netns`.
    public init(cgroups: CgroupResolver? = try? CgroupResolver(), networkNamespaces: NetworkNamespaceNames = NetworkNamespaceNames()) {
        self.cgroups = cgroups
        self.networkNamespaces = networkNamespaces
    }

    /// Sets the event's ``NetworkEvent/cgroup`` and ``NetworkEvent/networkNamespaceName``.
    public func attribute<Event: NetworkEvent>(_ event: inout Event) {
        let now = WallClock.now(CLOCK_MONOTONIC_COARSE)
        let (cgroupID, namespace) = (event.cgroupID, event.networkNamespace)
        if let reused = recent.withLock({ recent -> (Cgroup?, String?)? in
            guard recent.cgroupID == cgroupID, recent.networkNamespace == namespace, now - recent.time < Self.reuseNanoseconds
            else { return nil }
            return (recent.cgroup, recent.networkNamespaceName)
        }) {
            (event.cgroup, event.networkNamespaceName) = reused
            return
        }
        let cgroup = cgroups?.cgroup(id: cgroupID)
        let name = networkNamespaces.name(of: namespace)
        recent.withLock { $0 = Recent(cgroupID: cgroupID, cgroup: cgroup, networkNamespace: namespace, networkNamespaceName: name, time: now) }
        (event.cgroup, event.networkNamespaceName) = (cgroup, name)
    }
}
