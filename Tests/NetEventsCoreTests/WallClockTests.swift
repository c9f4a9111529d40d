import Glibc
import NetEventsCore
import XCTest

final class WallClockTests: XCTestCase {
    func testExplicitOffset() {
        XCTAssertEqual(WallClock(offsetNanoseconds: 1_000).wallClock(fromMonotonic: 5), 1_005)
        XCTAssertEqual(WallClock(offsetNanoseconds: -5).wallClock(fromMonotonic: 1_000), 995)
        XCTAssertEqual(WallClock(offsetNanoseconds: 0).wallClock(fromMonotonic: 123_456_789), 123_456_789)
        let epoch2025: Int64 = 1_735_689_600_000_000_000
        XCTAssertEqual(WallClock(offsetNanoseconds: epoch2025).wallClock(fromMonotonic: 42), UInt64(epoch2025) + 42)
    }

    func testMapsMonotonicToRealtime() {
        let clock = WallClock()
        let before = WallClock.now(CLOCK_REALTIME)
        let monotonic = WallClock.now(CLOCK_MONOTONIC)
        let after = WallClock.now(CLOCK_REALTIME)
        let mapped = Int64(bitPattern: clock.wallClock(fromMonotonic: UInt64(monotonic)))
        // The mapping is accurate to the gap between clock reads; a tenth of a second is generous
        // and fails only if the wall clock is stepped during the test.
        let slack: Int64 = 100_000_000
        XCTAssertGreaterThanOrEqual(mapped, before - slack)
        XCTAssertLessThanOrEqual(mapped, after + slack)
    }
}
