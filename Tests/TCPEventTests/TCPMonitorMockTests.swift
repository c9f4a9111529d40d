import Foundation
import NetEventsTesting
import XCTest
@testable import TCPEvent

/// Delivery through `TCPMonitor` with a mock perf source: no privileges needed.
final class TCPMonitorMockTests: XCTestCase {
    final class Box: @unchecked Sendable {
        let lock = NSLock()
        var events: [TCPConnectionEvent] = []
        func add(_ event: TCPConnectionEvent) { lock.withLock { events.append(event) } }
    }

    func testCallbackDeliversInOrderAndSkipsMalformedSamples() throws {
        let source = MockSampleSource()
        let monitor = try TCPMonitor(source: source, clock: WallClock(offsetNanoseconds: 0))
        let box = Box()
        try monitor.start { box.add($0) }
        for pid in 1...500 {
            var sample = TCPSample()
            sample.pid = UInt32(pid)
            source.emit(sample.bytes)
            if pid % 100 == 0 { source.emit([1, 2, 3]) }  // short: counted, skipped
        }
        source.reportLost(7)
        monitor.stop()
        XCTAssertEqual(box.events.map(\.pid), Array(1...500))
        let statistics = monitor.statistics
        XCTAssertEqual(statistics.malformedSamples, 5)
        XCTAssertEqual(statistics.lostSamples, 7)
        XCTAssertEqual(statistics.droppedEvents, 0)
        XCTAssertFalse(source.isRunning, "stop closes the source")
    }

    func testAsyncSequenceYieldsEverythingThenEnds() async throws {
        let source = MockSampleSource()
        let monitor = try TCPMonitor(source: source)
        let stream = try monitor.events()
        for port in 1...50 {
            var sample = TCPSample()
            sample.sport = UInt16(port)
            source.emit(sample.bytes)
        }
        monitor.stop()
        var ports: [UInt16] = []
        for await event in stream { ports.append(event.sourcePort) }
        XCTAssertEqual(ports, (1...50).map(UInt16.init))
    }

    func testSlowConsumerDropsAreCounted() throws {
        var configuration = TCPMonitor.Configuration()
        configuration.deliveryCapacity = 4
        let source = MockSampleSource()
        let monitor = try TCPMonitor(source: source, configuration: configuration)
        let release = DispatchSemaphore(value: 0)
        let first = DispatchSemaphore(value: 0)
        let box = Box()
        try monitor.start { event in
            if box.lock.withLock({ box.events.isEmpty }) {
                first.signal()
                release.wait()
            }
            box.add(event)
        }
        source.emit(TCPSample().bytes)
        first.wait()  // the consumer holds the first event
        for _ in 0..<20 { source.emit(TCPSample().bytes) }
        release.signal()
        monitor.stop()
        XCTAssertEqual(box.events.count, 5, "the held event and a full queue of 4")
        XCTAssertEqual(monitor.statistics.droppedEvents, 16)
    }

    func testStartingTwiceWithoutAStopIsAnError() throws {
        let monitor = try TCPMonitor(source: MockSampleSource())
        try monitor.start { _ in }
        XCTAssertThrowsError(try monitor.start { _ in }) { error in
            guard case BPFError.alreadyStarted = error else { return XCTFail("expected .alreadyStarted, got \(error)") }
        }
        XCTAssertThrowsError(try monitor.events()) { error in
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
}

