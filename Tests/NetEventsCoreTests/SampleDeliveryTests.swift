import Foundation
import NetEventsCore
import NetEventsTesting
import XCTest

/// A lock-protected value shared with callbacks on other threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    @discardableResult
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
    var current: Value { withLock { $0 } }
}

/// Little-endian bytes of a `UInt32`, and back: the "raw samples" of these tests.
private func sample(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
private func decode(_ bytes: UnsafeRawBufferPointer) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self)) }

final class MockSampleSourceTests: XCTestCase {
    func testSamplesBeforeAndAfterStartArriveInOrder() throws {
        let source = MockSampleSource()
        let received = Locked<[UInt32]>([])
        for value in 0..<5 { source.emit(sample(UInt32(value))) }
        XCTAssertFalse(source.isRunning)
        XCTAssertTrue(received.current.isEmpty, "nothing is delivered before start")
        try source.start(SampleHandler(onSample: { bytes in received.withLock { $0.append(decode(bytes)) } }))
        XCTAssertTrue(source.isRunning)
        XCTAssertEqual(received.current, [0, 1, 2, 3, 4], "samples queued before start are delivered at start")
        for value in 5..<10 { source.emit(sample(UInt32(value))) }
        XCTAssertEqual(received.current, Array(0..<10))
        source.close()
        XCTAssertFalse(source.isRunning)
        source.emit(sample(99))
        XCTAssertEqual(received.current, Array(0..<10), "samples after close are ignored")
        source.close()  // twice is fine
    }

    func testLostReportsAreCountedAndPassedOn() throws {
        let source = MockSampleSource()
        let reports = Locked<[UInt64]>([])
        source.reportLost(2)  // before start: counted, but there is nobody to tell
        try source.start(SampleHandler(onSample: { _ in }, onLost: { count in reports.withLock { $0.append(count) } }))
        source.reportLost(3)
        source.reportLost(5)
        XCTAssertEqual(source.lostSamples, 10)
        XCTAssertEqual(reports.current, [3, 5])
        source.close()
    }

    func testStartTwiceThrows() throws {
        let source = MockSampleSource()
        try source.start(SampleHandler(onSample: { _ in }))
        XCTAssertThrowsError(try source.start(SampleHandler(onSample: { _ in }))) { error in
            XCTAssertEqual(error as? BPFError, .alreadyStarted("mock sample source"))
        }
    }

    /// The full pipeline of a monitor: source → decoder → bounded delivery → callback.
    func testSourceThroughDeliveryKeepsOrder() throws {
        let source = MockSampleSource()
        let received = Locked<[UInt32]>([])
        let delivery = EventDelivery<UInt32>(capacity: 10_000, consumer: .callback { value in
            received.withLock { $0.append(value) }
        })
        for value in 0..<100 { source.emit(sample(UInt32(value))) }
        try source.start(SampleHandler(onSample: { delivery.push(decode($0)) }))
        for value in 100..<1000 { source.emit(sample(UInt32(value))) }
        source.close()
        delivery.finish()
        XCTAssertEqual(received.current, Array(0..<1000))
        XCTAssertEqual(delivery.dropped, 0)
    }
}

final class EventDeliveryTests: XCTestCase {
    func testCallbackDeliversAllInOrderAndFinishDrains() {
        let received = Locked<[Int]>([])
        let threads = Locked<Set<pthread_t>>([])
        let delivery = EventDelivery<Int>(capacity: 100_000, consumer: .callback { value in
            received.withLock { $0.append(value) }
            threads.withLock { $0.insert(pthread_self()) }
        })
        for value in 0..<50_000 { delivery.push(value) }
        // No waiting: finish itself must deliver what is queued before it returns.
        delivery.finish()
        XCTAssertEqual(received.current.count, 50_000)
        XCTAssertEqual(received.current, Array(0..<50_000))
        XCTAssertEqual(delivery.dropped, 0)
        XCTAssertEqual(threads.current.count, 1, "callbacks run on one delivery thread")
        XCTAssertFalse(threads.current.contains(pthread_self()), "callbacks never run on the pushing thread")
        delivery.finish()  // twice is fine
    }

