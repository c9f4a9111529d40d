import Foundation
import Synchronization

/// Hands decoded events from a reader's poll thread to the consumer without ever blocking the
/// reader: a bounded queue drained by a delivery thread (for callbacks), or a bounded
/// ``EventSequence`` (or `AsyncStream`) for `for await` loops. Events that find the queue full are dropped and counted in ``dropped``.
public final class EventDelivery<Event: Sendable>: Sendable {
    /// Where events go.
    public enum Consumer: Sendable {
        /// Called on the delivery thread, in order.
        case callback(@Sendable (Event) -> Void)
        /// Called on the delivery thread, in order, with every event that waited (at most the
        /// events of a few drains): work per batch, such as one write of many lines, is done once.
        case batchCallback(@Sendable ([Event]) -> Void)
        /// Yielded to the stream one by one, whose buffer holds at most `capacity` undelivered events.
        case stream(AsyncStream<Event>.Continuation)
        /// Yielded a batch at a time to an ``EventSequence`` (made with
        /// ``EventSequence/make(capacity:)``; it bounds what waits for the consumer itself).
        case sequence(EventSequence<Event>.Feed)
    }

    /// Where events go, without the callback itself: the callback lives only in the delivery
    /// thread's closure, so it (and whatever it captured, such as the monitor) is released when
    /// the thread ends, and a callback that captures its monitor forms no lasting cycle.
    private enum Route: Sendable {
        case thread
        case stream(AsyncStream<Event>.Continuation)
        case sequence(EventSequence<Event>.Feed)
    }
    private let consumer: Route
    private let capacity: Int
    private let droppedCount = Atomic<UInt64>(0)
    private let queue: Queue?

    /// The queue and thread of the callback consumer. NSCondition guards `items` and `finished`.
    private final class Queue: @unchecked Sendable {
        let condition = NSCondition()
        var items: [Event] = []
        var finished = false
        var done = false
        var thread: pthread_t?
    }

    /// - Parameters:
    ///   - capacity: events that may wait for the consumer before new ones are dropped.
    ///   - consumer: the callback or stream.
    public init(capacity: Int, consumer: Consumer) {
        self.capacity = max(1, capacity)
        switch consumer {
        case .callback, .batchCallback: self.consumer = .thread
        case .stream(let continuation): self.consumer = .stream(continuation)
        case .sequence(let feed): self.consumer = .sequence(feed)
        }
        let perBatch: (@Sendable ([Event]) -> Void)?
        switch consumer {
        case .callback(let body): perBatch = { batch in for event in batch { body(event) } }
        case .batchCallback(let body): perBatch = body
        default: perBatch = nil
        }
        if let perBatch {
            let queue = Queue()
            self.queue = queue
            let thread = Thread { [queue] in
                queue.condition.lock()
                queue.thread = pthread_self()
                queue.condition.unlock()
                var batch: [Event] = []
                while true {
                    queue.condition.lock()
                    while queue.items.isEmpty && !queue.finished { queue.condition.wait() }
                    swap(&batch, &queue.items)
                    let finished = queue.finished
                    queue.condition.unlock()
                    if !batch.isEmpty { perBatch(batch) }
                    batch.removeAll(keepingCapacity: true)
                    if finished && batch.isEmpty {
                        queue.condition.lock()
                        let empty = queue.items.isEmpty
                        if empty { queue.done = true; queue.condition.broadcast() }
                        queue.condition.unlock()
                        if empty { return }
                    }
                }
            }
            thread.name = "event delivery"
            thread.start()
        } else {
            self.queue = nil
        }
    }

    /// Whether the caller runs on this delivery's own thread (inside the callback).
    public var isDeliveryThread: Bool {
        guard let queue else { return false }
        queue.condition.lock()
        defer { queue.condition.unlock() }
        return queue.thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
    }

    /// Events dropped because the consumer fell `capacity` events behind.
    public var dropped: UInt64 { droppedCount.load(ordering: .relaxed) }

    /// Queues one event; never blocks.
    public func push(_ event: Event) {
        switch consumer {
        case .stream(let continuation):
            if case .dropped = continuation.yield(event) { droppedCount.add(1, ordering: .relaxed) }
        case .sequence(let feed):
            let refused = feed.yield([event])
            if refused > 0 { droppedCount.add(UInt64(refused), ordering: .relaxed) }
        case .thread:
            guard let queue else { return }
            queue.condition.lock()
            if queue.finished || queue.items.count >= capacity {
                queue.condition.unlock()
                droppedCount.add(1, ordering: .relaxed)
                return
            }
            queue.items.append(event)
            if queue.items.count == 1 { queue.condition.signal() }
            queue.condition.unlock()
        }
    }

    /// Queues a batch with one lock and at most one wakeup, emptying `events`; never blocks.
    /// Events beyond the free room are dropped and counted.
    public func push(contentsOf events: inout [Event]) {
        guard !events.isEmpty else { return }
        switch consumer {
        case .stream(let continuation):
            for event in events {
                if case .dropped = continuation.yield(event) { droppedCount.add(1, ordering: .relaxed) }
            }
        case .sequence(let feed):
            let refused = feed.yield(events)
            if refused > 0 { droppedCount.add(UInt64(refused), ordering: .relaxed) }
        case .thread:
            guard let queue else { return }
            queue.condition.lock()
            let room = queue.finished ? 0 : max(0, capacity - queue.items.count)
            let taken = min(room, events.count)
            let wasEmpty = queue.items.isEmpty
            if wasEmpty && taken == events.count {
                swap(&queue.items, &events)  // hand over the storage, no copy
            } else {
                queue.items.append(contentsOf: events[..<taken])
            }
            if wasEmpty && taken > 0 { queue.condition.signal() }
            queue.condition.unlock()
            if taken < events.count { droppedCount.add(UInt64(events.count - taken), ordering: .relaxed) }
        }
        events.removeAll(keepingCapacity: true)
    }

    /// Delivers everything queued, then ends: the callback thread exits (this waits for it) or the
    /// stream finishes. Safe to call more than once.
    public func finish() {
        switch consumer {
        case .stream(let continuation):
            continuation.finish()
        case .sequence(let feed):
            feed.finish()
        case .thread:
            guard let queue else { return }
            queue.condition.lock()
            queue.finished = true
            queue.condition.broadcast()
            // The delivery thread itself may call finish (from a callback): do not wait on it then.
            let onDeliveryThread = queue.thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
            if !onDeliveryThread {
                while !queue.done { queue.condition.wait() }
            }
            queue.condition.unlock()
        }
    }
}
