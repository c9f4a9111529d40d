import Foundation
import NetEventsTesting
@testable import NetEventsCore

/// A consumer that blocks on one value until released, recording what it received: it signals
/// ``entered`` when it holds that value and returns from it only after ``release()``; a value is
/// recorded once the consumer returns from it.
final class BlockingConsumer<Value: Equatable & Sendable>: Sendable {
    /// Signalled each time the consumer holds (in ``hold()``).
    let entered = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)
    private let holdingValue: Value?
    private let values = Locked<[Value]>([])

    /// A consumer that holds on `value`; with nil it holds only where ``hold()`` is called.
    init(holdingOn value: Value? = nil) { holdingValue = value }

    /// Consumes `value`: holds first if it is the value to hold on, then records it.
    func consume(_ value: Value) {
        if value == holdingValue { hold() }
        values.withLock { $0.append(value) }
    }

    /// Signals ``entered`` and waits for ``release()``.
    func hold() {
        entered.signal()
        released.wait()
    }

    /// Lets one hold return.
    func release() { released.signal() }

    /// What the consumer returned from, in order.
    var received: [Value] { values.current }

    /// An event delivery's per-event consumer that is this one.
    var callback: EventDelivery<Value>.Consumer { .callback { self.consume($0) } }
}

/// A monitor of the counting kind over a mock source of its own, started with `handler`.
func startedMonitor(
    configuration: EventMonitor<CountingKind>.Configuration = .init(),
    _ handler: @escaping @Sendable (CountingKind.Event) -> Void
) throws -> (EventMonitor<CountingKind>, MockSampleSource) {
    let source = MockSampleSource()
    let monitor = try EventMonitor<CountingKind>(source: source, configuration: configuration)
    try monitor.start(handler)
    return (monitor, source)
}

/// A monitor of the counting kind over a mock source of its own, started into the box returned.
func startedMonitor(
    configuration: EventMonitor<CountingKind>.Configuration = .init()
) throws -> (EventMonitor<CountingKind>, MockSampleSource, EventBox<CountingKind.Event>) {
    let box = EventBox<CountingKind.Event>()
    let (monitor, source) = try startedMonitor(configuration: configuration) { box.add($0) }
    return (monitor, source, box)
}

/// Whether `condition` holds within 10 s (a generous bound on a busy machine), checking every millisecond.
func eventually(_ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(10)
    while !condition() {
        guard Date() < deadline else { return false }
        usleep(1_000)
    }
    return true
}
