import Synchronization

/// The events of a monitor as an asynchronous sequence, carried in batches underneath.
///
/// Samples arrive from the kernel in batches (one per drain of its buffer); resuming an awaiting
/// task costs more than decoding an event, so the batch travels as one element and this sequence
/// hands its events out one by one. It ends when the monitor stops.
public struct EventSequence<Event: Sendable>: AsyncSequence, Sendable {
    public typealias Element = Event

    private let batches: AsyncStream<[Event]>
    private let pending: PendingCount
    /// What must live as long as the sequence (its monitor).
    private let owner: (any AnyObject & Sendable)?

    /// Events handed to the stream and not yet taken by an iterator: what the capacity bounds.
    final class PendingCount: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Feeds an ``EventSequence``; used by ``EventDelivery``.
    public struct Feed: Sendable {
        let continuation: AsyncStream<[Event]>.Continuation
        let pending: PendingCount
        let capacity: Int

        /// Yields as many of `events` as there is room for; returns how many did not fit.
        func yield(_ events: [Event]) -> Int {
            let room = Swift.max(0, capacity - pending.value.load(ordering: .relaxed))
            let taken = Swift.min(room, events.count)
            guard taken > 0 else { return events.count }
            pending.value.add(taken, ordering: .relaxed)
            let batch = taken == events.count ? events : Array(events[..<taken])
            if case .terminated = continuation.yield(batch) { return events.count }
            return events.count - taken
        }

        /// Ends the sequence after the events already yielded.
        func finish() { continuation.finish() }

        /// Runs when the sequence ends: finished, or its consumer stopped iterating.
        public func onTermination(_ body: @escaping @Sendable () -> Void) {
            continuation.onTermination = { _ in body() }
        }
    }

    /// A sequence and the feed that fills it.
    /// - Parameter capacity: events that may wait for the consumer before new ones are refused.
    public static func make(capacity: Int) -> (sequence: EventSequence, feed: Feed) {
        let (stream, continuation) = AsyncStream.makeStream(of: [Event].self, bufferingPolicy: .unbounded)
        let pending = PendingCount()
        return (EventSequence(batches: stream, pending: pending), Feed(continuation: continuation, pending: pending, capacity: Swift.max(1, capacity)))
    }

    private init(batches: AsyncStream<[Event]>, pending: PendingCount, owner: (any AnyObject & Sendable)? = nil) {
        self.batches = batches
        self.pending = pending
        self.owner = owner
    }

    /// This sequence, keeping `owner` alive for as long as it (or an iterator of it) lives.
    func keepingAlive(_ owner: any AnyObject & Sendable) -> EventSequence {
        EventSequence(batches: batches, pending: pending, owner: owner)
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: batches.makeAsyncIterator(), pending: pending, owner: owner)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<[Event]>.AsyncIterator
        let pending: PendingCount
        let owner: (any AnyObject & Sendable)?
        var batch: [Event] = []
        var index = 0

        public mutating func next() async -> Event? {
            while index == batch.count {
                guard let next = await base.next() else { return nil }
                pending.value.subtract(next.count, ordering: .relaxed)
                batch = next
                index = 0
            }
            defer { index += 1 }
            return batch[index]
        }
    }
}
