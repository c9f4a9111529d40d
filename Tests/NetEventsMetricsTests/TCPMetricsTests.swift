import NetEventsMetrics
import XCTest

/// TCP events into connection counts, byte counters and the two histograms.
final class TCPMetricsTests: XCTestCase {
    func testConnectionEventsCountByKindCommAndContainer() throws {
        let metrics = NetworkMetrics()
        let id = containerID("a")
        metrics.record([
            tcpEvent(.connect), tcpEvent(.connect), tcpEvent(.accept, comm: "nginx", cgroup: dockerCgroup(id)),
            tcpEvent(.fail), tcpEvent(.close), tcpEvent(.close, comm: "nginx", cgroup: dockerCgroup(id)),
            tcpEvent(.interval, sent: 5),  // no connection event: only bytes
        ])
        metrics.record([tcpEvent(.close), tcpEvent(.connect)])
        let exposition = try metrics.exposition()
        XCTAssertEqual(
            Dictionary(uniqueKeysWithValues: exposition.series(named: Name.tcpConnections).map { ($0, exposition.values[$0]!) }),
            [
                Series(Name.tcpConnections, ["event": "connect", "comm": "curl", "container": ""]): 3,
                Series(Name.tcpConnections, ["event": "fail", "comm": "curl", "container": ""]): 1,
                Series(Name.tcpConnections, ["event": "close", "comm": "curl", "container": ""]): 2,
                Series(Name.tcpConnections, ["event": "accept", "comm": "nginx", "container": "aaaaaaaaaaaa"]): 1,
                Series(Name.tcpConnections, ["event": "close", "comm": "nginx", "container": "aaaaaaaaaaaa"]): 1,
            ])
    }

    /// A close no process claimed counts under a `comm` no process can have, never under `""`.
    func testAnUnknownOwnersCloseCountsUnderItsOwnLabel() throws {
        let metrics = NetworkMetrics()
        metrics.record([tcpEvent(.close, sent: 300, owner: .unknown), tcpEvent(.close, comm: "curl", sent: 7)])
        let exposition = try metrics.exposition()
        XCTAssertEqual(NetworkMetrics.unknownOwnerLabel.utf8.count, 16, "longer than any comm (15 bytes)")
        XCTAssertEqual(exposition.tcpConnections("close", comm: NetworkMetrics.unknownOwnerLabel), 1)
        XCTAssertEqual(exposition.tcpBytes("sent", comm: NetworkMetrics.unknownOwnerLabel), 300)
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "curl"), 7)
        XCTAssertNil(exposition.tcpConnections("close", comm: ""), "no series with an empty comm")
    }

    func testClosesWithoutSocketIDAddTheirTotals() throws {
        let metrics = NetworkMetrics()
        metrics.record([tcpEvent(.close, sent: 1_000, received: 200), tcpEvent(.close, sent: 500)])
        metrics.record([tcpEvent(.close, comm: "idle")])  // nothing moved: no byte series for it
        let exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "curl"), 1_500)
        XCTAssertEqual(exposition.tcpBytes("received", comm: "curl"), 200)
        XCTAssertEqual(exposition.series(named: Name.tcpBytes).count, 2, "\(exposition.series(named: Name.tcpBytes))")
        XCTAssertEqual(exposition.tcpConnections("close", comm: "idle"), 1)
    }

    /// Intervals count as the connection lives; its close adds only what they had not counted, so
    /// the connection's whole contribution is its close totals.
    func testIntervalsThenCloseAddExactlyTheCloseTotals() throws {
        let metrics = NetworkMetrics()
        metrics.record([tcpEvent(.interval, socket: 1, sent: 100, received: 10)])
        var exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "curl"), 100)
        XCTAssertEqual(exposition.tcpBytes("received", comm: "curl"), 10)

        // Another connection's records interleave; each socket keeps its own sums.
        metrics.record([tcpEvent(.interval, socket: 2, sent: 1_000), tcpEvent(.interval, socket: 1, sent: 50, received: 20)])
        exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "curl"), 1_150)
        XCTAssertEqual(exposition.tcpBytes("received", comm: "curl"), 30)

        metrics.record([tcpEvent(.close, socket: 1, sent: 180, received: 40)])
        exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "curl"), 1_180, "socket 1: 180 in all, socket 2: 1,000 so far")
        XCTAssertEqual(exposition.tcpBytes("received", comm: "curl"), 40)

        metrics.record([tcpEvent(.close, socket: 2, sent: 1_003, received: 5)])
        exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "curl"), 1_183)
        XCTAssertEqual(exposition.tcpBytes("received", comm: "curl"), 45)

        // The close forgot socket 1's sums: a later record of that id starts from zero.
        metrics.record([tcpEvent(.close, socket: 1, sent: 7)])
        XCTAssertEqual(try metrics.exposition().tcpBytes("sent", comm: "curl"), 1_190)
    }

    /// A counter never goes back: a close below what its intervals counted adds nothing.
    func testCloseBelowItsIntervalsAddsNothing() throws {
        let metrics = NetworkMetrics()
        metrics.record([tcpEvent(.interval, socket: 3, sent: 100, received: 60), tcpEvent(.close, socket: 3, sent: 80, received: 90)])
        let exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "curl"), 100)
        XCTAssertEqual(exposition.tcpBytes("received", comm: "curl"), 90)
    }

    func testIntervalsWithoutSocketIDAreNotSubtractedFromACloseWithout() throws {
        let metrics = NetworkMetrics()
        metrics.record([tcpEvent(.interval, sent: 100), tcpEvent(.close, sent: 180)])
        XCTAssertEqual(try metrics.exposition().tcpBytes("sent", comm: "curl"), 280)
    }

    func testFailForgetsTheSocketsIntervalSums() throws {
        let metrics = NetworkMetrics()
        metrics.record([tcpEvent(.interval, socket: 5, sent: 100), tcpEvent(.fail, socket: 5, sent: 1, received: 1)])
        var exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "curl"), 100, "a fail adds no bytes")
        XCTAssertNil(exposition.tcpBytes("received", comm: "curl"))
        XCTAssertEqual(exposition.tcpConnections("fail", comm: "curl"), 1)

        metrics.record([tcpEvent(.close, socket: 5, sent: 180)])
        exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "curl"), 280, "the close's totals, none of them counted before")
    }

    func testClosesObserveDurationAndSmoothedRTT() throws {
        let metrics = NetworkMetrics()
        // Registered from the start, empty.
        var exposition = try metrics.exposition()
        XCTAssertEqual(exposition[Name.tcpDuration + "_count"], 0)
        XCTAssertEqual(exposition[Name.tcpSmoothedRTT + "_count"], 0)

        metrics.record([
            tcpEvent(.close, durationNanoseconds: 500_000_000, srttMicroseconds: 200),
            tcpEvent(.close, durationNanoseconds: 2_000_000_000, srttMicroseconds: 5_000),
            tcpEvent(.close),  // opened before tracing, no RTT sample: neither histogram
            // Only closes are observed.
            tcpEvent(.fail, durationNanoseconds: 3_000_000_000, srttMicroseconds: 300),
            tcpEvent(.connect, durationNanoseconds: 4_000_000_000, srttMicroseconds: 400),
            tcpEvent(.interval, socket: 9, durationNanoseconds: 5_000_000_000, srttMicroseconds: 500),
        ])
        exposition = try metrics.exposition()
        XCTAssertEqual(exposition[Name.tcpDuration + "_count"], 2)
        XCTAssertEqual(exposition[Name.tcpDuration + "_sum"], 2.5)
        XCTAssertEqual(exposition.bucket(Name.tcpDuration, le: 0.1), 0)
        XCTAssertEqual(exposition.bucket(Name.tcpDuration, le: 0.5), 1, "a bound includes its value")
        XCTAssertEqual(exposition.bucket(Name.tcpDuration, le: 1), 1)
        XCTAssertEqual(exposition.bucket(Name.tcpDuration, le: 5), 2)
        XCTAssertEqual(exposition[Name.tcpDuration + "_bucket", ["le": "+Inf"]], 2)

        XCTAssertEqual(exposition[Name.tcpSmoothedRTT + "_count"], 2)
        XCTAssertEqual(try XCTUnwrap(exposition[Name.tcpSmoothedRTT + "_sum"]), 0.0052, accuracy: 1e-12)
        XCTAssertEqual(exposition.bucket(Name.tcpSmoothedRTT, le: 0.000_1), 0)
        XCTAssertEqual(exposition.bucket(Name.tcpSmoothedRTT, le: 0.000_25), 1)
        XCTAssertEqual(exposition.bucket(Name.tcpSmoothedRTT, le: 0.002_5), 1)
        XCTAssertEqual(exposition.bucket(Name.tcpSmoothedRTT, le: 0.005), 2)
        XCTAssertEqual(exposition[Name.tcpSmoothedRTT + "_bucket", ["le": "+Inf"]], 2)
    }
}

