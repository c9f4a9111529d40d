import NetEventsCore
import XCTest
@testable import UDPEvent

/// A monitor running on another kernel's header offsets (accepted by the user) marks every event
/// it delivers through its attributor, whether or not it resolves names, and nothing else.
final class EstimatedOffsetsTests: XCTestCase {
    func testTheAttributorMarksEveryEventOnlyWhenAsked() throws {
        let ledger = FlowLedger(clock: WallClock(offsetNanoseconds: 0))
        let flow = makeFlow(start: 1, counts: counts(tx: 8, rx: 0, txPackets: 1, rxPackets: 0))
        let event = try XCTUnwrap(ledger.scan(reason: .interval, at: 1, idleLimit: nil, fetch: { flow }, evict: { nil }))
        XCTAssertFalse(event.offsetsEstimated)

        var marked = [event, event]
        let marker = EventAttributor(cgroups: nil, resolvesNames: false, marksOffsetsEstimated: true)
        marked.withUnsafeMutableBufferPointer { marker.attribute($0) }
        XCTAssertEqual(marked.map(\.offsetsEstimated), [true, true])
        XCTAssertNil(marked[0].cgroup, "no names looked up")
        XCTAssertTrue(try EventJSONEncoder().encode(marked[0]).contains("\"offsets_estimated\":true"))

        var named = event
        EventAttributor(cgroups: nil).attribute(&named)
        XCTAssertFalse(named.offsetsEstimated)
        XCTAssertFalse(try EventJSONEncoder().encode(named).contains("offsets_estimated"))
    }
}
