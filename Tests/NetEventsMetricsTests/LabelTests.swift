import NetEventsCore
import NetEventsMetrics
import NetEventsTesting
import TCPEvent
import UDPEvent
import XCTest

/// The `comm` and `container` labels: what they hold, how their values are bounded, and that any
/// process name makes a valid exposition.
final class LabelTests: XCTestCase {
    func testContainerIsTheFirst12DigitsOfTheContainerID() throws {
        let metrics = NetworkMetrics()
        let id = "0123456789abcdef" + String(repeating: "f", count: 48)
        metrics.record([
            tcpEvent(.connect, comm: "app", cgroup: dockerCgroup(id)),
            tcpEvent(.connect, comm: "app", cgroup: Cgroup(id: 4, path: "/system.slice/nginx.service")),  // no container
            tcpEvent(.connect, comm: "app"),  // cgroup unknown
        ])
        metrics.record([udpEvent(comm: "app", sent: 3, cgroup: dockerCgroup(id))])
        let exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpConnections("connect", comm: "app", container: "0123456789ab"), 1)
        XCTAssertEqual(exposition.tcpConnections("connect", comm: "app", container: ""), 2)
        XCTAssertEqual(exposition.udpBytes("sent", comm: "app", container: "0123456789ab"), 3)
        XCTAssertEqual(exposition.series(named: Name.tcpConnections).count, 2)
    }

    /// The first names keep their series for good; every later one counts as `other`, and the
    /// series still add up to all the traffic.
    func testCommandsPastTheLimitFoldIntoOther() throws {
        let metrics = NetworkMetrics(limits: LabelLimits(commands: 2, containers: 1))
        let sent: [(String, UInt64)] = [("a", 1), ("b", 2), ("c", 4), ("d", 8), ("a", 16), ("c", 32), ("b", 64), ("e", 128), ("a", 256)]
        metrics.record(sent.map { tcpEvent(.close, comm: $0.0, sent: $0.1) })
        metrics.record([udpEvent(comm: "d", sent: 1_000), udpEvent(comm: "b", sent: 2_000)])
        metrics.update(try TCPMonitor(source: MockSampleSource()))
        let exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "a"), 273)
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "b"), 66)
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "other"), 172)
        XCTAssertEqual(exposition.tcpConnections("close", comm: "other"), 4)
        XCTAssertEqual(exposition.udpBytes("sent", comm: "other"), 1_000)
        XCTAssertEqual(exposition.udpBytes("sent", comm: "b"), 2_000)
        XCTAssertEqual(Set(exposition.series(named: Name.tcpBytes).map { $0.labels["comm"] }), ["a", "b", "other"])
        XCTAssertEqual(exposition.total(Name.tcpBytes), 511, "the series add up to all the traffic")
        XCTAssertEqual(exposition.total(Name.tcpConnections), 9)
        XCTAssertEqual(exposition[Name.foldedLabelValues, ["label": "comm"]], 3, "c, d and e")
        XCTAssertEqual(exposition[Name.foldedLabelValues, ["label": "container"]], 0)
    }

    func testContainersPastTheLimitFoldIntoOtherButNoContainerKeepsItsSeries() throws {
        let metrics = NetworkMetrics(limits: LabelLimits(commands: 2, containers: 1))
        let (x, y, z) = (dockerCgroup(containerID("1")), dockerCgroup(containerID("2")), dockerCgroup(containerID("3")))
        metrics.record([
            tcpEvent(.close, comm: "app", sent: 1, cgroup: x), tcpEvent(.close, comm: "app", sent: 2, cgroup: y),
            tcpEvent(.close, comm: "app", sent: 4, cgroup: z), tcpEvent(.close, comm: "app", sent: 8),
            tcpEvent(.close, comm: "app", sent: 16, cgroup: x),
        ])
        metrics.update(try UDPMonitor(source: MockSampleSource()))
        let exposition = try metrics.exposition()
        XCTAssertEqual(
            exposition.byCommAndContainer(Name.tcpBytes, direction: "sent"), ["app/111111111111": 17, "app/other": 6, "app/": 8])
        XCTAssertEqual(exposition.series(named: Name.tcpBytes).count, 3)
        XCTAssertEqual(exposition.total(Name.tcpBytes), 31)
        XCTAssertEqual(exposition[Name.foldedLabelValues, ["label": "container"]], 2)
        XCTAssertEqual(exposition[Name.foldedLabelValues, ["label": "comm"]], 0)
    }

    /// A process named `other` counts with the folded ones, and takes no place of its own.
    func testACommandNamedOtherCountsUnderOtherWithoutUsingTheBudget() throws {
        let metrics = NetworkMetrics(limits: LabelLimits(commands: 2, containers: 1))
        metrics.record(["other", "a", "b", "c", "other"].enumerated().map { tcpEvent(.close, comm: $0.element, sent: 1 << UInt64($0.offset)) })
        let exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "other"), 1 + 8 + 16)
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "a"), 2)
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "b"), 4)
        XCTAssertEqual(exposition.series(named: Name.tcpBytes).count, 3)
    }

    /// `netevents_label_values_folded` says how many values the limit turned away (its help: "because
    /// the label's limit was reached"); a process that calls itself `other` was turned away by none.
    func testACommandNamedOtherIsNoFoldedValue() throws {
        let metrics = NetworkMetrics(limits: LabelLimits(commands: 2, containers: 1))
        metrics.record([tcpEvent(.close, comm: "other", sent: 1), tcpEvent(.close, comm: "a", sent: 2)])
        metrics.update(try TCPMonitor(source: MockSampleSource()))
        let exposition = try metrics.exposition()
        XCTAssertEqual(exposition.tcpBytes("sent", comm: "other"), 1)
        XCTAssertEqual(exposition[Name.foldedLabelValues, ["label": "comm"]], 0, "the limit of 2 was never reached")
    }

    func testLimitsOfZeroFoldEverything() throws {
        let metrics = NetworkMetrics(limits: LabelLimits(commands: 0, containers: 0))
        let x = dockerCgroup(containerID("1"))
        metrics.record([tcpEvent(.close, comm: "a", sent: 1, cgroup: x), tcpEvent(.close, comm: "b", sent: 2)])
        metrics.record([udpEvent(comm: "c", received: 4, receivedPackets: 1, cgroup: x)])
        metrics.update(try TCPMonitor(source: MockSampleSource()))
        let exposition = try metrics.exposition()
        XCTAssertEqual(exposition.byCommAndContainer(Name.tcpBytes, direction: "sent"), ["other/other": 1, "other/": 2])
        XCTAssertEqual(exposition.udpBytes("received", comm: "other", container: "other"), 4)
        XCTAssertEqual(exposition.series(named: Name.tcpBytes).count, 2)
        XCTAssertEqual(exposition.series(named: Name.udpBytes).count, 1)
        XCTAssertEqual(exposition[Name.foldedLabelValues, ["label": "comm"]], 3)
        XCTAssertEqual(exposition[Name.foldedLabelValues, ["label": "container"]], 1)
    }

    /// Any process can name itself anything: quotes, backslashes, line feeds and control bytes must
    /// come out escaped (`\"`, `\\`, `\n`), and read back as the name itself.
    func testHostileCommandNamesMakeAValidExposition() throws {
        let metrics = NetworkMetrics()
        let names = ["q\"b\\s\nn\u{1B}[2J", "a,b=}{\" x", "\\", "\"", "\n", "é日本"]
        metrics.record(names.map { tcpEvent(.close, comm: $0, sent: 3) })
        metrics.record(names.map { udpEvent(comm: $0, sent: 5, sentPackets: 1) })
        let text = metrics.registry.emitToString()
        XCTAssertTrue(text.contains(#"comm="q\"b\\s\nn"# + "\u{1B}[2J\""), text)
        let exposition = try metrics.exposition()
        for name in names {
            XCTAssertEqual(exposition.tcpBytes("sent", comm: name), 3, name.debugDescription)
            XCTAssertEqual(exposition.tcpConnections("close", comm: name), 1, name.debugDescription)
            XCTAssertEqual(exposition.udpPackets("sent", comm: name), 1, name.debugDescription)
        }
        XCTAssertEqual(exposition.series(named: Name.tcpBytes).count, names.count)
    }
}
