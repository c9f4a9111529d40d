import Dispatch
import NetEventsMetrics
import TCPEvent
import XCTest

/// The TCP and UDP monitors deliver on threads of their own, and scrapes come on a third: no count
/// may be lost to a race.
final class ConcurrencyTests: XCTestCase {
    func testTCPAndUDPBatchesFromTwoThreadsAddUpExactly() throws {
        // Four names over a limit of two: the folding runs under contention too.
        let metrics = NetworkMetrics(limits: LabelLimits(commands: 2, containers: 1))
        let commands = ["a", "b", "c", "d"]
        let (batches, batchSize) = (100, 100)  // 10,000 events per thread
        DispatchQueue.concurrentPerform(iterations: 3) { thread in
            for batch in 0..<batches {
                switch thread {
                case 0:
                    metrics.record((0..<batchSize).map { index in
                        // Pairs of events: a connection's interval, then its close.
                        let (socket, comm) = (UInt64(batch * batchSize + index / 2), commands[index / 2 % 4])
                        return index % 2 == 0
                            ? tcpEvent(.interval, comm: comm, socket: socket, sent: 3, received: 1)
                            : tcpEvent(.close, comm: comm, socket: socket, sent: 5, received: 2)
                    })
                case 1:
                    metrics.record((0..<batchSize).map { index in
                        udpEvent(comm: commands[(index + 1) % 4], sent: 7, received: 11, sentPackets: 1, receivedPackets: 2)
                    })
                default:
                    _ = metrics.registry.emitToString()  // a scrape while they count
                }
            }
        }
        let exposition = try metrics.exposition()
        // 5,000 connections: each an interval of 3 then a close at 5 in all (sent), 1 then 2 (received).
        XCTAssertEqual(exposition.total(Name.tcpBytes, matching: ["direction": "sent"]), 25_000)
        XCTAssertEqual(exposition.total(Name.tcpBytes, matching: ["direction": "received"]), 10_000)
        XCTAssertEqual(exposition.total(Name.tcpConnections, matching: ["event": "close"]), 5_000)
        XCTAssertEqual(exposition.total(Name.udpBytes, matching: ["direction": "sent"]), 70_000)
        XCTAssertEqual(exposition.total(Name.udpBytes, matching: ["direction": "received"]), 110_000)
        XCTAssertEqual(exposition.total(Name.udpPackets, matching: ["direction": "sent"]), 10_000)
        XCTAssertEqual(exposition.total(Name.udpPackets, matching: ["direction": "received"]), 20_000)
        XCTAssertEqual(Set(exposition.series(named: Name.udpBytes).map { $0.labels["comm"] }).count, 3, "two names and other")
    }
}
