import Synchronization

/// The running half of a monitor: attachments, a sample source, a decoder and delivery, with
/// the one correct order of shutdown: detach (no new samples), drain the source, run the
/// caller's final flush, then finish delivery.
public final class TracingSession<Event: Sendable>: Sendable {
    /// Turns a raw sample into an event; nil skips it.
    public typealias Decoder = @Sendable (UnsafeRawBufferPointer) throws(BPFError) -> Event?

    private let links: Mutex<[BPFLink]>
    /// The compiled program, kept alive (with its maps) until the session ends.
    public let module: BPFModule?
    /// Where samples come from.
    public let source: any SampleSource
    /// Where events go.
    public let delivery: EventDelivery<Event>
    private let malformed = Atomic<UInt64>(0)
    private let lastMalformed = Mutex<BPFError?>(nil)
    private let stopped = Atomic<Bool>(false)
    private let finalFlush: (@Sendable (EventDelivery<Event>) -> Void)?

    /// Starts reading: every sample is decoded on the source's thread and pushed to `delivery`.
    /// - Parameter finalFlush: runs at stop, after the source is drained and before delivery ends.
    /// - Throws: when the source cannot start; the links are closed then.
    public init(
        module: BPFModule?, links: [BPFLink], source: any SampleSource, delivery: EventDelivery<Event>,
        decode: @escaping Decoder, finalFlush: (@Sendable (EventDelivery<Event>) -> Void)? = nil
    ) throws {
        self.module = module
        self.links = Mutex(links)
        self.source = source
        self.delivery = delivery
        self.finalFlush = finalFlush
        let batch = Batch<Event>()
        batch.events.reserveCapacity(1024)
        do {
            try source.start(
                SampleHandler(
                    onSample: { [weak self] raw in
                        do throws(BPFError) {
                            if let event = try decode(raw) { batch.events.append(event) }
                        } catch {
                            self?.recordMalformed(error)
                        }
                    },
                    onBatchEnd: { delivery.push(contentsOf: &batch.events) }))
        } catch {
            links.forEach { $0.close() }
            delivery.finish()
            throw error
        }
    }

    private func recordMalformed(_ error: BPFError) {
        malformed.add(1, ordering: .relaxed)
        lastMalformed.withLock { $0 = error }
    }

    /// Samples that could not be decoded (each one skipped, not delivered).
    public var malformedSamples: UInt64 { malformed.load(ordering: .relaxed) }
    /// The most recent decoding error, for diagnostics.
    public var lastDecodingError: BPFError? { lastMalformed.withLock { $0 } }

    /// Whether ``stop()`` has run.
    public var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// Detaches, drains what is buffered, flushes, and ends delivery. Safe to call twice.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let links = self.links.withLock { links in
            defer { links = [] }
            return links
        }
        links.forEach { $0.close() }
        source.close()
        finalFlush?(delivery)
        delivery.finish()
    }

    deinit { stop() }
}

/// The events of one drain, handed to delivery together at its end. Only the source's thread
/// touches it (a source's handler calls never overlap).
private final class Batch<Event>: @unchecked Sendable {
    var events: [Event] = []
}