extension TCPMetricsTests {
    /// A connection open before the start comes first as a snapshot record (owner `fd`) with all
    /// it ever moved: that is its baseline, not counted, so a restart adds no past. What it moves
    /// later is counted, by its next records and by its close.
    func testASnapshotRecordIsABaselineNotTraffic() throws {
        let metrics = NetworkMetrics()
        metrics.countsTrafficAfter(1)  // the helper's events are at time 1: the snapshot
        metrics.record([tcpEvent(.interval, comm: "db", socket: 7, sent: 500_000, received: 9_000, owner: .openFile)])
        XCTAssertNil(try metrics.exposition()[Name.tcpBytes, ["direction": "sent", "comm": "db", "container": ""]])
        metrics.record([tcpEvent(.interval, comm: "db", socket: 7, sent: 50, received: 5, owner: .openFile)])
        metrics.record([tcpEvent(.close, comm: "db", socket: 7, sent: 500_080, received: 9_006, owner: .openFile)])
        let exposition = try metrics.exposition()
        XCTAssertEqual(exposition[Name.tcpBytes, ["direction": "sent", "comm": "db", "container": ""]], 80)
        XCTAssertEqual(exposition[Name.tcpBytes, ["direction": "received", "comm": "db", "container": ""]], 6)
    }
}

extension TCPMetricsTests {
    /// A new connection the poll lists before its accept arrives also has owner `fd`: after the
    /// start's snapshot, its bytes are traffic, counted (seen in CI: 10,000 bytes went missing).
    func testAnOpenFileRecordAfterTheSnapshotCounts() throws {
        let metrics = NetworkMetrics()
        metrics.countsTrafficAfter(0)  // the snapshot ended before the helper's events (time 1)
        metrics.record([tcpEvent(.interval, comm: "srv", socket: 8, sent: 0, received: 10_000, owner: .openFile)])
        metrics.record([tcpEvent(.close, comm: "srv", socket: 8, sent: 0, received: 30_000, owner: .accept)])
        XCTAssertEqual(try metrics.exposition()[Name.tcpBytes, ["direction": "received", "comm": "srv", "container": ""]], 30_000)
    }
}
