internal import CNetEventsABI
import Glibc

/// An ``EventFilter`` with its cgroups and containers found on this system: what the kernel's
/// filter maps get at start, and the same rule for records made in user space (the TCP
/// snapshot), so a filter means one thing wherever a record comes from.
package struct ResolvedFilter: Sendable {
    package let filter: EventFilter
    /// The cgroups named by ``EventFilter/cgroups`` and ``EventFilter/containers``.
    package let cgroups: [Cgroup]
    /// Names the cgroups of owners for ``matches(pid:uid:endpoints:cgroupID:networkNamespace:)``.
    private let resolver: CgroupResolver?

    /// Finds the filter's cgroups and containers.
    /// - Throws: `BPFError.invalidArgument` naming a cgroup that does not exist or a container
    ///   prefix no running container has; `BPFError.notSupported` without a cgroup v2 hierarchy.
    package init(_ filter: EventFilter) throws(BPFError) {
        self.filter = filter
        guard !filter.cgroups.isEmpty || !filter.containers.isEmpty else {
            cgroups = []
            resolver = nil
            return
        }
        let resolver = try CgroupResolver()
        var found: [Cgroup] = []
        for path in filter.cgroups {
            guard let cgroup = resolver.relativePath(path).flatMap({ resolver.cgroup(path: $0) }) else {
                throw .invalidArgument(
                    "cgroup filter: no cgroup v2 directory '\(path)' (the hierarchy is mounted at \(resolver.mountPoint); "
                        + "give a path below it, as in /proc/PID/cgroup's 0:: line)")
            }
            found.append(cgroup)
        }
        for prefix in filter.containers {
            let containers = resolver.containers(matching: prefix)
            guard !containers.isEmpty else {
                throw .invalidArgument(
                    "container filter: no running container's id starts with '\(prefix)' (no cgroup below \(resolver.mountPoint) names one)")
            }
            found += containers
        }
        guard found.count <= EventFilter.maximumCgroups else {
            throw .invalidArgument("the cgroup and container filters name \(found.count) cgroups; at most \(EventFilter.maximumCgroups) fit")
        }
        cgroups = found
        self.resolver = resolver
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
        set(NE_FILTER_CGROUP, !cgroups.isEmpty)
        set(NE_FILTER_NETNS, !filter.networkNamespaces.isEmpty)
        config.uid = filter.uid ?? 0
        config.family = UInt32(filter.family?.rawFamily ?? 0)
        config.cgroups = UInt32(cgroups.count)

        try fill(module, "filter_pids", filter.pids.map { UInt32(bitPattern: $0) })
        try fill(module, "filter_ports", filter.ports.map(UInt32.init))
        try fill(module, "filter_netns", Array(filter.networkNamespaces))
        if !cgroups.isEmpty, let resolver {
            // The map holds each cgroup itself: the descriptor may close once it is stored.
            let slots: BPFMap<Int32, UInt32> = try module.table("filter_cgroups").typed()
            for (index, cgroup) in cgroups.enumerated() {
                let path = resolver.absolutePath(cgroup.path)
                let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard descriptor >= 0 else {
                    throw .invalidArgument("cgroup filter: cannot open \(path): \(String(cString: strerror(errno)))")
                }
                defer { close(descriptor) }
                try slots.update(Int32(index), UInt32(bitPattern: descriptor))
            }
        }
        let settings: BPFMap<Int32, ne_filter_config> = try module.table("filter_config").typed()
        try settings.update(0, config)
    }

    private func fill(_ module: BPFModule, _ name: String, _ values: [UInt32]) throws(BPFError) {
        guard !values.isEmpty else { return }
        let map: BPFMap<UInt32, UInt8> = try module.table(name).typed()
        for value in values { try map.update(value, 1) }
    }

    /// Whether a record of this owner and socket passes: the rule of the programs'
    /// `filter_rejects`, for records made in user space.
    package func matches(pid: Int32, uid: UInt32, endpoints: SocketEndpoints, cgroupID: UInt64, networkNamespace: UInt32) -> Bool {
        if !filter.pids.isEmpty, !filter.pids.contains(pid) { return false }
        if let wanted = filter.uid, wanted != uid { return false }
        if !filter.networkNamespaces.isEmpty, !filter.networkNamespaces.contains(networkNamespace) { return false }
        if !cgroups.isEmpty {
            guard let owner = resolver?.cgroup(id: cgroupID), cgroups.contains(where: { owner.isInside($0.path) }) else { return false }
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
