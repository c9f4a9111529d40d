import Dispatch
import Glibc
import Synchronization

/// The running half of a monitor: attachments, a sample source, the kind's state, and delivery,
/// with the one correct order of shutdown: detach (no new samples; the links in the reverse of
/// their attach order), stop the scans, drain the source, run the kind's final scan, then finish
/// delivery (waiting at most the grace period for the consumer).
///
/// There is one producer path into delivery (``Intake``): decoding a sample, a periodic scan and
/// the final scan all append to one batch under one lock, and the batch is handed over under the
/// same lock, so events reach the consumer in the order they were produced.
final class TracingSession<Kind: EventKind>: Sendable {
    /// In attach order: each kind attaches what a hook depends on before the hook.
    private let links: Locked<[BPFLink]>
    /// The compiled program, kept alive (with its maps) until the session ends.
    let module: BPFModule?
    /// Where samples come from.
    let source: any SampleSource
    /// Decodes samples and hands events to delivery.
    private let intake: Intake
    /// Where events go.
    var delivery: EventDelivery<Kind.Event> { intake.delivery }
    /// The kind's state for this run.
    var kind: Kind { intake.kind }
    private let stopped = Atomic<Bool>(false)
    private let scanner = Locked<PeriodicTask?>(nil)
    /// Keeps the kernel's filter following cgroups made anew (``ResolvedFilter/refresh(in:)``).
    private let upkeeper = Locked<PeriodicTask?>(nil)
    /// Left when the first stop has finished; later stops wait on it (but for the delivery thread).
    private let stopFinished = DispatchGroup()
    /// The thread running the first stop: a stop it causes itself (ending a sequence calls the
    /// monitor's stop again) must not wait for itself.
    private let stoppingThread = Locked<pthread_t?>(nil)
    /// How long stop waits for the consumer (``MonitorConfiguration/stopGracePeriod``).
    private let stopGrace: Duration
    /// The programs' skipped runs when stop detached them (nil until then; inside, nil where
    /// the kernel does not count them).
    private let missedRunsAtStop = Locked<UInt64??>(nil)
    /// The kernel's count of the hook's hits, frozen at stop before the links go.
    private let unseen: UnseenEventCount?

    /// Starts reading: every sample is decoded on the source's thread and delivered at the end of
    /// each drain; the kind's scans (if any) start on their own thread.
    /// - Throws: when the source cannot start; the links are closed and delivery finished then.
    init(
        module: BPFModule?, links: [BPFLink], source: any SampleSource, delivery: EventDelivery<Kind.Event>, kind: Kind,
        attributor: EventAttributor?, stopGrace: Duration, upkeep: (@Sendable () -> Void)? = nil,
        unseen: UnseenEventCount? = nil
    ) throws(BPFError) {
        self.stopGrace = stopGrace
        self.unseen = unseen
        self.module = module
        let intake = Intake(kind: kind, delivery: delivery, attributor: attributor)
        self.intake = intake
        self.links = Locked(links)
        self.source = source
        stopFinished.enter()
        // What was there before: appended first, so it reaches the consumer before any sample.
        kind.prepare()
        intake.produce { kind.begin(into: &$0) }
        do {
            // The handler holds the intake, not the session: no cycle through the source, and no
            // weak reference to load per sample.
            try source.start(SampleHandler(onSample: { raw in intake.decode(raw) }, onBatchEnd: { intake.produce { _ in } }))
        } catch {
            links.reversed().forEach { $0.close() }
            delivery.finish(within: stopGrace)
            stopped.store(true, ordering: .releasing)
            stopFinished.leave()
            throw error
        }
        if let interval = kind.scanInterval {
            let task = PeriodicTask(interval: interval, name: "event scan") {
                kind.prepare()
                intake.produce { kind.scan(into: &$0, final: false) }
            }
            scanner.withLock { $0 = task }
        }
        if let upkeep {
            upkeeper.withLock { $0 = PeriodicTask(interval: .seconds(1), name: "filter upkeep", upkeep) }
        }
    }

