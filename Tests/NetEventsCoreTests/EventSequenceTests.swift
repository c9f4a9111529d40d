import NetEventsCore
import Synchronization
import XCTest

final class EventSequenceTests: XCTestCase {
    func testBatchesArriveAsSingleEventsInOrderAndEndAtFinish() async {
        let (sequence, feed) = EventSequence<Int>.make(capacity: 10_000)
        let delivery = EventDelivery<Int>(capacity: 10_000, consumer: .sequence(feed))
        var next = 0
        for size in [1, 7, 256, 3, 1_000] {
            var batch = Array(next..<next + size)
            next += size
            delivery.push(contentsOf: &batch)
            XCTAssertTrue(batch.isEmpty, "the batch is handed over")
        }
        delivery.push(next)
        delivery.finish()
        var values: [Int] = []
        for await value in sequence { values.append(value) }
        XCTAssertEqual(values, Array(0...next))
        XCTAssertEqual(delivery.dropped, 0)
    }

    /// The capacity bounds events waiting for the consumer; what does not fit is counted, and room
    /// comes back as the consumer takes events.
    func testCapacityBoundsWaitingEventsAndCountsTheRest() async {
        let (sequence, feed) = EventSequence<Int>.make(capacity: 100)
        let delivery = EventDelivery<Int>(capacity: 100, consumer: .sequence(feed))
        var first = Array(0..<80)
        delivery.push(contentsOf: &first)
        var second = Array(80..<150)  // 20 fit
        delivery.push(contentsOf: &second)
        XCTAssertEqual(delivery.dropped, 50)
        var iterator = sequence.makeAsyncIterator()
        for expected in 0..<100 {
            let value = await iterator.next()
            XCTAssertEqual(value, expected)
        }
        var third = Array(1_000..<1_100)  // the consumer took everything: room for all 100
        delivery.push(contentsOf: &third)
        XCTAssertEqual(delivery.dropped, 50)
        delivery.finish()
        var rest: [Int] = []
        while let value = await iterator.next() { rest.append(value) }
        XCTAssertEqual(rest, Array(1_000..<1_100))
    }

    func testTerminationHandlerRunsWhenTheConsumerStops() async {
        let (sequence, feed) = EventSequence<Int>.make(capacity: 10)
        let terminated = Atomic<Bool>(false)
        feed.onTermination { terminated.store(true, ordering: .relaxed) }
        let delivery = EventDelivery<Int>(capacity: 10, consumer: .sequence(feed))
        let task = Task {
            for await _ in sequence {}
        }
        task.cancel()
        await task.value
        XCTAssertTrue(terminated.load(ordering: .relaxed), "cancelling the loop ends the sequence")
        delivery.push(1)  // after termination: refused, counted
        XCTAssertEqual(delivery.dropped, 1)
    }
}
