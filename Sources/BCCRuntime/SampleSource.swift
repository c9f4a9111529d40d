/// What a ``SampleSource`` calls, on its own thread, for each raw sample and each report of lost
/// samples. Both closures must return promptly: they run inside the reader's poll loop.
public struct SampleHandler: Sendable {
    /// One raw sample, valid only during the call.
    public var onSample: @Sendable (UnsafeRawBufferPointer) -> Void
    /// The kernel (or the program) dropped this many samples since the last report.
    public var onLost: @Sendable (UInt64) -> Void
    /// The source has handed over everything it had for now (the end of one drain), so work per
    /// batch, such as waking a consumer, can be done once instead of once per sample.
    public var onBatchEnd: @Sendable () -> Void

    /// A handler; `onLost` and `onBatchEnd` do nothing by default.
    public init(
        onSample: @escaping @Sendable (UnsafeRawBufferPointer) -> Void,
        onLost: @escaping @Sendable (UInt64) -> Void = { _ in },
        onBatchEnd: @escaping @Sendable () -> Void = {}
    ) {
        self.onSample = onSample
        self.onLost = onLost
        self.onBatchEnd = onBatchEnd
    }
}

/// A producer of raw samples: a perf buffer, a ring buffer, or a mock in tests.
///
/// Decoders and delivery are written against this protocol, so they run in unit tests without
/// privileges through `MockSampleSource` (the `NetEventsTesting` library).
public protocol SampleSource: AnyObject, Sendable {
    /// Starts delivering samples to `handler` on the source's own thread (one thread: the
    /// handler's calls never overlap).
    /// - Throws: `BPFError.alreadyStarted` when the source runs already, or what opening its
    ///   buffers or thread failed with; nothing stays open then.
    func start(_ handler: SampleHandler) throws(BPFError)
    /// Delivers every sample still buffered, then stops the thread and releases the buffers.
    /// Safe to call more than once, and before `start`.
    func close()
    /// Samples lost so far (overwritten in the kernel or refused by a full buffer).
    var lostSamples: UInt64 { get }
}
