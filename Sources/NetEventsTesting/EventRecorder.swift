import NetEventsCore
import Synchronization

/// Keeps the events a monitor's handler is given, from whichever thread delivers them, for a test
/// to read once the monitor has stopped.
///
/// A monitor calls its handler on its own delivery thread, so a test cannot simply append to a
/// local array; hand it the recorder instead:
///
/// ```swift
/// let source = MockSampleSource()
/// let monitor = try UDPMonitor(source: source)
/// let recorder = EventRecorder<UDPTrafficEvent>()
/// try monitor.start { recorder.record($0) }
/// source.emit(UDPCloseSample().bytes)
/// monitor.stop()
/// XCTAssertEqual(recorder.events.count, 1)
/// ```
public final class EventRecorder<Event: Sendable>: Sendable {
    private let recorded = Locked<[Event]>([])

    /// A recorder that has recorded nothing.
    public init() {}

    /// Appends `event` to ``events``; call it from the monitor's handler.
    public func record(_ event: Event) {
        recorded.withLock { $0.append(event) }
    }

    /// What was recorded so far, in the order it came.
    public var events: [Event] { recorded.withLock { $0 } }
}
