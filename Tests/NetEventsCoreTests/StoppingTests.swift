import Foundation
import NetEventsTesting
import XCTest
@testable import BCCRuntime
@testable import NetEventsCore

/// A monitor is always stoppable: a callback that never returns cannot hold `stop()` past the
/// grace period (and what it missed is counted), a stopped monitor starts again, and a stop
/// during a start does not wait for the start.
final class StoppingTests: XCTestCase {
    typealias Monitor = EventMonitor<CountingKind>

    /// Runs `body` on a thread of its own; the semaphore is signalled when it returns.
    private func background(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
        let returned = DispatchSemaphore(value: 0)
        Thread {
            body()
            returned.signal()
        }.start()
        return returned
    }

    /// Starts `monitor` into `box` on a thread of its own and, once the start is held at `gate`,
    /// stops it: the stop must return while the start is still held. Runs `whileHeld`, opens the
    /// gate, and checks that the start returned without throwing, the monitor stopped.
    private func stopDuringAHeldStart(
        of monitor: Monitor, at gate: StartGate, into box: EventBox<CountingKind.Event>, whileHeld: () throws -> Void = {},
        file: StaticString = #filePath, line: UInt = #line
    ) rethrows {
        let outcome = Locked<Result<Void, BPFError>?>(nil)
        let started = background {
            do throws(BPFError) {
                try monitor.start { box.add($0) }
                outcome.withLock { $0 = .success(()) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
        }
        XCTAssertEqual(gate.entered.wait(timeout: .now() + 10), .success, "the start is under way", file: file, line: line)
        let stopped = background { monitor.stop() }
        // Held until the gate opens, which happens only after this wait: a stop that waited for
        // the start would time out here (the bound: the grace, 2 s, and 10 s).
        let stopResult = stopped.wait(timeout: .now() + 2 + 10)
        try whileHeld()
        gate.open()
        XCTAssertEqual(stopResult, .success, "stop() returned while the start was still held", file: file, line: line)
        XCTAssertEqual(started.wait(timeout: .now() + 10), .success, file: file, line: line)
        guard case .success = outcome.current else {
            return XCTFail("the overtaken start threw: \(String(describing: outcome.current))", file: file, line: line)
        }
        XCTAssertFalse(monitor.isRunning, "the start ended stopped", file: file, line: line)
    }

    /// The tools' stalled reader: the callback blocks for good on the first event. stop() gives
    /// up after the grace, counts every event the callback did not return from, and delivers
    /// nothing more, also once the callback returns.
    func testACallbackThatNeverReturnsCannotHoldStop() throws {
        var configuration = Monitor.Configuration()
        configuration.stopGracePeriod = .seconds(1)
        let box = EventBox<CountingKind.Event>()
        let blocker = BlockingConsumer<CountingKind.Event>()
        let calledAfterRelease = DispatchSemaphore(value: 0)
        let released = Locked(false)
        let (monitor, source) = try startedMonitor(configuration: configuration) { event in
            if released.current { calledAfterRelease.signal() }
            box.add(event)
            // Blocked "for good": released only after the assertions.
            if case .sample(0) = event { blocker.hold() }
        }
        for value in 0..<100 { source.emit(CountingKind.sample(UInt32(value))) }
        XCTAssertEqual(blocker.entered.wait(timeout: .now() + 10), .success, "the callback got the first event")

        let stopped = background { monitor.stop() }
        // The bound is the grace (1 s) and a generous 10 s for detaching and draining on a busy machine.
        XCTAssertEqual(stopped.wait(timeout: .now() + 1 + 10), .success, "stop() returned within the grace period and 10 s")
        XCTAssertFalse(source.isRunning, "detached")
        XCTAssertEqual(box.all, [.sample(0)])
        // 100 samples and the final scan; the callback never returned from the first.
        XCTAssertEqual(monitor.statistics.droppedEvents, 101)
        XCTAssertFalse(monitor.isRunning)

        // The thread given up on returns from the callback and delivers nothing more.
        released.withLock { $0 = true }
        blocker.release()
        XCTAssertEqual(calledAfterRelease.wait(timeout: .now() + 0.3), .timedOut, "nothing delivered after the give-up")
        XCTAssertEqual(box.all, [.sample(0)])
        XCTAssertEqual(monitor.statistics.droppedEvents, 101, "the count stands")
        monitor.stop()  // again: at once
    }

    /// A slow callback that catches up within the grace loses nothing.
    func testACallbackThatCatchesUpWithinTheGraceLosesNothing() throws {
        let blocker = BlockingConsumer<CountingKind.Event>(holdingOn: .sample(0))
        let (monitor, source) = try startedMonitor { blocker.consume($0) }  // the default grace: 2 s
        for value in 0..<100 { source.emit(CountingKind.sample(UInt32(value))) }
        XCTAssertEqual(blocker.entered.wait(timeout: .now() + 10), .success)
        let stopped = background { monitor.stop() }
        blocker.release()  // the callback goes on while stop waits
        XCTAssertEqual(stopped.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(blocker.received, (0..<100).map { .sample(UInt32($0)) } + [.final(decoded: 100)])
        XCTAssertEqual(monitor.statistics.droppedEvents, 0)
    }

    /// A stopped monitor starts again: a new run, delivering again, its kind and statistics anew.
    func testAStoppedMonitorStartsAgainAndDeliversAgain() async throws {
        let (monitor, source, first) = try startedMonitor()
        for value in 0..<3 { source.emit(CountingKind.sample(UInt32(value))) }
        monitor.stop()
        XCTAssertEqual(first.all, [.sample(0), .sample(1), .sample(2), .final(decoded: 3)])
        source.emit(CountingKind.sample(99))  // while stopped: nobody traces

        let second = EventBox<CountingKind.Event>()
        try monitor.start { second.add($0) }
        XCTAssertTrue(monitor.isRunning)
        XCTAssertTrue(source.isRunning)
        XCTAssertEqual(monitor.statistics.decoded, 0, "statistics of the new run")
        for value in 10..<12 { source.emit(CountingKind.sample(UInt32(value))) }
        monitor.stop()
        XCTAssertEqual(second.all, [.sample(10), .sample(11), .final(decoded: 2)], "a fresh kind, a fresh delivery")
        XCTAssertEqual(first.all.count, 4, "the first callback got nothing of the second run")
        XCTAssertEqual(monitor.statistics.decoded, 2)

        // And as a sequence, twice: each run its own sequence, which ends at its stop.
        for round in 0..<2 {
            let sequence = try monitor.events()
            source.emit(CountingKind.sample(UInt32(round)))
            monitor.stop()
            var events: [CountingKind.Event] = []
            for await event in sequence { events.append(event) }
            XCTAssertEqual(events, [.sample(UInt32(round)), .final(decoded: 1)])
        }
    }

    /// A stop while the start is still compiling (held here in the kind's initializer) returns
    /// without waiting for it; the start then returns with the monitor stopped, nothing running.
    func testAStopDuringAStartReturnsWithoutWaitingForIt() throws {
        let gate = StartGate()
        var configuration = Monitor.Configuration()
        configuration.startGate = gate
        let source = MockSampleSource()
        let monitor = try Monitor(source: source, configuration: configuration)
        let box = EventBox<CountingKind.Event>()
        try stopDuringAHeldStart(of: monitor, at: gate, into: box) {
            // A start meanwhile is refused, saying why: not running, but a start still finishing.
            XCTAssertThrowsError(try monitor.start { _ in }) { error in
                guard case BPFError.alreadyStarted(let what) = error else { return XCTFail("expected .alreadyStarted, got \(error)") }
                XCTAssertTrue(what.contains("a start is still finishing after stop(); try again when it returns"), what)
                XCTAssertFalse(what.contains("running"), what)
            }
        }
        XCTAssertFalse(source.isRunning, "no session began")
        source.emit(CountingKind.sample(1))  // the mock queues it for the next start
        XCTAssertEqual(box.all, [], "nothing delivered")

        // It starts again normally.
        try monitor.start { box.add($0) }
        source.emit(CountingKind.sample(2))
        monitor.stop()
        XCTAssertEqual(box.all, [.sample(1), .sample(2), .final(decoded: 2)])
    }

    /// A stop that lands while the session is being made (past the start's checks for a stop,
    /// here held in the kind's `begin`) ends the start stopped: nothing delivered, and nothing of
    /// that never-started run counted, not its queued samples nor its final scan as dropped.
    func testAStopWhileTheSessionIsMadeEndsTheStartStoppedCountingNothing() throws {
        let gate = StartGate()
        var configuration = Monitor.Configuration()
        configuration.beginGate = gate
        let source = MockSampleSource()
        for value in 0..<3 { source.emit(CountingKind.sample(UInt32(value))) }  // delivered at the source's start
        let monitor = try Monitor(source: source, configuration: configuration)
        let box = EventBox<CountingKind.Event>()
        try stopDuringAHeldStart(of: monitor, at: gate, into: box)
        XCTAssertFalse(source.isRunning, "detached")
        XCTAssertEqual(box.all, [], "nothing delivered")
        XCTAssertEqual(monitor.statistics, Monitor.Statistics(), "nothing counted: not the 3 samples nor the final scan as dropped")

        // It starts again normally.
        try monitor.start { box.add($0) }
        source.emit(CountingKind.sample(7))
        monitor.stop()
        XCTAssertEqual(box.all, [.sample(7), .final(decoded: 1)])
    }

    /// A stop that gave up on a callback blocked inside it leaves that callback running on its
    /// thread: starting again then would run a second callback beside it. The start is refused,
    /// naming why, until the callback returns; then the monitor starts and delivers one event at
    /// a time again.
    func testAStartWaitsUntilTheCallbackGivenUpOnHasReturned() throws {
        var configuration = Monitor.Configuration()
        configuration.stopGracePeriod = .milliseconds(100)
        let blocker = BlockingConsumer<CountingKind.Event>(holdingOn: .sample(0))
        let inside = Locked(0), mostInside = Locked(0)
        let handler: @Sendable (CountingKind.Event) -> Void = { event in
            let now = inside.withLock { $0 += 1; return $0 }
            mostInside.withLock { $0 = max($0, now) }
            blocker.consume(event)
            inside.withLock { $0 -= 1 }
        }
        let (monitor, source) = try startedMonitor(configuration: configuration, handler)
        source.emit(CountingKind.sample(0))
        XCTAssertEqual(blocker.entered.wait(timeout: .now() + 10), .success)
        monitor.stop()  // gives up on the callback, which stays blocked
        XCTAssertEqual(monitor.statistics.droppedEvents, 2, "the sample it is in and the final scan")
        for _ in 0..<2 {
            XCTAssertThrowsError(try monitor.start(handler)) { error in
                guard case BPFError.alreadyStarted(let what) = error else { return XCTFail("expected .alreadyStarted, got \(error)") }
                XCTAssertTrue(what.contains("the previous run's callback has not returned since stop gave up on it"), what)
            }
        }
        XCTAssertFalse(monitor.isRunning)
        XCTAssertFalse(source.isRunning, "the refused start attached nothing")
        XCTAssertEqual(monitor.statistics.droppedEvents, 2, "the refused start left the last run's statistics")

        blocker.release()
        // The thread leaves the callback and ends; the start works from then on.
        XCTAssertTrue(eventually { (try? monitor.start(handler)) != nil }, "the monitor starts once the callback returned")
        source.emit(CountingKind.sample(1))
        monitor.stop()
        XCTAssertEqual(blocker.received, [.sample(0), .sample(1), .final(decoded: 1)])
        XCTAssertEqual(mostInside.current, 1, "never two threads in the callback")
    }

    /// A callback that stops its monitor and starts it again is refused the start, naming why:
    /// its thread still delivers the stopped run's last events once it returns, and the new
    /// run's would come on a second thread beside them. From another thread the start works,
    /// and the new run delivers one event at a time.
    func testAStartFromTheStoppedRunsCallbackIsRefused() throws {
        let refusal = Locked<String?>(nil)
        let inside = Locked(0), mostInside = Locked(0)
        let received = Locked<[CountingKind.Event]>([])
        let monitorBox = Locked<Monitor?>(nil)
        let handler: @Sendable (CountingKind.Event) -> Void = { event in
            let now = inside.withLock { $0 += 1; return $0 }
            mostInside.withLock { $0 = max($0, now) }
            received.withLock { $0.append(event) }
            if event == .sample(1), let monitor = monitorBox.withLock({ $0 }) {
                monitor.stop()  // from the callback: returns at once
                do {
                    try monitor.start { _ in }
                } catch BPFError.alreadyStarted(let what) {
                    refusal.withLock { $0 = what }
                } catch {
                    refusal.withLock { $0 = "unexpected: \(error)" }
                }
            }
            inside.withLock { $0 -= 1 }
        }
        let (monitor, source) = try startedMonitor(handler)
        monitorBox.withLock { $0 = monitor }
        source.emit(CountingKind.sample(1))
        XCTAssertTrue(eventually { refusal.withLock { $0 } != nil }, "the callback's start neither worked nor was refused")
        let what = try XCTUnwrap(refusal.withLock { $0 })
        XCTAssertTrue(what.contains("start() was called from the stopped run's callback"), what)
        XCTAssertTrue(eventually { received.withLock { $0 }.contains(.final(decoded: 1)) }, "the stopped run delivers its final scan")

        // From this thread, once the stopped run's thread has ended, the start works.
        XCTAssertTrue(eventually { (try? monitor.start(handler)) != nil }, "the monitor starts from another thread")
        source.emit(CountingKind.sample(2))
        monitor.stop()
        monitorBox.withLock { $0 = nil }
        XCTAssertEqual(received.withLock { $0 }, [.sample(1), .final(decoded: 1), .sample(2), .final(decoded: 1)])
        XCTAssertEqual(mostInside.withLock { $0 }, 1, "never two threads in the callback")
    }

    /// A grace of any length is taken (the wait is at most a day), without overflowing.
    func testAHugeGraceIsTakenAndWaitsAsLongAsNeeded() throws {
        var configuration = Monitor.Configuration()
        configuration.stopGracePeriod = .seconds(Int64.max)
        let (monitor, source, box) = try startedMonitor(configuration: configuration)
        source.emit(CountingKind.sample(1))
        monitor.stop()
        XCTAssertEqual(box.all, [.sample(1), .final(decoded: 1)])
    }

    func testTheGraceMustNotBeNegative() {
        var configuration = Monitor.Configuration()
        XCTAssertEqual(configuration.stopGracePeriod, .seconds(2), "the documented default")
        configuration.stopGracePeriod = .milliseconds(-1)
        XCTAssertThrowsError(try Monitor(source: MockSampleSource(), configuration: configuration)) { error in
            guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("stopGracePeriod"), message)
        }
    }
}

/// `EventDelivery.finish(within:)` counts exactly what the callback did not return from.
final class DeliveryGraceTests: XCTestCase {
    /// One event a call: the events it returned from are delivered, the one it is in and all
    /// after it (in its batch or queued) are dropped; held on the first, a middle and the last
    /// event of its batch. The callback given up on runs until it returns.
    func testAPerEventCallbackGivenUpOnMidBatch() {
        for held in [0, 50, 99] {
            let blocker = BlockingConsumer<Int>(holdingOn: held)
            let delivery = EventDelivery<Int>(capacity: 1_000, consumer: blocker.callback)
            var batch = Array(0..<100)
            delivery.push(contentsOf: &batch)  // one batch: the thread is in it at `held`
            XCTAssertEqual(blocker.entered.wait(timeout: .now() + 10), .success)
            for value in 100..<120 { delivery.push(value) }  // queued behind it
            XCTAssertFalse(delivery.abandonedCallbackIsRunning, "not given up on yet")
            XCTAssertFalse(delivery.finish(within: .milliseconds(200)), "given up on")
            XCTAssertEqual(blocker.received, Array(0..<held))
            XCTAssertEqual(delivery.dropped, UInt64(120 - held), "\(held)...119: the one it was in, the rest of the batch, the queue")
            XCTAssertTrue(delivery.abandonedCallbackIsRunning, "held at \(held)")
            XCTAssertFalse(delivery.finish(within: .zero), "a second finish returns at once")
            blocker.release()
            XCTAssertTrue(eventually { !delivery.abandonedCallbackIsRunning }, "the callback returned")
            XCTAssertEqual(blocker.received, Array(0...held), "it finished the one it was in, and no more")
            delivery.push(7)
            XCTAssertEqual(delivery.dropped, UInt64(121 - held), "a push after the give-up is dropped")
        }
    }

    /// A batch callback's unit is its batch: one given up on counts whole.
    func testABatchCallbackGivenUpOnCountsItsWholeBatch() {
        let blocker = BlockingConsumer<Int>()
        let delivery = EventDelivery<Int>(capacity: 1_000, consumer: .batchCallback { _ in blocker.hold() })
        var batch = Array(0..<30)
        delivery.push(contentsOf: &batch)
        XCTAssertEqual(blocker.entered.wait(timeout: .now() + 10), .success)
        for value in 0..<5 { delivery.push(value) }
        XCTAssertFalse(delivery.finish(within: .milliseconds(100)))
        XCTAssertEqual(delivery.dropped, 35)
        XCTAssertTrue(delivery.abandonedCallbackIsRunning)
        blocker.release()
        XCTAssertTrue(eventually { !delivery.abandonedCallbackIsRunning }, "the callback returned")
    }

    /// No callback runs on after a finish that did not give up, nor for a stream.
    func testNoAbandonedCallbackWithoutAGiveUp() {
        let idle = EventDelivery<Int>(capacity: 10, consumer: .callback { _ in })
        XCTAssertTrue(idle.finish(within: .seconds(10)), "nothing queued: it ends")
        XCTAssertFalse(idle.abandonedCallbackIsRunning)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let streamed = EventDelivery<Int>(capacity: 10, consumer: .stream(continuation))
        streamed.finish(within: .zero)
        XCTAssertFalse(streamed.abandonedCallbackIsRunning)
        _ = stream
    }

    /// The grace is clamped to a day: no overflow for the longest `Duration`.
    func testTheGraceIsClampedToADay() {
        XCTAssertEqual(EventDelivery<Int>.nanoseconds(.seconds(Int64.max)), 86_400 * 1_000_000_000)
        XCTAssertEqual(EventDelivery<Int>.nanoseconds(.seconds(-5)), 0)
        XCTAssertEqual(EventDelivery<Int>.nanoseconds(.milliseconds(1_500)), 1_500_000_000)
        let blocker = BlockingConsumer<Int>(holdingOn: 0)
        let delivery = EventDelivery<Int>(capacity: 10, consumer: blocker.callback)
        delivery.push(0)
        XCTAssertEqual(blocker.entered.wait(timeout: .now() + 10), .success)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) { blocker.release() }
        XCTAssertTrue(delivery.finish(within: .seconds(Int64.max)), "waited for the callback")
        XCTAssertEqual(blocker.received, [0])
    }

    /// Without a grace, finish waits as long as it takes, as before.
    func testWithoutAGraceFinishWaitsForEverything() {
        let blocker = BlockingConsumer<Int>(holdingOn: 0)
        let delivery = EventDelivery<Int>(capacity: 1_000, consumer: blocker.callback)
        for value in 0..<10 { delivery.push(value) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { blocker.release() }
        XCTAssertTrue(delivery.finish())
        XCTAssertEqual(blocker.received, Array(0..<10))
        XCTAssertEqual(delivery.dropped, 0)
    }
}
