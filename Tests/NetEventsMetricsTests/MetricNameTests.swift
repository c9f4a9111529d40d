import NetEventsMetrics
import NetEventsTesting
import Prometheus
import TCPEvent
import XCTest

/// The names and help texts `MetricName` gives, and the type each family is exported as.
final class MetricNameTests: XCTestCase {
    /// Every descriptor, with the name dashboards use and the type it is registered as.
    let families: [(MetricNameDescriptor, String, String)] = [
        (MetricName.tcpConnections, Name.tcpConnections, "counter"),
        (MetricName.tcpBytes, Name.tcpBytes, "counter"),
        (MetricName.udpBytes, Name.udpBytes, "counter"),
        (MetricName.udpPackets, Name.udpPackets, "counter"),
        (MetricName.tcpDuration, Name.tcpDuration, "histogram"),
        (MetricName.tcpSmoothedRTT, Name.tcpSmoothedRTT, "histogram"),
        (MetricName.lostEvents, Name.lostEvents, "counter"),
        (MetricName.missedProgramRuns, "netevents_missed_program_runs_total", "counter"),
        (MetricName.unseenEvents, "netevents_unseen_events_total", "counter"),
        (MetricName.droppedEvents, Name.droppedEvents, "counter"),
        (MetricName.malformedSamples, Name.malformedSamples, "counter"),
        (MetricName.evicted, Name.evicted, "counter"),
        (MetricName.failedPolls, "netevents_failed_polls_total", "counter"),
        (MetricName.buildInfo, Name.buildInfo, "gauge"),
        (MetricName.monitorUp, Name.monitorUp, "gauge"),
        (MetricName.foldedLabelValues, Name.foldedLabelValues, "gauge"),
    ]

    func testEveryFamilyIsExportedUnderItsNameWithItsHelpAndType() throws {
        let metrics = NetworkMetrics()
        metrics.record([tcpEvent(.close, sent: 1, received: 1)])
        metrics.record([udpEvent(sent: 1, received: 1, sentPackets: 1, receivedPackets: 1)])
        metrics.update(try TCPMonitor(source: MockSampleSource()))
        metrics.setUp("tcp", attached: true, version: "1", hook: "h", transport: "t")
        let exposition = try metrics.exposition()
        // Counted only by the kernel (a mock source has none): checked by AgentIntegrationTests.
        let kernelOnly: Set = ["netevents_unseen_events_total"]
        for (descriptor, name, type) in families {
            XCTAssertEqual(descriptor.name, name)
            XCTAssertFalse(descriptor.helpText?.isEmpty ?? true, name)
            if kernelOnly.contains(name) {
                XCTAssertNil(exposition.types[name], "\(name): no series without a kernel count")
                continue
            }
            XCTAssertEqual(exposition.types[name], type, name)
            XCTAssertEqual(exposition.help[name], descriptor.helpText, name)
        }
        XCTAssertEqual(exposition.types.count, families.count - kernelOnly.count, "no family but these: \(exposition.types.keys.sorted())")
    }
}
