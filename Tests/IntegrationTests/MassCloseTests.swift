import Foundation
import UDPEvent
import XCTest

/// A mass close at the default sizes: processes holding 102,000 UDP sockets, one 8-byte datagram
/// each, killed together, so the kernel releases them all within a fraction of a second, far
/// faster than the reader empties the buffer. Every datagram must be accounted for: in a close
/// event of its flow (the flow map holds 65,536; a close that finds the buffer full waits in the
/// map for the next scan), or, for the sockets the full map had no room for, in the unattributed
/// count. No close sample may be lost, and nothing may be dropped.
final class MassCloseTests: XCTestCase {
    func testAHundredThousandSocketsClosedAtOnceLoseNothing() throws {
        try requireBPF()
        // Intervals far apart: every flow's one datagram comes in its close event.
        let monitor = try UDPMonitor(configuration: .init(options: .init(interval: 3600)))
        let collector = Collector<UDPTrafficEvent>()
        try monitor.start { collector.add($0) }
        defer { monitor.stop() }
        let before = monitor.statistics

        // Each process holds at most what its descriptor limit allows, from its own source
        // address (one address's ephemeral ports run out near 28,000).
        let traffic = try builtExecutable("netevents-traffic").path
        let perProcess = 17_000
        var children: [pid_t] = []
        defer { for pid in children { kill(pid, SIGKILL); reap(pid) } }
        var sockets = 0
        for index in 2...7 {
            var pipe: [Int32] = [0, 0]
            XCTAssertEqual(pipe.withUnsafeMutableBufferPointer { Glibc.pipe($0.baseAddress!) }, 0)
            for descriptor in pipe { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
            let pid = try spawn([traffic, "udp-sockets", "--count", "\(perProcess)", "--source", "127.0.0.\(index)"], output: pipe[1])
            close(pipe[1])
            children.append(pid)
            let line = readLine(from: pipe[0])
            close(pipe[0])
            let opened = try XCTUnwrap(line.split(separator: " ").first { $0.hasPrefix("sockets=") }.flatMap { Int($0.dropFirst(8)) }, line)
            sockets += opened
        }
        XCTAssertEqual(sockets, 6 * perProcess, "a process could not open its sockets (descriptor limit?)")
        let pids = Set(children)
        for pid in children { kill(pid, SIGTERM) }
        for pid in children { reap(pid) }
        children = []

        // Every release of a socket with a flow seen by the close hook (each socket without one
        // sent its datagram unattributed), then the stop's last scan collects what waited.
        func settled() -> Bool {
            let now = monitor.statistics
            return (now.closes - before.closes) + (now.unattributedPackets - before.unattributedPackets) >= UInt64(sockets)
        }
        let deadline = Date().addingTimeInterval(60)
        while !settled() && Date() < deadline { usleep(50_000) }
        monitor.stop()
        let statistics = monitor.statistics
        let attributed = collector.events.filter { pids.contains($0.pid) }.reduce(0) { $0 + $1.sentPackets }
        let unattributed = statistics.unattributedPackets - before.unattributedPackets
        print("mass close: \(sockets) sockets; attributed \(attributed), unattributed \(unattributed), deferred closes \(statistics.deferredCloses)")
        XCTAssertEqual(statistics.lostSamples, 0, "close samples lost: \(statistics)")
        XCTAssertEqual(statistics.droppedEvents, 0, "\(statistics)")
        XCTAssertEqual(attributed + unattributed, UInt64(sockets), "attributed \(attributed), unattributed \(unattributed): \(statistics)")
        XCTAssertGreaterThan(attributed, 60_000, "the flow map should have held most of them: \(statistics)")
        let ours = collector.events.filter { pids.contains($0.pid) }
        XCTAssertEqual(ours.count, Int(attributed), "one event per flow")
        for event in ours where event.reason != .close || event.sentPackets != 1 || event.sentBytes != 8 {
            XCTFail("not one close of one 8-byte datagram: \(event)")
            break
        }
    }

    /// The first line `descriptor` gives (up to its end).
    private func readLine(from descriptor: Int32) -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(descriptor, &byte, 1) == 1 && byte != UInt8(ascii: "\n") { bytes.append(byte) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
