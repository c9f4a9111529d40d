internal import CNetEventsABI
import Glibc
import Synchronization

/// An ``EventFilter`` with its cgroups and containers found on this system: what the kernel's
/// filter maps get at start (and, for cgroups, again whenever a filtered cgroup is made anew, as a
/// restarted service or container is), and the same rule for records made in user space (the TCP
/// snapshot), so a filter means one thing wherever a record comes from.
package final class ResolvedFilter: Sendable {
    package let filter: EventFilter
    /// Names cgroups; nil when the filter names none.
    private let resolver: CgroupResolver?
    /// ``EventFilter/cgroups`` as paths below the hierarchy's root, for ``matches(pid:uid:endpoints:cgroupID:networkNamespace:)``.
    private let cgroupPaths: [String]
    /// The cgroups whose directories are in the kernel's `filter_cgroups` slots now, by path and id.
    private let installed = Locked<[Cgroup]>([])

    /// Finds the filter's cgroups and containers (unless `forKernel` is false: a filter only for
    /// ``matches(pid:uid:endpoints:cgroupID:networkNamespace:)``, which needs no directory).
    /// - Throws: `BPFError.invalidArgument` naming a cgroup that does not exist or a container
    ///   prefix no running container has; `BPFError.notSupported` without a cgroup v2 hierarchy.
    package init(_ filter: EventFilter, resolver: CgroupResolver? = nil, forKernel: Bool = true) throws(BPFError) {
        self.filter = filter
        guard !filter.cgroups.isEmpty || !filter.containers.isEmpty else {
            (self.resolver, cgroupPaths) = (nil, [])
            return
        }
        let resolver = if let resolver { resolver } else { try CgroupResolver.system() }
        self.resolver = resolver
        cgroupPaths = filter.cgroups.compactMap(resolver.relativePath)
        guard forKernel else { return }
        let found = directories()
        if let path = found.missingCgroup {
            throw .invalidArgument(
                "cgroup filter: no cgroup v2 directory '\(path)' (the hierarchy is mounted at \(resolver.mountPoint); "
                    + "give a path below it, as in /proc/PID/cgroup's 0:: line)")
        }
        if let prefix = found.missingContainer {
            throw .invalidArgument(
                "container filter: no running container's id starts with '\(prefix)' (no cgroup below \(resolver.mountPoint) names one)")
        }
        guard found.cgroups.count <= EventFilter.maximumCgroups else {
            throw .invalidArgument(
                "the cgroup and container filters name \(found.cgroups.count) cgroups; at most \(EventFilter.maximumCgroups) fit")
        }
        installed.withLock { $0 = found.cgroups }
    }

    /// Whether the filter names cgroups or containers, whose directories ``refresh(in:)`` follows.
    package var followsCgroups: Bool { resolver != nil }

    /// The directories the filter names now: each cgroup, and each container's outermost cgroup
    /// (one walk of the hierarchy for every prefix); the first cgroup and container not found.
    private func directories() -> (cgroups: [Cgroup], missingCgroup: String?, missingContainer: String?) {
        guard let resolver else { return ([], nil, nil) }
        let cgroups = filter.cgroups.map { resolver.relativePath($0).flatMap(resolver.cgroup(path:)) }
        let containers = filter.containers.isEmpty ? [] : resolver.containers(matching: filter.containers)
        return (
            cgroups.compactMap { $0 } + containers.flatMap { $0 },
            zip(filter.cgroups, cgroups).first { $0.1 == nil }?.0,
            zip(filter.containers, containers).first { $0.1.isEmpty }?.0
        )
    }

    /// Writes the filter into the program's maps (`bpf/netevents_bpf.h`): to be done after the
    /// load and before any attach, so no record escapes it.
    package func install(in module: BPFModule) throws(BPFError) {
        guard !filter.isEmpty else { return }
        var config = ne_filter_config()
        func set(_ kind: ne_filter_kind, _ on: Bool) { if on { config.active |= kind.rawValue } }
        set(NE_FILTER_PID, !filter.pids.isEmpty)
        set(NE_FILTER_UID, filter.uid != nil)
        set(NE_FILTER_PORT, !filter.ports.isEmpty)
        set(NE_FILTER_FAMILY, filter.family != nil)
        set(NE_FILTER_CGROUP, followsCgroups)
        set(NE_FILTER_NETNS, !filter.networkNamespaces.isEmpty)
        config.uid = filter.uid ?? 0
        config.family = UInt32(filter.family?.rawFamily ?? 0)

        try fill(module, "filter_pids", filter.pids.map { UInt32(bitPattern: $0) })
        try fill(module, "filter_ports", filter.ports.map(UInt32.init))
        try fill(module, "filter_netns", Array(filter.networkNamespaces))
        config.cgroups = try writeSlots(installed.withLock { $0 }, in: module)
        let settings: BPFMap<Int32, ne_filter_config> = try module.table("filter_config").typed()
        try settings.update(0, config)
    }

    /// Follows the filtered cgroups: one made anew at the same path (a restarted service or
    /// container) or a new container of a filtered prefix takes its slot, so the kernel keeps
    /// matching by path. Runs every second while the monitor does; a cgroup gone meanwhile (being
    /// restarted) keeps its old slot until it is back.
    package func refresh(in module: BPFModule) {
        let now = Array(directories().cgroups.prefix(EventFilter.maximumCgroups))
        guard now != installed.withLock({ $0 }), !now.isEmpty else { return }
        guard let count = try? writeSlots(now, in: module),
            let settings = try? module.table("filter_config").typed(key: Int32.self, value: ne_filter_config.self),
            var config = try? settings.lookup(0)
        else { return }
        config.cgroups = count
        try? settings.update(0, config)
        installed.withLock { $0 = now }
    }

    /// Puts each cgroup's directory in a `filter_cgroups` slot (the map holds the cgroup itself:
    /// the descriptor may close once it is stored). Returns the slots in use.
    private func writeSlots(_ cgroups: [Cgroup], in module: BPFModule) throws(BPFError) -> UInt32 {
        guard let resolver, !cgroups.isEmpty else { return 0 }
        let slots: BPFMap<Int32, UInt32> = try module.table("filter_cgroups").typed()
        var used: Int32 = 0
        for cgroup in cgroups {
            let path = resolver.absolutePath(cgroup.path)
            let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard descriptor >= 0 else { continue }  // gone since it was found
            defer { close(descriptor) }
            try slots.update(used, UInt32(bitPattern: descriptor))
            used += 1
        }
        return UInt32(used)
    }

    private func fill(_ module: BPFModule, _ name: String, _ values: [UInt32]) throws(BPFError) {
        guard !values.isEmpty else { return }
        let map: BPFMap<UInt32, UInt8> = try module.table(name).typed()
        for value in values { try map.update(value, 1) }
    }

    /// Whether a record of this owner and socket passes: the rule of the programs'
    /// `filter_rejects`, for records made in user space. cgroups match by path (the owner's
    /// cgroup is a filtered one or below it), containers by the id the owner's path names.
    package func matches(pid: Int32, uid: UInt32, endpoints: SocketEndpoints, cgroupID: UInt64, networkNamespace: UInt32) -> Bool {
        if !filter.pids.isEmpty, !filter.pids.contains(pid) { return false }
        if let wanted = filter.uid, wanted != uid { return false }
        if !filter.networkNamespaces.isEmpty, !filter.networkNamespaces.contains(networkNamespace) { return false }
        if let resolver {
            guard let owner = resolver.cgroup(id: cgroupID) else { return false }
            let inCgroup = cgroupPaths.contains(where: owner.isInside)
            let inContainer = owner.container.map { container in filter.containers.contains { container.id.hasPrefix($0) } } ?? false
            guard inCgroup || inContainer else { return false }
        }
        return matches(endpoints: endpoints)
    }

    /// Whether these endpoints pass the port and family filters (the owner not known yet).
    package func matches(endpoints: SocketEndpoints) -> Bool {
        if !filter.ports.isEmpty, !filter.ports.contains(endpoints.sourcePort), !filter.ports.contains(endpoints.destinationPort) {
            return false
        }
        if let family = filter.family, family != endpoints.family { return false }
        return true
    }
}
