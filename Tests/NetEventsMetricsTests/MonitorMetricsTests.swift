import Dispatch
import NetEventsMetrics
import NetEventsTesting
import Synchronization
import TCPEvent
import UDPEvent
import XCTest

/// What the metrics say about the monitors themselves: their losses (over mock sample sources,
/// which count lost and malformed samples as the kernel's would), whether they run, and what on.
final class MonitorMetricsTests: XCTestCase {
    /// The exported counters follow the monitor's, growing by the difference at each update.
    func testTCPMonitorLossesGrowByTheirDifferences() throws {
        var configuration = TCPMonitor.Configuration()
        configuration.deliveryCapacity = 4
        let source = MockSampleSource()
        let monitor = try TCPMonitor(source: source, configuration: configuration)
        let metrics = NetworkMetrics()
        // The consumer holds the first event until released, so that further events are dropped.
        let (first, release) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        let delivered = Atomic<Int>(0)
        try monitor.start { event in
            if delivered.add(1, ordering: .relaxed).oldValue == 0 {
                first.signal()
                release.wait()
            }
            metrics.record([event])
        }
        defer { monitor.stop() }
        defer { release.signal() }
        source.emit(TCPSample().bytes)
        first.wait()
        for _ in 0..<20 { source.emit(TCPSample().bytes) }  // 4 queued, 16 dropped
        source.emit([1, 2, 3])
        source.emit([])
        source.reportLost(7)
        metrics.update(monitor)
        var exposition = try metrics.exposition()
        XCTAssertEqual(exposition[Name.lostEvents, ["monitor": "tcp"]], 7)
        XCTAssertEqual(exposition[Name.droppedEvents, ["monitor": "tcp"]], 16)
        XCTAssertEqual(exposition[Name.malformedSamples, ["monitor": "tcp"]], 2)
        XCTAssertEqual(exposition[Name.evicted, ["monitor": "tcp"]], 0, "a mock source has no kernel map to evict from")
        XCTAssertEqual(exposition["netevents_missed_program_runs_total", ["monitor": "tcp"]], 0, "nor programs to skip a run")

        for _ in 0..<5 { source.emit(TCPSample().bytes) }
        source.emit([9])
        source.reportLost(3)
        metrics.update(monitor)
        exposition = try metrics.exposition()
        XCTAssertEqual(exposition[Name.lostEvents, ["monitor": "tcp"]], 10)
        XCTAssertEqual(exposition[Name.droppedEvents, ["monitor": "tcp"]], 21)
        XCTAssertEqual(exposition[Name.malformedSamples, ["monitor": "tcp"]], 3)

        metrics.update(monitor)  // nothing new: nothing added
        XCTAssertEqual(try metrics.exposition()[Name.lostEvents, ["monitor": "tcp"]], 10)
        XCTAssertEqual(try metrics.exposition().series(named: Name.lostEvents).count, 1, "no UDP series before its first update")
    }

    func testEachMonitorHasItsOwnCountersMadeAtItsFirstUpdate() throws {
        let metrics = NetworkMetrics()
        let tcp = try TCPMonitor(source: MockSampleSource())
        let source = MockSampleSource()
        let udp = try UDPMonitor(source: source)
        try udp.start { _ in }
        defer { udp.stop() }
        source.emit(Array(UDPCloseSample().bytes.prefix(16)))
        source.reportLost(4)
        metrics.update(tcp)
        metrics.update(udp)
        var exposition = try metrics.exposition()
        for name in [Name.lostEvents, Name.droppedEvents, Name.malformedSamples, Name.evicted] {
            XCTAssertEqual(exposition[name, ["monitor": "tcp"]], 0, "made at the first update even when zero: \(name)")
        }
        XCTAssertEqual(exposition[Name.lostEvents, ["monitor": "udp"]], 4)
        XCTAssertEqual(exposition[Name.malformedSamples, ["monitor": "udp"]], 1)
        XCTAssertEqual(exposition[Name.droppedEvents, ["monitor": "udp"]], 0)
        XCTAssertNil(exposition[Name.evicted, ["monitor": "udp"]], "UDP pairs freed when idle are no loss")
        XCTAssertEqual(exposition["netevents_unattributed_packets_total", ["monitor": "udp"]], 0)
        XCTAssertEqual(exposition["netevents_unattributed_bytes_total", ["monitor": "udp"]], 0)

        source.reportLost(2)
        source.emit([0])
        source.emit([0, 0])
        metrics.update(udp)
        metrics.update(tcp)
        exposition = try metrics.exposition()
        XCTAssertEqual(exposition[Name.lostEvents, ["monitor": "udp"]], 6)
        XCTAssertEqual(exposition[Name.malformedSamples, ["monitor": "udp"]], 3)
        XCTAssertEqual(exposition[Name.lostEvents, ["monitor": "tcp"]], 0)
    }

