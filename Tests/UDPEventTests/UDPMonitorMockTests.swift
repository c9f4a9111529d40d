import Foundation
import NetEventsTesting
import XCTest
@testable import UDPEvent

/// Delivery through `UDPMonitor` with a mock sample source: close samples only, no privileges.
final class UDPMonitorMockTests: XCTestCase {
    /// Starts a monitor over a mock source with a callback that collects its events, lets `feed`
    /// emit samples, and stops it; returns the monitor, its source and what the callback got.
    func run(
        _ configuration: UDPMonitor.Configuration = .init(), clock: WallClock = WallClock(), feed: (MockSampleSource) -> Void
    ) throws -> (monitor: UDPMonitor, source: MockSampleSource, events: [UDPTrafficEvent]) {
        let source = MockSampleSource()
        let monitor = try UDPMonitor(source: source, configuration: configuration, clock: clock)
        let recorder = EventRecorder<UDPTrafficEvent>()
        try monitor.start { recorder.record($0) }
        feed(source)
        monitor.stop()
        return (monitor, source, recorder.events)
    }

    func testCloseSamplesBecomeCloseEventsInOrder() throws {
        let (monitor, source, events) = try run(clock: WallClock(offsetNanoseconds: 1_000)) { source in
            for pid in 1...500 {
                var sample = UDPCloseSample()
                sample.pid = UInt32(pid)
                sample.txBytes = UInt64(pid) * 10
                source.emit(sample.bytes)
                if pid % 100 == 0 { source.emit([1, 2, 3]) }  // short: counted, skipped
            }
            source.reportLost(7)
        }
        XCTAssertEqual(events.map(\.pid), Array(1...500))
        XCTAssertEqual(events.map(\.sentBytes), (1...500).map { UInt64($0) * 10 })
        XCTAssertTrue(events.allSatisfy { $0.reason == .close })
        let statistics = monitor.statistics
        XCTAssertEqual(statistics.malformedSamples, 5)
        XCTAssertEqual(statistics.lostSamples, 7)
        XCTAssertEqual(statistics.droppedEvents, 0)
        XCTAssertEqual(statistics.idleEvictions, 0)
        XCTAssertFalse(source.isRunning, "stop closes the source")
    }

    func testCloseEventCarriesTheSampleFieldsAndWallClockTimes() throws {
        let (_, _, events) = try run(clock: WallClock(offsetNanoseconds: 1_700_000_000_000_000_000)) { $0.emit(UDPCloseSample().bytes) }
        let event = try XCTUnwrap(events.first)
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(event.reason, .close)
        XCTAssertEqual(event.timeNanoseconds, 1_700_000_005_000_000_000, "the kernel's close time")
        XCTAssertEqual(event.socketFirstSeenNanoseconds, 1_700_000_004_000_000_000)
        XCTAssertEqual(event.pid, 4242)
        XCTAssertEqual(event.uid, 65_534)
        XCTAssertEqual(event.command, "dig")
        XCTAssertEqual(event.family, .ipv4)
        XCTAssertEqual(event.sourceAddress.description, "127.0.0.1")
        XCTAssertEqual(event.sourcePort, 40_000)
        XCTAssertEqual(event.destinationAddress.description, "127.0.0.53")
        XCTAssertEqual(event.destinationPort, 53)
        XCTAssertTrue(event.hasPeer)
        XCTAssertEqual(event.deltaCounts, counts(tx: 12_345, rx: 777, txPackets: 3, rxPackets: 2))
        XCTAssertEqual(event.cgroupID, 77)
        XCTAssertEqual(event.networkNamespace, 4_026_531_840)
        XCTAssertEqual(event.socketID, 0x2f_0001, "the socket's cookie")
    }

    func testSamplesEmittedBeforeStartAreDelivered() throws {
        let source = MockSampleSource()
        source.emit(UDPCloseSample().bytes)
        let monitor = try UDPMonitor(source: source)
        let recorder = EventRecorder<UDPTrafficEvent>()
        try monitor.start { recorder.record($0) }
        monitor.stop()
        XCTAssertEqual(recorder.events.count, 1)
    }

    func testAsyncSequenceYieldsEverythingThenEndsAfterStop() async throws {
        let source = MockSampleSource()
        let monitor = try UDPMonitor(source: source)
        let stream = try monitor.events()
        for port in 1...50 {
            var sample = UDPCloseSample()
            sample.sport = UInt16(port)
            source.emit(sample.bytes)
        }
        monitor.stop()
        var ports: [UInt16] = []
        for await event in stream {
            XCTAssertEqual(event.reason, .close)
            ports.append(event.sourcePort)
        }
        XCTAssertEqual(ports, (1...50).map(UInt16.init))
    }

