import NetEventsMetrics
import XCTest

/// UDP events into byte and datagram counters: every event carries counts since its pair's
/// previous one, so every reason adds all it carries.
final class UDPMetricsTests: XCTestCase {
    func testEveryReasonAddsItsCounts() throws {
        let metrics = NetworkMetrics()
        metrics.record([
            udpEvent(.interval, sent: 100, received: 10, sentPackets: 2, receivedPackets: 1),
            udpEvent(.close, sent: 50, sentPackets: 1),
        ])
        metrics.record([
            udpEvent(.stop, received: 5, receivedPackets: 1),
            udpEvent(.idle, sent: 1, received: 1, sentPackets: 1, receivedPackets: 1),
        ])
        let exposition = try metrics.exposition()
        XCTAssertEqual(exposition.udpCounts(comm: "dig"), [151, 16, 4, 3])
    }

    /// Series are made on first non-zero use: a process has only the series of what it did.
    func testSeriesExistOnlyForWhatAProcessMoved() throws {
        let metrics = NetworkMetrics()
        metrics.record([tcpEvent(.close, comm: "curl", sent: 10, received: 10)])
        metrics.record([
            udpEvent(comm: "dig", received: 40, receivedPackets: 1),
            udpEvent(.close, comm: "silent"),  // every close is reported, even with nothing moved
        ])
        let exposition = try metrics.exposition()
        let udpSeries = Set(exposition.series(named: Name.udpBytes) + exposition.series(named: Name.udpPackets))
        XCTAssertEqual(udpSeries, [
            Series(Name.udpBytes, ["direction": "received", "comm": "dig", "container": ""]),
            Series(Name.udpPackets, ["direction": "received", "comm": "dig", "container": ""]),
        ])
        let tcpSeries = exposition.series(named: Name.tcpBytes) + exposition.series(named: Name.tcpConnections)
        XCTAssertEqual(Set(tcpSeries.map { $0.labels["comm"] }), ["curl"], "no TCP series for a process that only did UDP")
    }
}