    /// Samples through a monitor end up in the series as their events say.
    func testMonitorEventsReachTheSeries() throws {
        let metrics = NetworkMetrics()
        let (tcpSource, udpSource) = (MockSampleSource(), MockSampleSource())
        let tcp = try TCPMonitor(source: tcpSource)
        let udp = try UDPMonitor(source: udpSource)
        try tcp.startBatched { metrics.record($0) }
        try udp.startBatched { metrics.record($0) }
        tcpSource.emit(TCPSample(kind: .connect)!.bytes)
        tcpSource.emit(TCPSample().bytes)  // a close: 12,347 sent, 778 received, open 1 s, srtt 120 µs
        udpSource.emit(UDPCloseSample().bytes)  // dig: 12,345 and 777 bytes, 3 and 2 datagrams
        tcp.stop()
        udp.stop()
        let exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpConnections("connect", comm: "curl"), 1)
        XCTAssertEqual(exposition.tcpConnections("close", comm: "curl"), 1)
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "curl"), 12_347)
        XCTAssertEqual(exposition.tcpBytes("received", comm: "curl"), 778)
        XCTAssertEqual(exposition[Name.tcpDuration + "_sum"], 1)
        XCTAssertEqual(exposition[Name.tcpSmoothedRTT + "_sum"], 0.000_12)
        XCTAssertEqual(exposition.udpCounts(comm: "dig"), [12_345, 777, 3, 2])
    }

    func testSetUpSaysWhetherEachMonitorRunsAndOnWhat() throws {
        let metrics = NetworkMetrics()
        metrics.setUp("tcp", attached: false, version: "0.3.0")
        var exposition = try metrics.exposition()
        XCTAssertEqual(exposition[Name.monitorUp, ["monitor": "tcp"]], 0)
        XCTAssertTrue(exposition.series(named: Name.buildInfo).isEmpty, "nothing to say before it attached")

        metrics.setUp("tcp", attached: true, version: "0.3.0", hook: "fentry", transport: "ringbuf")
        metrics.setUp("udp", attached: true, version: "0.3.0", hook: "kprobe", transport: "perf", offsets: "estimated")
        exposition = try metrics.exposition()
        XCTAssertEqual(exposition[Name.monitorUp, ["monitor": "tcp"]], 1)
        XCTAssertEqual(exposition[Name.monitorUp, ["monitor": "udp"]], 1)
        XCTAssertEqual(
            exposition[Name.buildInfo, ["version": "0.3.0", "monitor": "tcp", "hook": "fentry", "transport": "ringbuf", "offsets": "btf"]], 1)
        XCTAssertEqual(
            exposition[Name.buildInfo, ["version": "0.3.0", "monitor": "udp", "hook": "kprobe", "transport": "perf", "offsets": "estimated"]], 1)
        XCTAssertEqual(exposition.series(named: Name.buildInfo).count, 2)

        metrics.setUp("tcp", attached: false, version: "0.3.0")  // stopped
        exposition = try metrics.exposition()
        XCTAssertEqual(exposition[Name.monitorUp, ["monitor": "tcp"]], 0)
        XCTAssertEqual(exposition[Name.monitorUp, ["monitor": "udp"]], 1)
    }
}

extension MonitorMetricsTests {
    /// A reading that comes out lower than an earlier one (a failed map read gives 0; two scrapes
    /// race) takes nothing back and adds nothing twice: the counter follows the highest value.
    func testALowerReadingNeitherTakesBackNorCountsTwice() throws {
        let metrics = NetworkMetrics()
        let source = MockSampleSource()
        let udp = try UDPMonitor(source: source)
        try udp.start { _ in }
        defer { udp.stop() }
        source.reportLost(5)
        metrics.update(udp)
        let fresh = try UDPMonitor(source: MockSampleSource())  // the same monitor name, reading 0
        metrics.update(fresh)
        source.reportLost(1)
        metrics.update(udp)
        XCTAssertEqual(try metrics.exposition()[Name.lostEvents, ["monitor": "udp"]], 6)
    }
}
