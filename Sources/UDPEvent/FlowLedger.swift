import Foundation

/// What has been reported for each (socket, process, peer) flow, so every report carries exactly the
/// counts since the previous one.
///
/// Periodic scans (timer thread) and close samples (reader thread) both go through one lock, and
/// a scan reads the kernel's counters *inside* it: otherwise a scan could read a pair, a close could
/// report and forget it, and the scan would then report the same traffic again.
final class FlowLedger: @unchecked Sendable {
    // Guarded by `lock`.
    private var reported: [UDPFlow.Key: UDPFlow.Counts] = [:]
    private var idleScans: [UDPFlow.Key: Int] = [:]
    /// The scan in which each pair was last found in the kernel map.
    private var lastSeen: [UDPFlow.Key: Int] = [:]
    private var scanNumber = 0
    private let lock = NSLock()
    let clock: WallClock

    init(clock: WallClock) { self.clock = clock }

    /// A scan step for one pair: `fetch` reads the kernel's entry (nil when gone) under the lock.
    /// Returns the event for what moved since the last report, if anything.
    /// - Parameters:
    ///   - idleLimit: after this many scans without movement, `evict` removes the kernel entry and
    ///     returns its last value, which is reported as `.idle` (nil: never evict).
    func scan(
        reason: UDPTrafficEvent.Reason, at time: UInt64, idleLimit: Int?, fetch: () -> UDPFlow?, evict: () -> UDPFlow?
    ) -> UDPTrafficEvent? {
        lock.lock()
        defer { lock.unlock() }
        guard let flow = fetch() else { return nil }
        lastSeen[flow.key] = scanNumber
        let previous = reported[flow.key] ?? UDPFlow.Counts()
        if flow.counts == previous, reason == .interval, let idleLimit {
            let idle = (idleScans[flow.key] ?? 0) + 1
            idleScans[flow.key] = idle
            guard idle >= idleLimit, let last = evict() else { return nil }
            return finishLocked(last, reason: .idle, time: time)
        }
        idleScans[flow.key] = nil
        reported[flow.key] = flow.counts
        return event(flow, previous: previous, reason: reason, time: time)
    }

    /// Ends a scan: forgets pairs whose kernel entries have been gone for `scansAbsent` scans in a
    /// row. A close sample is read within milliseconds of the close, so by then none is pending
    /// (one that was lost is counted in the statistics); what is left is bookkeeping to drop.
    func endScan(forgettingAfter scansAbsent: Int = 3) {
        lock.lock()
        defer { lock.unlock() }
        let cutoff = scanNumber - scansAbsent
        for (key, seen) in lastSeen where seen <= cutoff {
            lastSeen[key] = nil
            reported[key] = nil
            idleScans[key] = nil
        }
        scanNumber += 1
    }

    /// The final report of a pair whose kernel entry is gone (closed or evicted).
    func finish(_ flow: UDPFlow, reason: UDPTrafficEvent.Reason, at time: UInt64) -> UDPTrafficEvent? {
        lock.lock()
        defer { lock.unlock() }
        return finishLocked(flow, reason: reason, time: time)
    }

    private func finishLocked(_ flow: UDPFlow, reason: UDPTrafficEvent.Reason, time: UInt64) -> UDPTrafficEvent? {
        let previous = reported.removeValue(forKey: flow.key) ?? UDPFlow.Counts()
        idleScans[flow.key] = nil
        lastSeen[flow.key] = nil
        return event(flow, previous: previous, reason: reason, time: time)
    }

    /// Pairs with a report on record.
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return reported.count
    }

    private func event(_ flow: UDPFlow, previous: UDPFlow.Counts, reason: UDPTrafficEvent.Reason, time: UInt64) -> UDPTrafficEvent? {
        let delta = flow.counts - previous
        // Only what moved is reported: a flow whose counts an interval report already carried
        // closes without an event of zeros.
        if delta.isZero { return nil }
        return UDPTrafficEvent(
            timeNanoseconds: time, reason: reason,
            process: EventProcess(pid: Int32(bitPattern: flow.key.pid), uid: flow.uid, command: flow.command, thread: flow.thread,
                executable: flow.executable),
            endpoints: SocketEndpoints(
                family: flow.family, sourceAddress: flow.sourceAddress, sourcePort: flow.sourcePort,
                destinationAddress: flow.destinationAddress, destinationPort: flow.destinationPort),
            receivedBytes: delta.rxBytes, sentBytes: delta.txBytes, receivedPackets: delta.rxPackets, sentPackets: delta.txPackets,
            cgroupID: flow.cgroupID, networkNamespace: flow.networkNamespace, socketID: flow.cookie == 0 ? nil : flow.cookie,
            socketFirstSeenNanoseconds: clock.wallClock(fromMonotonic: flow.key.startNanoseconds))
    }
}
