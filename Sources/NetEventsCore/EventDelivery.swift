import Dispatch
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

    /// The queue and thread of the callback consumer. NSCondition guards every `var`.
    ///
    /// The delivery thread's closure holds this object, never the ``EventDelivery``: a thread
    /// given up on (``finish(within:)``) may return from the callback at any later time, and all
    /// it touches then is this object, which it keeps alive itself.
    private final class Queue: @unchecked Sendable {
        let condition = NSCondition()
        var items: [Event] = []
        var finished = false
        /// The thread ended having delivered everything.
        var done = false
        /// A finish stopped waiting for the callback: the thread delivers nothing more.
        var abandoned = false
        var thread: pthread_t?
        /// Events of the batch the thread took and has not finished delivering.
        var inFlight = 0
        /// Whether the callback takes one event a call (else the whole batch is one call).
        let perEvent: Bool
        /// Where the thread is in its batch: 2·n + 1 from the step into the callback for unit n
        /// until the step into the next one, 2·n once it has returned from n units and calls no
        /// more (the batch's end). One step per unit: the step into unit n + 1 (2·n + 1 →
        /// 2·n + 3) also records the return from unit n, and a return not yet recorded counts as
        /// still in the callback, as it did when that return was a step of its own. Each step is
        /// a compare-and-exchange, so a finish that gives up (swapping in ``givenUp``) knows
        /// exactly how many units were delivered (position / 2) and whether the thread is in a
        /// callback (an odd position), and the thread learns at its next step to deliver nothing more.
        let progress = Atomic<Int>(0)
        static var givenUp: Int { -1 }
        /// Given up on inside the callback, which has not returned since: the thread still runs
        /// the consumer's code.
        var stranded = false

        init(perEvent: Bool) { self.perEvent = perEvent }

        /// Takes the next step (`position` → `next`); false once a finish gave up.
        @inline(__always)
        func step(from position: Int, to next: Int) -> Bool {
            progress.compareExchange(expected: position, desired: next, ordering: .acquiringAndReleasing).exchanged
        }

        /// The thread was given up on and returns: it runs none of the consumer's code any more.
        func leave() {
            condition.lock()
            stranded = false
            thread = nil
            condition.broadcast()
            condition.unlock()
        }
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
        // Each delivers one batch (never empty), a step of the queue's progress per unit and one
        // at the end; false: given up on.
        let deliver: (@Sendable ([Event], Queue) -> Bool)?
        switch consumer {
        case .callback(let body):
            deliver = { batch, queue in
                var position = 0
                // Through a buffer pointer: its elements are lent to `body`, not copied (this
                // generic code is not specialized, and the array's subscript copied each event).
                let delivered = batch.withUnsafeBufferPointer { events -> Bool in
                    for index in events.indices {
                        // Into event `index`, and (but for the first) out of the one before it.
                        guard queue.step(from: position, to: 2 * index + 1) else { return false }
                        position = 2 * index + 1
                        body(events[index])
                    }
                    return true
                }
                return delivered && queue.step(from: position, to: 2 * batch.count)
            }
        case .batchCallback(let body):
            deliver = { batch, queue in
                guard queue.step(from: 0, to: 1) else { return false }
                body(batch)
                return queue.step(from: 1, to: 2)
            }
        case .stream, .sequence:
            deliver = nil
        }
        if let deliver {
            let perEvent = if case .callback = consumer { true } else { false }
            let queue = Queue(perEvent: perEvent)
            self.queue = queue
            let thread = Thread { [queue] in
                queue.condition.lock()
                queue.thread = pthread_self()
                queue.condition.unlock()
                var batch: [Event] = []
                while true {
                    queue.condition.lock()
                    queue.inFlight = 0  // the previous batch is delivered
                    while queue.items.isEmpty && !queue.finished && !queue.abandoned { queue.condition.wait() }
                    if queue.abandoned || queue.items.isEmpty {
                        // Finished with everything delivered, or given up on: deliver nothing more.
                        if !queue.abandoned { queue.done = true }
                        queue.thread = nil  // its id may be another thread's once it has ended
                        queue.condition.broadcast()
                        queue.condition.unlock()
                        return
                    }
                    swap(&batch, &queue.items)
                    queue.inFlight = batch.count
                    queue.progress.store(0, ordering: .releasing)
                    queue.condition.unlock()
                    guard deliver(batch, queue) else { return queue.leave() }
                    batch.removeAll(keepingCapacity: true)
                }
            }
            thread.name = "event delivery"
            thread.start()
        } else {
            self.queue = nil
        }
    }

    /// Whether the caller runs on this delivery's own thread (inside the callback), while that
    /// thread delivers.
    public var isDeliveryThread: Bool {
        guard let queue else { return false }
        queue.condition.lock()
        defer { queue.condition.unlock() }
        return queue.thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
    }

    /// Whether the delivery thread has not ended yet: it still delivers (a finish called from the
    /// callback returns at once, and the thread then delivers what is queued), or runs a callback
    /// given up on.
    public var threadIsRunning: Bool {
        guard let queue else { return false }
        queue.condition.lock()
        defer { queue.condition.unlock() }
        return queue.thread != nil
    }

    /// Whether a callback given up on (``finish(within:)`` returned false) is still running: the
    /// delivery thread was inside it at the give-up and it has not returned since. Until it
    /// returns, the consumer's code runs on that thread; then the thread ends, delivering nothing more.
    public var abandonedCallbackIsRunning: Bool {
        guard let queue else { return false }
        queue.condition.lock()
        defer { queue.condition.unlock() }
        return queue.stranded
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
    /// stream finishes. Safe to call more than once, and from the callback itself (which returns
    /// at once; the thread delivers what is queued once the callback returns).
    ///
    /// A callback that does not finish within `grace` (one blocked for good, say, in a write to a
    /// pipe nobody reads) is given up on: every event it has not returned from (the one it is in,
    /// the rest of its batch, everything queued) is counted in ``dropped``, nothing more is
    /// delivered, and this returns. The thread is left to itself: if its callback ever returns,
    /// it ends without delivering anything else or touching this object (until then,
    /// ``abandonedCallbackIsRunning`` is true).
    /// - Parameter grace: the longest wait for the callback thread (up to a day; a longer grace
    ///   waits a day); nil waits as long as it takes. Zero gives up on whatever is still queued.
    /// - Returns: false when the callback was given up on, true otherwise.
    @discardableResult
    public func finish(within grace: Duration? = nil) -> Bool {
        switch consumer {
        case .stream(let continuation):
            continuation.finish()
            return true
        case .sequence(let feed):
            feed.finish()
            return true
        case .thread:
            guard let queue else { return true }
            queue.condition.lock()
            defer { queue.condition.unlock() }
            queue.finished = true
            queue.condition.broadcast()
            // The delivery thread itself may call finish (from a callback): do not wait on it then.
            if queue.thread.map({ pthread_equal($0, pthread_self()) != 0 }) ?? false { return true }
            // The deadline is on the monotonic clock, waited for in short slices: NSCondition's
            // own deadline is wall-clock time, which a step of the clock would stretch.
            let deadline = grace.map { DispatchTime.now().uptimeNanoseconds &+ Self.nanoseconds($0) }
            while !queue.done && !queue.abandoned {
                guard let deadline else {
                    queue.condition.wait()
                    continue
                }
                let now = DispatchTime.now().uptimeNanoseconds
                if now >= deadline {
                    giveUp(queue)
                    return false
                }
                _ = queue.condition.wait(until: Date(timeIntervalSinceNow: min(Double(deadline - now) / 1e9, 0.1)))
            }
            return !queue.abandoned
        }
    }

    /// The longest grace: a day (a longer one waits a day).
    static var longestGrace: Duration { .seconds(86_400) }

    /// `grace` in nanoseconds, between zero and ``longestGrace``.
    static func nanoseconds(_ grace: Duration) -> UInt64 {
        let clamped = min(max(grace, .zero), longestGrace).components
        return UInt64(clamped.seconds) * 1_000_000_000 + UInt64(clamped.attoseconds / 1_000_000_000)
    }

    /// Stops delivering and counts what was not delivered; the queue's lock is held.
    private func giveUp(_ queue: Queue) {
        queue.abandoned = true
        let position = queue.progress.exchange(Queue.givenUp, ordering: .acquiringAndReleasing)
        // An odd position: in the callback of a unit, or returned from it and not yet recorded so.
        // The thread leaves once that return is recorded (the step fails then).
        queue.stranded = position >= 0 && position % 2 == 1
        // Units the callback returned from; a batch callback's unit is its whole batch.
        let returned = max(0, position) / 2
        let delivered = queue.perEvent ? returned : (returned > 0 ? queue.inFlight : 0)
        let undelivered = queue.items.count + max(0, queue.inFlight - delivered)
        queue.items = []
        queue.condition.broadcast()
        droppedCount.add(UInt64(undelivered), ordering: .relaxed)
    }
}
