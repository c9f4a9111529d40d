import Foundation
import UDPEvent
import XCTest

/// Mass closes at the default sizes: processes holding many UDP sockets, one 8-byte datagram per
/// socket and peer, killed together, so the kernel releases every socket within a fraction of a
/// second, far faster than the reader empties the buffer. Every datagram must be accounted for,
/// within the interval and before any stop: in a close event of its flow (a close that finds the
/// buffer full waits in the kernel for the next scan, within a second), or, for the flows the full
/// flow map (65,536) had no room for, in the unattributed count. No sample may be lost.
final class MassCloseTests: XCTestCase {
    /// 102,000 sockets with one peer each: 65,536 flows, the rest unattributed.
    func testAHundredThousandSocketsClosedAtOnceLoseNothing() throws {
        try closeAtOnce(processes: 6, socketsEach: 17_000, peers: 1, expectAttributed: 60_000)
    }

    /// 8,000 sockets with 6 peers each: more pairs than the kernel tracks per socket, so each close
    /// also asks user space to flush the rest, and those requests find the buffer full too.
    func testSocketsWithManyPeersClosedAtOnceLoseNothing() throws {
        try closeAtOnce(processes: 2, socketsEach: 4_000, peers: 6, expectAttributed: 48_000)
    }

    /// Starts `processes` generators of `socketsEach` sockets with `peers` peers each (each from
    /// its own source address: one address's ephemeral ports run out near 28,000), kills them at
    /// once, and checks every datagram's account; at least `expectAttributed` in flows.
    private func closeAtOnce(processes: Int, socketsEach: Int, peers: Int, expectAttributed: Int) throws {
        try requireBPF()
        // Interval reports an hour apart, so each flow's one report is its close; the waiting
        // closes are still collected every second.
        let monitor = try UDPMonitor(configuration: .init(options: .init(interval: 3600)))
        let collector = Collector<UDPTrafficEvent>()
        try monitor.start { collector.add($0) }
        defer { monitor.stop() }
        let before = monitor.statistics

        let traffic = try builtExecutable("netevents-traffic").path
        var children: [pid_t] = []
        defer { for pid in children { kill(pid, SIGKILL); reap(pid) } }
        var sockets = 0
        for index in 0..<processes {
            let holder = try startHolding([traffic, "udp-sockets", "--count", "\(socketsEach)", "--source", "127.0.0.\(index + 2)", "--peers", "\(peers)"])
            children.append(holder.pid)
            sockets += try XCTUnwrap(holder.fields["sockets"].flatMap { Int($0) }, "\(holder.fields)")
        }
        XCTAssertEqual(sockets, processes * socketsEach, "a generator could not open its sockets (descriptor limit?)")
        let datagrams = UInt64(sockets * peers)
        let pids = Set(children)
        for pid in children { kill(pid, SIGTERM) }
        for pid in children { reap(pid) }
        children = []

        // Within the interval, not only at stop: the waiting closes come with the next scans.
        func attributed() -> UInt64 { collector.events.filter { pids.contains($0.pid) }.reduce(0) { $0 + $1.sentPackets } }
        func accounted() -> UInt64 { attributed() + monitor.statistics.unattributedPackets - before.unattributedPackets }
        let deadline = Date().addingTimeInterval(30)
        while accounted() < datagrams && Date() < deadline { usleep(100_000) }
        let statistics = monitor.statistics
        print("mass close: \(sockets) sockets × \(peers) peers; attributed \(attributed()), deferred closes \(statistics.deferredCloses): \(statistics)")
        XCTAssertEqual(accounted(), datagrams, "every datagram in a close event or unattributed, before the stop: \(statistics)")
        XCTAssertEqual(statistics.lostSamples, 0, "\(statistics)")
        XCTAssertEqual(statistics.droppedEvents, 0, "\(statistics)")
        XCTAssertGreaterThan(statistics.deferredCloses, 0, "the buffer never filled: the test did not reach the waiting closes")
        XCTAssertGreaterThanOrEqual(attributed(), UInt64(expectAttributed), "\(statistics)")
        let ours = collector.events.filter { pids.contains($0.pid) }
        XCTAssertEqual(UInt64(ours.count), attributed(), "one event per flow")
        for event in ours where event.reason != .close || event.sentPackets != 1 || event.sentBytes != 8 {
            XCTFail("not one close of one 8-byte datagram: \(event)")
            break
        }
    }
}
