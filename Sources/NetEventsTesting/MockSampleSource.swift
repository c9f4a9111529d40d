import NetEventsCore
import Synchronization

/// A `SampleSource` fed by hand, for testing code that consumes events without privileges: give
/// it to a monitor (`TCPMonitor(source:)`) and emit samples built with ``TCPSample`` or
/// ``UDPCloseSample``.
///
/// Samples given to ``emit(_:)`` before the first `start` are queued and delivered at `start`;
/// after it, they are delivered at once on the caller's thread, as a reader's poll thread would.
/// Between `close` and the next `start` (a monitor started again) they are ignored, as the kernel's
/// would be with nothing attached.
public final class MockSampleSource: SampleSource {
    private struct State {
        var handler: SampleHandler?
        var pending: [[UInt8]] = []
        var closed = false
    }
    private let state = Locked(State())
    private let lost = Atomic<UInt64>(0)

    /// A source with nothing queued.
    public init() {}

    /// Samples reported lost with ``reportLost(_:)``.
    public var lostSamples: UInt64 { lost.load(ordering: .relaxed) }

    /// Whether `start` has been called and `close` has not.
    public var isRunning: Bool { state.withLock { $0.handler != nil && !$0.closed } }

    /// Delivers what was queued, then each sample as it is emitted. A closed source starts again.
    /// - Throws: `BPFError.alreadyStarted` for a second start without a `close` between.
    public func start(_ handler: SampleHandler) throws(BPFError) {
        let pending = try state.withLock { state throws(BPFError) -> [[UInt8]] in
            guard state.handler == nil else { throw .alreadyStarted("mock sample source") }
            state.handler = handler
            state.closed = false
            defer { state.pending = [] }
            return state.pending
        }
        for sample in pending { sample.withUnsafeBytes { handler.onSample($0) } }
        handler.onBatchEnd()
    }

    /// Delivers one raw sample (or queues it until `start`). Ignored after `close`.
    public func emit(_ bytes: [UInt8]) {
        let handler = state.withLock { state -> SampleHandler? in
            if state.closed { return nil }
            if state.handler == nil { state.pending.append(bytes) }
            return state.handler
        }
        bytes.withUnsafeBytes { handler?.onSample($0) }
        handler?.onBatchEnd()
    }

    /// Delivers `count` copies of one sample as a single batch, as a reader draining a full ring
    /// would (for benchmarks of decoding and delivery).
    public func emit(_ bytes: [UInt8], count: Int) {
        guard let handler = state.withLock({ $0.closed ? nil : $0.handler }) else { return }
        bytes.withUnsafeBytes { raw in
            for _ in 0..<count { handler.onSample(raw) }
        }
        handler.onBatchEnd()
    }

    /// Delivers `count` samples as a single batch, taking them from `samples` in turn (for
    /// benchmarks of samples that differ, such as those of two processes interleaved).
    public func emit(cycling samples: [[UInt8]], count: Int) {
        guard !samples.isEmpty, let handler = state.withLock({ $0.closed ? nil : $0.handler }) else { return }
        for index in 0..<count { samples[index % samples.count].withUnsafeBytes { handler.onSample($0) } }
        handler.onBatchEnd()
    }

    /// Reports `count` lost samples, as the kernel would.
    public func reportLost(_ count: UInt64) {
        lost.add(count, ordering: .relaxed)
        state.withLock { $0.closed ? nil : $0.handler }?.onLost(count)
    }

    /// Stops delivering; later samples are ignored until the next `start`.
    public func close() {
        state.withLock { state in
            state.closed = true
            state.handler = nil
        }
    }
}
