import Glibc
import NetEventsCore
import Synchronization
import XCTest

/// SIGUSR1 and SIGUSR2 stand in for SIGINT and SIGTERM, which would end the test run if anything
/// went wrong. Watching a signal sets its default action aside for the rest of the process.
final class TerminationSignalsTests: XCTestCase {
    /// Synchronous, so that `raise` runs on the test's own thread: the threads of the concurrency
    /// pool (libdispatch workers) block signals, and a signal raised on one stays pending there.
    func testARaisedSignalIsWaitedForAndThenReturnedByNext() throws {
        let signals = TerminationSignals([SIGUSR1])
        XCTAssertEqual(signals.signals, [SIGUSR1])
        XCTAssertFalse(signals.received)
        XCTAssertEqual(raise(SIGUSR1), 0, "raised at once: a signal right after the watcher is made is kept")
        XCTAssertEqual(signals.wait(timeout: .seconds(10)), SIGUSR1)
        XCTAssertTrue(signals.received)
        let next = Locked<Int32?>(nil)
        let returned = DispatchSemaphore(value: 0)
        Task {
            let number = await signals.next()
            next.withLock { $0 = number }
            returned.signal()
        }
        XCTAssertEqual(returned.wait(timeout: .now() + 10), .success, "next() returns at once for a signal that already arrived")
        XCTAssertEqual(next.withLock { $0 }, SIGUSR1)
        XCTAssertEqual(signals.wait(timeout: .seconds(10)), SIGUSR1, "and so does wait")
    }

    /// The signal is sent to the process, as `kill(1)` and Ctrl-C do.
    func testNextSuspendsUntilTheSignalArrives() async throws {
        let signals = TerminationSignals([SIGUSR1, SIGUSR2])
        let waiter = Task { await signals.next() }
        try await Task.sleep(for: .milliseconds(100))
        XCTAssertFalse(signals.received, "nothing arrived yet: next() is still waiting")
        XCTAssertEqual(kill(getpid(), SIGUSR2), 0)
        let number = await waiter.value
        XCTAssertEqual(number, SIGUSR2)
        XCTAssertTrue(signals.received)
    }

    func testHandlersHearOfEarlierSignalsAndLaterOnes() throws {
        let signals = TerminationSignals([SIGUSR2])
        XCTAssertEqual(raise(SIGUSR2), 0)
        XCTAssertEqual(signals.wait(timeout: .seconds(10)), SIGUSR2)
        let seen = Locked<[Int32]>([])
        let called = DispatchSemaphore(value: 0)
        signals.onSignal { number in
            seen.withLock { $0.append(number) }
            called.signal()
        }
        XCTAssertEqual(called.wait(timeout: .now() + 10), .success, "a handler added later hears of the earlier signal")
        XCTAssertEqual(kill(getpid(), SIGUSR2), 0)
        XCTAssertEqual(called.wait(timeout: .now() + 10), .success, "and of the next one")
        XCTAssertEqual(seen.withLock { $0 }, [SIGUSR2, SIGUSR2])
    }

    /// Watchers of one signal each see it, and one made after another went away still does.
    func testEveryWatcherOfASignalSeesIt() throws {
        var dropped: TerminationSignals? = TerminationSignals([SIGUSR1])
        XCTAssertNotNil(dropped)
        dropped = nil
        let first = TerminationSignals([SIGUSR1])
        let second = TerminationSignals([SIGUSR1, SIGUSR2])
        let other = TerminationSignals([SIGUSR2])
        XCTAssertEqual(kill(getpid(), SIGUSR1), 0)
        XCTAssertEqual(first.wait(timeout: .seconds(10)), SIGUSR1)
        XCTAssertEqual(second.wait(timeout: .seconds(10)), SIGUSR1)
        XCTAssertNil(other.wait(timeout: .milliseconds(200)), "a watcher of another signal hears nothing")
        XCTAssertFalse(other.received)
    }

    func testWaitTimesOutWithoutASignal() {
        let signals = TerminationSignals([SIGWINCH])  // never sent
        let start = ContinuousClock.now
        XCTAssertNil(signals.wait(timeout: .milliseconds(100)))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(90))
        XCTAssertFalse(signals.received)
    }

    /// next() returns each signal once: after the first Ctrl-C, a second next() waits for another.
    func testNextReturnsEachSignalOnce() async throws {
        let signals = TerminationSignals([SIGUSR2])
        XCTAssertEqual(kill(getpid(), SIGUSR2), 0)
        let first = await signals.next()
        XCTAssertEqual(first, SIGUSR2)
        let second = Task { await signals.next() }
        try await Task.sleep(for: .milliseconds(100))
        XCTAssertEqual(kill(getpid(), SIGUSR2), 0)
        let value = await second.value
        XCTAssertEqual(value, SIGUSR2)
    }
}
