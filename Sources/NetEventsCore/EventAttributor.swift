/// Gives events the names of where they happened: the ``Cgroup`` of their `cgroupID` (path,
/// container, pod, service) and the name of their network namespace. A monitor runs one on every
/// event it delivers, of every kind (``MonitorConfiguration/resolvesNames``); tools that read
/// events recorded elsewhere can run their own.
public final class EventAttributor: Sendable {
    /// Names cgroup ids; nil where no cgroup v2 hierarchy is mounted.
    public let cgroups: CgroupResolver?
    /// Names network namespaces.
    public let networkNamespaces: NetworkNamespaceNames

    /// An attributor over this system's cgroup v2 hierarchy and `/run/netns`.
    public init(cgroups: CgroupResolver? = try? CgroupResolver(), networkNamespaces: NetworkNamespaceNames = NetworkNamespaceNames()) {
        self.cgroups = cgroups
        self.networkNamespaces = networkNamespaces
    }

    /// Sets the event's ``NetworkEvent/cgroup`` and ``NetworkEvent/networkNamespaceName``.
    public func attribute<Event: NetworkEvent>(_ event: inout Event) {
        event.cgroup = cgroups?.cgroup(id: event.cgroupID)
        event.networkNamespaceName = networkNamespaces.name(of: event.networkNamespace)
    }
}