    func testPushesFromAnotherThreadAreAllDelivered() {
        let received = Locked<[Int]>([])
        let delivery = EventDelivery<Int>(capacity: 100_000, consumer: .callback { value in
            received.withLock { $0.append(value) }
        })
        let produced = DispatchSemaphore(value: 0)
        Thread {
            for value in 0..<10_000 { delivery.push(value) }
            produced.signal()
        }.start()
        produced.wait()
        delivery.finish()
        XCTAssertEqual(received.current, Array(0..<10_000))
    }

    func testFullQueueWithBlockedConsumerCountsDrops() {
        let blocker = BlockingConsumer<Int>(holdingOn: 0)
        let delivery = EventDelivery<Int>(capacity: 2, consumer: blocker.callback)
        delivery.push(0)
        blocker.entered.wait()  // the consumer holds event 0 and is stuck: the queue is empty
        for value in 1...10 { delivery.push(value) }  // 1 and 2 fit, 3...10 do not
        XCTAssertEqual(delivery.dropped, 8)
        blocker.release()
        delivery.finish()
        XCTAssertEqual(blocker.received, [0, 1, 2])
        XCTAssertEqual(delivery.dropped, 8)
    }

    func testPushAfterFinishIsDropped() {
        let received = Locked<[Int]>([])
        let delivery = EventDelivery<Int>(capacity: 10, consumer: .callback { value in received.withLock { $0.append(value) } })
        delivery.push(1)
        delivery.finish()
        delivery.push(2)
        XCTAssertEqual(received.current, [1])
        XCTAssertEqual(delivery.dropped, 1)
    }

    func testFinishFromInsideTheCallbackDoesNotDeadlock() {
        let box = Locked<EventDelivery<Int>?>(nil)
        let received = Locked<[Int]>([])
        let delivery = EventDelivery<Int>(capacity: 100, consumer: .callback { value in
            received.withLock { $0.append(value) }
            if value == 0 { box.current?.finish() }
        })
        box.withLock { $0 = delivery }
        for value in 0..<5 { delivery.push(value) }
        delivery.finish()
        // Everything pushed before the first finish (from any thread) is still delivered.
        XCTAssertEqual(received.current.first, 0)
        XCTAssertEqual(received.current, Array(0..<received.current.count))
        XCTAssertEqual(UInt64(received.current.count) + delivery.dropped, 5)
        box.withLock { $0 = nil }
    }

    func testStreamYieldsAllEventsAndFinishEndsIt() async {
        let (stream, continuation) = AsyncStream<Int>.makeStream(bufferingPolicy: .bufferingOldest(1000))
        let delivery = EventDelivery<Int>(capacity: 1000, consumer: .stream(continuation))
        let consumer = Task {
            var values: [Int] = []
            for await value in stream { values.append(value) }
            return values
        }
        for value in 0..<500 { delivery.push(value) }
        delivery.finish()
        // The loop above only ends because finish ended the stream.
        let values = await consumer.value
        XCTAssertEqual(values, Array(0..<500))
        XCTAssertEqual(delivery.dropped, 0)
    }

    func testStreamCountsWhatItsBufferRefuses() async {
        let (stream, continuation) = AsyncStream<Int>.makeStream(bufferingPolicy: .bufferingOldest(3))
        let delivery = EventDelivery<Int>(capacity: 3, consumer: .stream(continuation))
        for value in 0..<10 { delivery.push(value) }  // nobody is reading yet
        XCTAssertEqual(delivery.dropped, 7)
        delivery.finish()
        var values: [Int] = []
        for await value in stream { values.append(value) }
        XCTAssertEqual(values, [0, 1, 2])
    }
}
