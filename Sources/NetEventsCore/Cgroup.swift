import Foundation

/// The cgroup v2 a process ran in, and what its path says about it: the container, the
/// Kubernetes pod and the systemd service behind the traffic.
///
/// Everything but ``id`` and ``path`` is read from the path by the conventions of the runtimes
/// (see ``ContainerRuntime``), and is nil where the path follows none: never a guess.
///
/// A class with constant fields: events of one process share one instance.
public final class Cgroup: Sendable, Hashable, CustomStringConvertible {
    /// The cgroup's id: what `bpf_get_current_cgroup_id()` returns, the inode number of its
    /// directory.
    public let id: UInt64
    /// The path below the root of the cgroup v2 hierarchy, starting with `/` (`/` itself for the
    /// root): `/system.slice/nginx.service`.
    public let path: String
    /// The container, when the path is one a container runtime makes.
    public let container: Container?
    /// The Kubernetes pod's uid (`kubepods…/pod<uid>` paths), with dashes as the API shows it.
    public let podUID: String?
    /// The innermost systemd unit of the path that is a service (`nginx.service`).
    public let service: String?

    /// A container, as its runtime names it.
    public struct Container: Sendable, Hashable {
        /// The full container id: 64 lowercase hexadecimal digits.
        public var id: String
        /// The runtime whose path convention named it.
        public var runtime: ContainerRuntime

        /// A container.
        public init(id: String, runtime: ContainerRuntime) { (self.id, self.runtime) = (id, runtime) }
    }

    /// A cgroup, with what its path says.
    /// - Parameters:
    ///   - id: the cgroup id.
    ///   - path: the path below the hierarchy's root (a leading `/` is added if missing).
    public init(id: UInt64, path: String) {
        self.id = id
        self.path = path.hasPrefix("/") ? path : "/" + path
        let components = self.path.split(separator: "/").map(String.init)
        container = Self.container(in: components)
        podUID = Self.podUID(in: components)
        service = components.last { $0.hasSuffix(".service") && $0.count > ".service".count }
    }

    /// `path`, or `path (container <12 digits>)`.
    public var description: String {
        container.map { "\(path) (\($0.runtime) container \($0.id.prefix(12)))" } ?? path
    }

    public static func == (lhs: Cgroup, rhs: Cgroup) -> Bool { lhs.id == rhs.id && lhs.path == rhs.path }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(path)
    }

    /// Whether this cgroup is `ancestor` or lies below it (`ancestor` a path like ``path``).
    public func isInside(_ ancestor: String) -> Bool {
        let trimmed = ancestor.hasSuffix("/") && ancestor.count > 1 ? String(ancestor.dropLast()) : ancestor
        if trimmed == "/" || trimmed == path { return true }
        return path.hasPrefix(trimmed) && path.dropFirst(trimmed.count).first == "/"
    }

    // MARK: Path conventions

    /// The innermost component that names a container. Systemd-driven runtimes make a scope
    /// `<prefix><id>.scope`; cgroupfs-driven ones a directory named by the id under their own
    /// parent. A runtime's monitor process (`libpod-conmon-<id>`, `crio-conmon-<id>`) is no container.
    static func container(in components: [String]) -> Container? {
        for index in components.indices.reversed() {
            let name = components[index]
            for (prefix, runtime) in scopePrefixes where name.hasPrefix(prefix) {
                var id = name.dropFirst(prefix.count)
                // The cgroupfs drivers of podman and CRI-O drop the `.scope`.
                if id.hasSuffix(".scope") { id = id.dropLast(".scope".count) } else if runtime == .docker || runtime == .containerd { continue }
                if isContainerID(id) { return Container(id: String(id), runtime: runtime) }
            }
            if isContainerID(Substring(name)), index > 0 {
                let parent = components[index - 1]
                if let runtime = parentRuntimes[parent] { return Container(id: name, runtime: runtime) }
                if isPod(parent) { return Container(id: name, runtime: .cri) }
            }
        }
        return nil
    }

    /// `<prefix><id>.scope` of the systemd cgroup drivers (the cgroupfs drivers of podman and CRI-O drop `.scope`).
    static let scopePrefixes: [(String, ContainerRuntime)] = [
        ("docker-", .docker), ("cri-containerd-", .containerd), ("crio-", .crio), ("libpod-", .podman),
    ]
    /// The parents under which the cgroupfs drivers put a container's directory, named by its id.
    static let parentRuntimes: [String: ContainerRuntime] = [
        "docker": .docker, "moby": .docker, "libpod_parent": .podman, "k8s.io": .containerd,
    ]

    static func isContainerID(_ text: Substring) -> Bool {
        text.utf8.count == 64 && isContainerIDPrefix(text)
    }

    /// Lowercase hexadecimal digits, as container ids are written.
    static func isContainerIDPrefix(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    /// A pod's directory: `pod<uid>` (cgroupfs driver) or `…kubepods[-<qos>]-pod<uid_with_underscores>.slice`
    /// (systemd driver, also under a kubelet cgroup root such as `kubelet-kubepods-…`).
    static func isPod(_ name: String) -> Bool { podUID(of: name) != nil }

    static func podUID(in components: [String]) -> String? {
        guard components.contains(where: { $0.contains("kubepods") }) else { return nil }
        for name in components.reversed() {
            if let uid = podUID(of: name) { return uid }
        }
        return nil
    }

    static func podUID(of name: String) -> String? {
        let uid: Substring
        if name.contains("kubepods"), name.hasSuffix(".slice"), let range = name.range(of: "-pod", options: .backwards) {
            uid = name[range.upperBound...].dropLast(".slice".count)
        } else if name.hasPrefix("pod") {
            uid = name.dropFirst(3)
        } else {
            return nil
        }
        let text = String(uid.map { $0 == "_" ? "-" : $0 })
        // A UUID: 8-4-4-4-12 hexadecimal digits.
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12], groups.allSatisfy({ $0.allSatisfy(\.isHexDigit) }) else { return nil }
        return text
    }
}

/// The container runtimes whose cgroup paths ``Cgroup`` reads.
public enum ContainerRuntime: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Docker: `docker-<id>.scope` (systemd driver), `/docker/<id>` (cgroupfs driver).
    case docker
    /// containerd's CRI plugin: `cri-containerd-<id>.scope`; `/k8s.io/<id>` for its own containers.
    case containerd
    /// CRI-O: `crio-<id>.scope`.
    case crio = "cri-o"
    /// Podman: `libpod-<id>.scope`, or `libpod_parent/libpod-<id>` with the cgroupfs driver.
    case podman
    /// A container of a Kubernetes pod under the kubelet's cgroupfs driver (`kubepods/…/pod<uid>/<id>`),
    /// whose path does not say whether containerd or CRI-O runs it.
    case cri

    /// `docker`, `containerd`, `cri-o`, `podman`, `cri`.
    public var description: String { rawValue }
}