    func testAsyncSequenceEndsWhenStoppedWithNothingDelivered() async throws {
        let monitor = try UDPMonitor(source: MockSampleSource())
        let stream = try monitor.events()
        monitor.stop()
        var count = 0
        for await _ in stream { count += 1 }
        XCTAssertEqual(count, 0)
    }

    func testMalformedSamplesAreCountedAndSkipped() throws {
        let (monitor, _, events) = try run { source in
            var badFamily = UDPCloseSample()
            badFamily.family = 1
            source.emit([])
            source.emit(Array(UDPCloseSample().bytes.prefix(135)))
            source.emit(badFamily.bytes)
            var good = UDPCloseSample()
            good.pid = 1
            source.emit(good.bytes)
            source.emit(Array(UDPCloseSample().bytes.prefix(16)))
            good.pid = 2
            source.emit(good.bytes)
        }
        XCTAssertEqual(events.map(\.pid), [1, 2])
        XCTAssertEqual(monitor.statistics.malformedSamples, 4)
    }

    func testLostReportsAreCounted() throws {
        let (monitor, _, _) = try run { source in
            source.reportLost(3)
            source.reportLost(1)
        }
        XCTAssertEqual(monitor.statistics.lostSamples, 4)
        XCTAssertEqual(monitor.statistics.malformedSamples, 0)
    }

    func testFlushSamplesWithoutAKernelProduceNothing() throws {
        let (monitor, _, events) = try run { source in
            var sample = UDPCloseSample()
            sample.pid = 10
            source.emit(sample.bytes)
            for socket in UInt64(1)...20 { source.emit(UDPCloseSample.flush(socket: socket, close: 1)) }
            sample.pid = 11
            source.emit(sample.bytes)
        }
        XCTAssertEqual(events.map(\.pid), [10, 11])
        XCTAssertEqual(monitor.statistics.malformedSamples, 0, "a flush is not malformed")
    }

    /// A close that carries nothing new makes no event; the one that does is reported whole.
    func testNoCloseEventCarriesNothingNew() throws {
        var empty = UDPCloseSample()
        empty.pid = 2
        empty.counts = UDPFlow.Counts()
        var moved = UDPCloseSample()
        moved.pid = 3
        let (monitor, _, events) = try run {
            $0.emit(empty.bytes)
            $0.emit(moved.bytes)
        }
        XCTAssertEqual(events.map(\.pid), [3], "\(events)")
        XCTAssertEqual(events.first?.reason, .close)
        XCTAssertEqual(events.first?.deltaCounts, moved.counts)
        XCTAssertEqual(monitor.statistics.malformedSamples, 0)
        XCTAssertEqual(monitor.statistics.filteredEvents, 0, "filters run in the kernel: a mock source has none")
    }

    func testStatisticsBeforeStartAreZero() throws {
        let monitor = try UDPMonitor(source: MockSampleSource())
        XCTAssertEqual(monitor.statistics, UDPMonitor.Statistics())
        XCTAssertNil(monitor.report)
        let statistics = monitor.statistics
        XCTAssertEqual(statistics.kind, UDPKind.Counters())
        for counter in [
            statistics.lostSamples, statistics.droppedEvents, statistics.malformedSamples, statistics.filteredEvents,
            statistics.flows, statistics.closes, statistics.unattributedPackets, statistics.unattributedBytes,
            statistics.idleEvictions, statistics.sharedSocketOverflows,
        ] {
            XCTAssertEqual(counter, 0)
        }
    }

    /// The kind's counters read as the statistics' own members.
    func testKindCountersReadAsStatisticsMembers() {
        var counters = UDPKind.Counters()
        let members: [WritableKeyPath<UDPKind.Counters, UInt64>] = [
            \.flows, \.closes, \.unattributedPackets, \.unattributedBytes, \.idleEvictions, \.sharedSocketOverflows,
        ]
        for (value, member) in zip(UInt64(1)..., members) { counters[keyPath: member] = value }
        let statistics = UDPMonitor.Statistics(kind: counters)
        XCTAssertEqual(
            [statistics.flows, statistics.closes, statistics.unattributedPackets, statistics.unattributedBytes,
             statistics.idleEvictions, statistics.sharedSocketOverflows], [1, 2, 3, 4, 5, 6])
        XCTAssertNotEqual(statistics, UDPMonitor.Statistics())
    }

    /// Over a mock source there are no kernel maps: no scans, no report, kernel counters zero.
    func testAMockSourceMonitorHasNoScansAndNoReport() throws {
        var configuration = UDPMonitor.Configuration()
        configuration.interval = 0.01
        let (monitor, _, events) = try run(configuration) { source in
            usleep(50_000)
            source.emit(UDPCloseSample().bytes)
        }
        XCTAssertEqual(events.map(\.reason), [.close], "no interval or stop reports without a map")
        XCTAssertNil(monitor.report)
        XCTAssertEqual(monitor.statistics.flows, 0)
    }

