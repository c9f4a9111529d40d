import Glibc
import Synchronization

/// The `interval` records of open TCP connections: a `sock_diag` dump of the connections (with
/// their `tcp_info`) every interval, and one record for each that moved data since its last one;
/// at start, one for every connection open (the snapshot).
///
/// A connection's first record carries what it moved since it opened, and each later one what it
/// moved since the record before, so its records plus what is left at its close add up exactly to
/// its close totals (the same kernel counters). Owners come from the connect and accept events
/// (joined by socket cookie); a connection opened before tracing began is owned by the process
/// holding its socket (`/proc/PID/fd`, ``TCPConnectionEvent/OwnerSource/openFile``). The dump
/// sees the monitor's own network namespace.
package final class ConnectionPoller: Sendable {
    /// Who owns a connection, as its records say.
    struct Owner: Sendable {
        var process: EventProcess
        var source: TCPConnectionEvent.OwnerSource
        var cgroupID: UInt64
    }

    private struct State {
        /// By socket cookie: owners seen at connect or accept, or found in /proc.
        var owners: [UInt64: Owner] = [:]
        /// By socket cookie: the totals the last record of each connection reached.
        var reported: [UInt64: TCPInfo.Totals] = [:]
        /// By socket cookie: the poll whose /proc search did not find the socket's holder. The
        /// search is repeated only every ``researchPolls`` polls: a walk of every process's
        /// descriptors each poll would cost more than the poll.
        var searched: [UInt64: UInt64] = [:]
        /// Open connections that got no record for want of an owner (counted once each).
        var unowned: Set<UInt64> = []
        var unownedCount: UInt64 = 0
        var polls: UInt64 = 0
        var failedPolls: UInt64 = 0
        var lastFailure: BPFError?
    }

    /// A listing of the open connections and the owners found for them in /proc, made outside
    /// the producer's lock (so decoding goes on meanwhile) and joined with the events under it.
    private struct Listing {
        var sockets: [SocketDiagnostics.Socket]
        var holders: [UInt32: SocketOwners.Owner]
        /// The inodes whose holders were searched for: the rest were not due for a search.
        var searched: Set<UInt32>
        var time: UInt64
    }

    private let state = Locked(State())
    private let listing = Locked<Listing?>(nil)
    private let filter: ResolvedFilter
    private let clock: WallClock
    private let namespace: UInt32
    private static let researchPolls: UInt64 = 10

    /// The states of a connection that has opened and not yet closed: ESTABLISHED, FIN_WAIT1,
    /// FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING.
    package static let openStates = SocketDiagnostics.states([1, 4, 5, 8, 9, 11])

    init(filter: ResolvedFilter, clock: WallClock) {
        self.filter = filter
        self.clock = clock
        var info = stat()
        namespace = stat("/proc/self/ns/net", &info) == 0 ? UInt32(truncatingIfNeeded: info.st_ino) : 0
    }

    /// Takes note of an event of the TCP program: an open's owner, a close's end. A close whose
    /// owner the kernel no longer knew (evicted) gets the one the poll knew: from the connect or
    /// accept event, or the process found holding the socket.
    func record(_ event: inout TCPConnectionEvent) {
        guard let id = event.socketID else { return }
        switch event.kind {
        case .connect, .accept:
            let owner = Owner(process: event.process, source: event.ownerSource, cgroupID: event.cgroupID)
            state.withLock { $0.owners[id] = owner }
        case .close, .fail:
            let known = state.withLock { state in
                state.reported[id] = nil
                return state.owners.removeValue(forKey: id)
            }
            if event.ownerSource == .unknown, let known {
                event.process = known.process
                event.ownerSource = known.source
                event.cgroupID = known.cgroupID
            }
        case .interval:
            break
        }
    }

    /// Whether an event passes the monitor's filters in full: for a close whose owner the kernel
    /// did not know, which it let through its owner filters (`PASS_UNKNOWN_OWNERS`), once
    /// ``record(_:)`` has named the owner the poll knew. An owner still unknown passes no pid,
    /// uid or cgroup filter.
    func passesFilter(_ event: TCPConnectionEvent) -> Bool {
        filter.matches(
            pid: event.process.pid, uid: event.process.uid, endpoints: event.endpoints, cgroupID: event.cgroupID,
            networkNamespace: event.networkNamespace)
    }

    /// Lists the open connections and searches /proc for the holders of those no event owned:
    /// the slow half of a poll, run outside the producer's lock.
    func prepare() {
        let sockets: [SocketDiagnostics.Socket]
        do {
            // A family filter halves the dump: the kernel lists only that family.
            sockets = try SocketDiagnostics.dump(
                protocolNumber: UInt8(IPPROTO_TCP), families: filter.filter.family.map { [$0] } ?? [.ipv4, .ipv6], states: Self.openStates,
                info: true)
        } catch {
            state.withLock { state in
                state.failedPolls += 1
                state.lastFailure = error
            }
            listing.withLock { $0 = nil }
            return
        }
        let time = clock.wallClock(fromMonotonic: UInt64(WallClock.now(CLOCK_MONOTONIC)))
        // Only connections the filter's ports and family let through need an owner.
        let unknown = state.withLock { state in
            var inodes = Set<UInt32>()
            for socket in sockets where socket.inode != 0 && state.owners[socket.cookie] == nil
                && (state.searched[socket.cookie].map { state.polls - $0 >= Self.researchPolls } ?? true)
                && filter.matches(endpoints: socket.endpoints)
            {
                inodes.insert(socket.inode)
            }
            return inodes
        }
        let holders = SocketOwners.find(unknown, among: filter.filter.pids.isEmpty ? nil : Array(filter.filter.pids))
        listing.withLock { $0 = Listing(sockets: sockets, holders: holders, searched: unknown, time: time) }
    }

    /// Appends, from the listing ``prepare()`` made, a record for each open connection that
    /// moved data since its last record, or with `everyConnection`, for each open connection.
    func poll(everyConnection: Bool, into events: inout [TCPConnectionEvent]) {
        guard let listing = listing.withLock({ listing in
            defer { listing = nil }
            return listing
        }) else { return }
        state.withLock { state in
            state.polls += 1
            var open = Set<UInt64>()
            for socket in listing.sockets {
                open.insert(socket.cookie)
                if state.owners[socket.cookie] == nil {
                    if let holder = listing.holders[socket.inode] {
                        state.owners[socket.cookie] = Owner(process: holder.process, source: .openFile, cgroupID: holder.cgroupID)
                        state.searched[socket.cookie] = nil
                    } else if listing.searched.contains(socket.inode) {
                        state.searched[socket.cookie] = state.polls  // searched now, in vain: not again for a while
                    }
                }
                guard let owner = state.owners[socket.cookie] else {
                    if filter.matches(endpoints: socket.endpoints), state.unowned.insert(socket.cookie).inserted { state.unownedCount += 1 }
                    continue
                }
                // A socket whose info did not come is forgotten by nobody: its next record still
                // starts from what its last one reached.
                guard let info = TCPInfo(socket.info) else { continue }
                let moved = info.totals.since(state.reported[socket.cookie] ?? TCPInfo.Totals())
                guard everyConnection || moved != TCPInfo.Totals() else { continue }
                state.reported[socket.cookie] = info.totals
                // An owner from a connect or accept event passed the kernel's filter then; one found
                // in /proc passes the same rule here.
                guard
                    owner.source != .openFile
                        || filter.matches(
                            pid: owner.process.pid, uid: owner.process.uid, endpoints: socket.endpoints, cgroupID: owner.cgroupID,
                            networkNamespace: namespace)
                else { continue }
                events.append(
                    TCPConnectionEvent(
                        kind: .interval, timeNanoseconds: listing.time, process: owner.process, ownerSource: owner.source,
                        endpoints: socket.endpoints, receivedBytes: moved.receivedBytes, sentBytes: moved.sentBytes,
                        segmentsIn: moved.segmentsIn, segmentsOut: moved.segmentsOut, dataSegmentsIn: moved.dataSegmentsIn,
                        dataSegmentsOut: moved.dataSegmentsOut, durationNanoseconds: nil, cgroupID: owner.cgroupID,
                        networkNamespace: namespace, previousState: nil, health: info.health, socketID: socket.cookie))
            }
            // Forget what has closed (its close event may have been filtered, or lost).
            state.owners = state.owners.filter { open.contains($0.key) }
            state.reported = state.reported.filter { open.contains($0.key) }
            state.searched = state.searched.filter { open.contains($0.key) }
            state.unowned.formIntersection(open)
        }
    }

    /// Open connections that got no record: neither an event nor a process owned them.
    var unownedConnections: UInt64 { state.withLock { $0.unownedCount } }
    /// Polls whose dump failed, and the last failure.
    var failures: (count: UInt64, last: BPFError?) { state.withLock { ($0.failedPolls, $0.lastFailure) } }
}
