import Dispatch
import Glibc
import Synchronization

/// The running half of a monitor: attachments, a sample source, the kind's state, and delivery,
/// with the one correct order of shutdown: detach (no new samples; the links in the reverse of
/// their attach order), stop the scans, drain the source, run the kind's final scan, then finish
/// delivery (waiting at most the grace period for the consumer).
///
/// There is one producer path into delivery: decoding a sample, a periodic scan and the final scan
/// all append to one batch under one lock, and the batch is handed over under the same lock, so
/// events reach the consumer in the order they were produced.
final class TracingSession<Kind: EventKind>: Sendable {
    /// In attach order: each kind attaches what a hook depends on before the hook.
    private let links: Mutex<[BPFLink]>
    /// The compiled program, kept alive (with its maps) until the session ends.
    let module: BPFModule?
    /// Where samples come from.
    let source: any SampleSource
    /// Where events go.
    let delivery: EventDelivery<Kind.Event>
    /// The kind's state for this run.
    let kind: Kind
    private let producer = Mutex<[Kind.Event]>([])
    /// Names each event's cgroup and network namespace; nil when the configuration turned it off.
    private let attributor: EventAttributor?
    private let malformed = Atomic<UInt64>(0)
    private let lastMalformed = Mutex<BPFError?>(nil)
    private let stopped = Atomic<Bool>(false)
    private let scanner = Mutex<PeriodicTask?>(nil)
    /// Keeps the kernel's filter following cgroups made anew (``ResolvedFilter/refresh(in:)``).
    private let upkeeper = Mutex<PeriodicTask?>(nil)
    /// Left when the first stop has finished; later stops wait on it (but for the delivery thread).
    private let stopFinished = DispatchGroup()
    /// The thread running the first stop: a stop it causes itself (ending a sequence calls the
    /// monitor's stop again) must not wait for itself.
    private let stoppingThread = Mutex<pthread_t?>(nil)
    /// How long stop waits for the consumer (``MonitorConfiguration/stopGracePeriod``).
    private let stopGrace: Duration

    /// Starts reading: every sample is decoded on the source's thread and delivered at the end of
    /// each drain; the kind's scans (if any) start on their own thread.
    /// - Throws: when the source cannot start; the links are closed and delivery finished then.
    init(
        module: BPFModule?, links: [BPFLink], source: any SampleSource, delivery: EventDelivery<Kind.Event>, kind: Kind,
        attributor: EventAttributor?, stopGrace: Duration, upkeep: (@Sendable () -> Void)? = nil
    ) throws(BPFError) {
        self.stopGrace = stopGrace
        self.module = module
        self.attributor = attributor
        self.links = Mutex(links)
        self.source = source
        self.delivery = delivery
        self.kind = kind
        stopFinished.enter()
        // What was there before: appended first, so it reaches the consumer before any sample.
        kind.prepare()
        produce { kind.begin(into: &$0) }
        do {
            try source.start(
                SampleHandler(
                    onSample: { [weak self] raw in self?.decode(raw) },
                    onBatchEnd: { [weak self] in self?.produce { _ in } }))
        } catch {
            links.reversed().forEach { $0.close() }
            delivery.finish(within: stopGrace)
            stopped.store(true, ordering: .releasing)
            stopFinished.leave()
            throw error
        }
        if let interval = kind.scanInterval {
            let task = PeriodicTask(interval: interval, name: "event scan") { [weak self] in
                self?.kind.prepare()
                self?.produce { self?.kind.scan(into: &$0, final: false) }
            }
            scanner.withLock { $0 = task }
        }
        if let upkeep {
            upkeeper.withLock { $0 = PeriodicTask(interval: .seconds(1), name: "filter upkeep", upkeep) }
        }
    }

    private func decode(_ raw: UnsafeRawBufferPointer) {
        let failure = producer.withLock { batch -> BPFError? in
            do throws(BPFError) {
                let start = batch.endIndex
                try kind.decode(raw, into: &batch)
                attribute(&batch, from: start)
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            malformed.add(1, ordering: .relaxed)
            lastMalformed.withLock { $0 = failure }
        }
    }

    /// Runs `body` on the producer path and hands what the batch holds to delivery.
    private func produce(_ body: (inout [Kind.Event]) -> Void) {
        producer.withLock { batch in
            let start = batch.endIndex
            body(&batch)
            attribute(&batch, from: start)
            delivery.push(contentsOf: &batch)
        }
    }

    /// Names the cgroup and network namespace of the events appended since `start`.
    private func attribute(_ batch: inout [Kind.Event], from start: Int) {
        guard let attributor, start < batch.endIndex else { return }
        Kind.attribute(&batch, from: start, with: attributor)
    }

    /// Samples that could not be decoded (each one skipped, not delivered).
    var malformedSamples: UInt64 { malformed.load(ordering: .relaxed) }
    /// The most recent decoding error, for diagnostics.
    var lastDecodingError: BPFError? { lastMalformed.withLock { $0 } }

    /// Detaches, drains what is buffered, runs the final scan, and ends delivery. Safe to call
    /// twice and from several threads: every caller returns once all is delivered, or the
    /// consumer was given up on after the grace period (what it missed counted as dropped),
    /// except one on the delivery thread itself (inside the callback), which returns at once.
    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else {
            let reentrant = stoppingThread.withLock { $0.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
            if !reentrant && !delivery.isDeliveryThread { stopFinished.wait() }
            return
        }
        stoppingThread.withLock { $0 = pthread_self() }
        defer { stopFinished.leave() }
        let links = self.links.withLock { links in
            defer { links = [] }
            return links
        }
        upkeeper.withLock { task in
            defer { task = nil }
            return task
        }?.stop()
        // The reverse of the attach order: a hook goes before what it depends on. TCP's close
        // hook (the events) goes before the owner hooks (connect, accept, first I/O) and socket
        // cookies it reads, so no close in the last moments finds its owner or cookie gone;
        // UDP's counting hooks go before the close hook, so no counted socket closes unseen.
        links.reversed().forEach { $0.close() }
        scanner.withLock { task in
            defer { task = nil }
            return task
        }?.stop()
        source.close()
        produce { kind.scan(into: &$0, final: true) }
        delivery.finish(within: stopGrace)
    }

    deinit { stop() }
}