    /// The producer path: the batch of events not yet handed to delivery, and what decoding found.
    ///
    /// Per sample this costs a lock, the kind's decode and an append. The batch is guarded by a
    /// lock of its own that holds no value, in storage of its own: a `Mutex` of the batch's
    /// generic type made the unspecialized code of this generic class look up that type's
    /// metadata on every sample, and a stored `var` is checked for exclusive access on each use.
    /// Names are given once per drain, to everything the drain decoded.
    private final class Intake: @unchecked Sendable {
        let kind: Kind
        let delivery: EventDelivery<Kind.Event>
        /// Names each event's cgroup and network namespace; nil when the configuration turned it off.
        let attributor: EventAttributor?
        private let lock = Locked<Void>(())
        /// The events not yet handed to delivery; guarded by `lock`.
        private let batch: UnsafeMutablePointer<[Kind.Event]>
        let malformed = Atomic<UInt64>(0)
        let lastMalformed = Locked<BPFError?>(nil)

        init(kind: Kind, delivery: EventDelivery<Kind.Event>, attributor: EventAttributor?) {
            self.kind = kind
            self.delivery = delivery
            self.attributor = attributor
            batch = .allocate(capacity: 1)
            batch.initialize(to: [])
        }

        deinit {
            batch.deinitialize(count: 1)
            batch.deallocate()
        }

        /// Decodes one sample into the batch (delivered, and named, at the drain's end); a
        /// sample that cannot be decoded is counted and skipped.
        func decode(_ raw: UnsafeRawBufferPointer) {
            let failure = lock.withLock { _ -> BPFError? in
                do throws(BPFError) {
                    try kind.decode(raw, into: &batch.pointee)
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

        /// Runs `body` on the producer path, names every event of the batch, and hands them to
        /// delivery.
        func produce(_ body: (inout [Kind.Event]) -> Void) {
            lock.withLock { _ in
                body(&batch.pointee)
                guard !batch.pointee.isEmpty else { return }
                if let attributor { Kind.attribute(&batch.pointee, from: 0, with: attributor) }
                delivery.push(contentsOf: &batch.pointee)
            }
        }
    }

    /// Runs of the attached programs the kernel skipped (``BPFProgram/missedRuns``), summed over
    /// the programs; nil when the kernel does not count those of one of them. After a stop, as
    /// they were when it detached them.
    var missedProgramRuns: UInt64? {
        if let final = missedRunsAtStop.withLock({ $0 }) { return final }
        return links.withLock { Self.missedRuns(of: $0) }
    }

    private static func missedRuns(of links: [BPFLink]) -> UInt64? {
        var programs: [ObjectIdentifier: BPFProgram] = [:]
        for link in links { programs[ObjectIdentifier(link.program)] = link.program }
        var total: UInt64 = 0
        for program in programs.values {
            guard let missed = program.missedRuns else { return nil }
            total += missed
        }
        return total
    }

    /// Hits of the kind's cross-checked hook that no program run saw (``MonitorStatistics/unseenEvents``).
    var unseenEvents: UInt64? { unseen?.unseen }

    /// Samples that could not be decoded (each one skipped, not delivered).
    var malformedSamples: UInt64 { intake.malformed.load(ordering: .relaxed) }
    /// The most recent decoding error, for diagnostics.
    var lastDecodingError: BPFError? { intake.lastMalformed.withLock { $0 } }

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
        let links = self.links.withLock { $0 }
        upkeeper.withLock { task in
            defer { task = nil }
            return task
        }?.stop()
        // The kernel's count stops first: a hit after the detach is no unseen event.
        unseen?.freeze()
        // The reverse of the attach order: a hook goes before what it depends on. TCP's close
        // hook (the events) goes before the owner hooks (connect, accept, first I/O) and socket
        // cookies it reads, so no close in the last moments finds its owner or cookie gone;
        // UDP's counting hooks go before the close hook, so no counted socket closes unseen.
        links.reversed().forEach { $0.close() }
        // Detached, the programs are still loaded (each link holds its own): what they skipped
        // stays readable, and is kept before the links go.
        let missed = Self.missedRuns(of: links)
        missedRunsAtStop.withLock { $0 = missed }
        self.links.withLock { $0 = [] }
        scanner.withLock { task in
            defer { task = nil }
            return task
        }?.stop()
        source.close()
        intake.produce { kind.scan(into: &$0, final: true) }
        delivery.finish(within: stopGrace)
    }

    deinit { stop() }
}
