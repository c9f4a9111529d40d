import Glibc
import Synchronization

/// Gives events the names of where they happened: the ``Cgroup`` of their `cgroupID` (path,
/// container, pod, service) and the name of their network namespace. A monitor runs one on every
/// event it delivers, of every kind (``MonitorConfiguration/resolvesNames``); tools that read
/// events recorded elsewhere can run their own. A monitor running on estimated offsets also marks
/// every event through it (``NetworkEvent/offsetsEstimated``).
///
/// Each id is looked up once (see ``CgroupResolver`` and ``NetworkNamespaceNames``); the names of
/// the last event are kept for the next one, which is most often of the same process.
public final class EventAttributor: Sendable {
    /// Names cgroup ids; nil where no cgroup v2 hierarchy is mounted.
    public let cgroups: CgroupResolver?
    /// Names network namespaces.
    public let networkNamespaces: NetworkNamespaceNames
    /// A `Mutex` itself, not the package's `Locked`: inlinable code names it. Only the producer
    /// path of its monitor takes it.
    @usableFromInline let recent = Mutex(Recent())
    /// Whether names are looked up (off: only ``marksOffsetsEstimated`` is applied).
    public let resolvesNames: Bool
    /// Whether every event is marked ``NetworkEvent/offsetsEstimated``: its monitor runs on
    /// another kernel's header offsets, accepted with ``MonitorConfiguration/acceptsEstimatedOffsets``.
    public let marksOffsetsEstimated: Bool

    /// The last names given, reused for the same ids for up to ``reuseNanoseconds``.
    @usableFromInline struct Recent: Sendable {
        @usableFromInline var cgroupID: UInt64 = 0
        @usableFromInline var cgroup: Cgroup?
        @usableFromInline var networkNamespace: UInt32 = 0
        @usableFromInline var networkNamespaceName: String?
        @usableFromInline var time: Int64 = .min

        @usableFromInline init() {}

        /// Whether these are the names of these ids, looked up recently enough at `now`.
        @inlinable func names(_ cgroupID: UInt64, _ networkNamespace: UInt32, at now: Int64) -> Bool {
            cgroupID == self.cgroupID && networkNamespace == self.networkNamespace && now - time < EventAttributor.reuseNanoseconds
        }
    }

    /// How long the last names are reused without asking the resolvers (a namespace named or
    /// renamed meanwhile shows after at most this long, as after their own refresh).
    @usableFromInline static let reuseNanoseconds: Int64 = 100_000_000

    /// An attributor over this system's cgroup v2 hierarchy (``CgroupResolver/system()``) and `/run/netns`.
    public init(
        cgroups: CgroupResolver? = try? CgroupResolver.system(), networkNamespaces: NetworkNamespaceNames = NetworkNamespaceNames(),
        resolvesNames: Bool = true, marksOffsetsEstimated: Bool = false
    ) {
        self.cgroups = cgroups
        self.networkNamespaces = networkNamespaces
        self.resolvesNames = resolvesNames
        self.marksOffsetsEstimated = marksOffsetsEstimated
    }

    /// Sets the event's ``NetworkEvent/cgroup`` and ``NetworkEvent/networkNamespaceName``.
    @inlinable public func attribute<Event: NetworkEvent>(_ event: inout Event) {
        withUnsafeMutablePointer(to: &event) { attribute(UnsafeMutableBufferPointer(start: $0, count: 1)) }
    }

    /// Names every event of `events`, taking the clock and the lock once for them all.
    @inlinable public func attribute<Event: NetworkEvent>(_ events: UnsafeMutableBufferPointer<Event>) {
        guard !events.isEmpty else { return }
        if marksOffsetsEstimated {
            for index in events.indices { events[index].offsetsEstimated = true }
        }
        guard resolvesNames else { return }
        let now = WallClock.now(CLOCK_MONOTONIC_COARSE)
        recent.withLock { recent in
            for index in events.indices {
                let (cgroupID, namespace) = (events[index].cgroupID, events[index].networkNamespace)
                if !recent.names(cgroupID, namespace, at: now) { recent = lookUp(cgroupID, namespace, at: now) }
                events[index].cgroup = recent.cgroup
                events[index].networkNamespaceName = recent.networkNamespaceName
            }
        }
    }

    @usableFromInline func lookUp(_ cgroupID: UInt64, _ namespace: UInt32, at now: Int64) -> Recent {
        var names = Recent()
        (names.cgroupID, names.networkNamespace, names.time) = (cgroupID, namespace, now)
        names.cgroup = cgroups?.cgroup(id: cgroupID)
        names.networkNamespaceName = networkNamespaces.name(of: namespace)
        return names
    }
}
