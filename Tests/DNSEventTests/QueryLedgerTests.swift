import XCTest

@testable import DNSEvent

/// The bookkeeping behind latencies stays bounded whatever the traffic does.
final class QueryLedgerTests: XCTestCase {
    func key(_ id: UInt16, port: UInt16 = 40_000) -> QueryLedger.Key {
        QueryLedger.Key(socket: 1, peer: .v4(127, 0, 0, 1), peerPort: port, id: id, querySent: true)
    }

    /// One query never answered must not keep every later answered one in memory until it
    /// times out (found by a review: 1,000,000 exchanges behind one such query kept 134 MB).
    func testAnsweredQueriesBehindOneWaitingAreForgotten() {
        var ledger = QueryLedger(limit: 100, timeoutNanoseconds: 30_000_000_000)
        ledger.query(key(0, port: 1), at: 1)
        for step in UInt64(1)...200_000 {
            let id = UInt16(truncatingIfNeeded: step)
            ledger.query(key(id), at: step * 10)
            XCTAssertEqual(ledger.response(to: key(id), at: step * 10 + 5), 5)
        }
        XCTAssertEqual(ledger.count, 1, "the unanswered one still waits")
        XCTAssertLessThanOrEqual(ledger.orderEntries, 2 * 100 + 1024 + 1)
        XCTAssertEqual(ledger.response(to: key(0, port: 1), at: 2_000_001), 2_000_000)
        XCTAssertEqual(ledger.forgotten, 0)
    }

    /// More queries waiting than the limit: the oldest are forgotten, and counted.
    func testTheOldestQueriesAreForgottenBeyondTheLimit() {
        var ledger = QueryLedger(limit: 10, timeoutNanoseconds: 30_000_000_000)
        for id in UInt16(0)..<50 { ledger.query(key(id), at: UInt64(id) + 1) }
        XCTAssertEqual(ledger.count, 10)
        XCTAssertEqual(ledger.forgotten, 40)
        XCTAssertNil(ledger.response(to: key(0), at: 100))
        XCTAssertEqual(ledger.response(to: key(49), at: 100), 50)
        XCTAssertLessThanOrEqual(ledger.orderEntries, 2 * 10 + 1024)
    }
}
