import Glibc
import Synchronization

/// Names network namespaces (`netns` in every event, an inode number) the way `ip netns` does:
/// by the files bound in `/run/netns`. A namespace nobody named has no name (nil).
///
/// The directory is read again at most once a second, and at once when an inode not seen before
/// is looked up, so namespaces named after the start are found. Safe to call from any thread.
public final class NetworkNamespaceNames: Sendable {
    /// Where `ip netns add NAME` binds its namespaces.
    public let directory: String
    private let state = Locked(State())

    private struct State {
        var names: [UInt32: String] = [:]
        /// Inodes looked up without a name since the last read.
        var unnamed: Set<UInt32> = []
        var lastRead: UInt64 = 0
    }

    /// The least time between two reads of the directory for inodes already seen.
    static let refreshInterval: UInt64 = 1_000_000_000

    /// Names from `directory` (by default `/run/netns`, where `ip netns` keeps them).
    public init(directory: String = "/run/netns") {
        self.directory = directory
    }

    /// The name `ip netns` gave the namespace with this inode number; nil if none.
    public func name(of inode: UInt32) -> String? {
        guard inode != 0 else { return nil }
        let now = UInt64(WallClock.now(CLOCK_MONOTONIC_COARSE))
        let stale = state.withLock { state -> Bool in
            if now - state.lastRead >= Self.refreshInterval { return true }
            return state.names[inode] == nil && !state.unnamed.contains(inode)
        }
        if stale {
            var names: [UInt32: String] = [:]
            FileSystem.forEachEntry(of: directory) { name, _, _ in
                if let number = FileSystem.inode(of: directory + "/" + name), let inode = UInt32(exactly: number) { names[inode] = name }
            }
            state.withLock { state in
                // Inodes known to have no name keep that answer until the names change: each is
                // read for once, not once a second.
                if names != state.names { state.unnamed = [] }
                state.names = names
                state.lastRead = now
            }
        }
        return state.withLock { state in
            if let name = state.names[inode] { return name }
            state.unnamed.insert(inode)
            return nil
        }
    }
}