    func testStartingTwiceWithoutAStopIsAnError() throws {
        let monitor = try UDPMonitor(source: MockSampleSource())
        try monitor.start { _ in }
        XCTAssertThrowsError(try monitor.start { _ in }) { error in
            guard case BPFError.alreadyStarted = error else { return XCTFail("expected .alreadyStarted, got \(error)") }
        }
        monitor.stop()
        monitor.stop()
        // Stopped, it starts again, and then a second start is an error again.
        XCTAssertNoThrow(try monitor.start { _ in }, "a stopped monitor starts again")
        XCTAssertThrowsError(try monitor.start { _ in }) { error in
            guard case BPFError.alreadyStarted = error else { return XCTFail("expected .alreadyStarted, got \(error)") }
        }
        monitor.stop()
    }

    func testTheSourceInitializerValidatesTheConfiguration() {
        var configuration = UDPMonitor.Configuration()
        configuration.maxFlows = 1
        XCTAssertThrowsError(try UDPMonitor(source: MockSampleSource(), configuration: configuration)) { error in
            guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("maxFlows"), message)
        }
    }
}

/// A failed `events()` once crashed the process (`Recursive call to lock Mutex`: finishing the
/// stream ran its termination handler, which stopped the monitor under the start lock). A crash
/// would take the whole test run down, so each case runs in a child process (this test bundle,
/// filtered to ``UDPMonitorCrashProbe``) and the test checks that the child exited normally.
final class UDPMonitorFailedStartTests: XCTestCase {
    /// `start` then `events()`: the second call must throw and leave the running monitor alone.
    func testEventsOnARunningMonitorThrowsAndKeepsItRunning() throws {
        try UDPMonitorCrashProbe.expectNoCrash("events-after-start")
    }

    /// `events()` twice: the second must throw and the first stream keep delivering.
    func testSecondEventsCallThrowsAndKeepsTheFirstStream() throws {
        try UDPMonitorCrashProbe.expectNoCrash("events-twice")
    }

    /// `events()` whose start fails (here the source cannot start, as any attach failure, e.g.
    /// without privileges) must throw, not crash.
    func testEventsWhoseStartFailsThrows() throws {
        try UDPMonitorCrashProbe.expectNoCrash("events-start-fails")
    }
}

/// The scenarios of ``UDPMonitorFailedStartTests``; does nothing unless the environment names one.
final class UDPMonitorCrashProbe: XCTestCase {
    static let variable = "UDP_EVENT_TESTS_CRASH_PROBE"

    func testProbe() async throws {
        guard let scenario = ProcessInfo.processInfo.environment[Self.variable] else { return }
        switch scenario {
        case "events-after-start":
            let source = MockSampleSource()
            let monitor = try UDPMonitor(source: source)
            let recorder = EventRecorder<UDPTrafficEvent>()
            try monitor.start { recorder.record($0) }
            XCTAssertThrowsError(try monitor.events())
            XCTAssertTrue(source.isRunning, "the first start is still running")
            source.emit(UDPCloseSample().bytes)
            monitor.stop()
            XCTAssertEqual(recorder.events.count, 1, "the running monitor still delivers")
        case "events-twice":
            let source = MockSampleSource()
            let monitor = try UDPMonitor(source: source)
            let stream = try monitor.events()
            XCTAssertThrowsError(try monitor.events())
            source.emit(UDPCloseSample().bytes)
            monitor.stop()
            var count = 0
            for await _ in stream { count += 1 }
            XCTAssertEqual(count, 1, "the first stream still gets the sample emitted after the failed call")
        case "events-start-fails":
            let source = MockSampleSource()
            try source.start(SampleHandler(onSample: { _ in }))  // taken: start will throw
            let monitor = try UDPMonitor(source: source)
            XCTAssertThrowsError(try monitor.events())
            monitor.stop()
        default:
            XCTFail("unknown scenario \(scenario)")
        }
    }

    /// Runs `scenario` in a child process and fails unless it exits 0.
    static func expectNoCrash(_ scenario: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["UDPEventTests.UDPMonitorCrashProbe/testProbe"]
        var environment = ProcessInfo.processInfo.environment
        environment[variable] = scenario
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let signaled = process.terminationReason == .uncaughtSignal
        let summary = text.split(separator: "\n").filter {
            $0.contains("Fatal error") || $0.contains("error:") || $0.contains("Executed")
        }.prefix(8).joined(separator: "\n")
        if signaled {
            XCTFail("\(scenario): the child died of signal \(process.terminationStatus)\n\(summary)", file: file, line: line)
        } else {
            XCTAssertEqual(process.terminationStatus, 0, "\(scenario):\n\(summary)", file: file, line: line)
        }
    }
}
