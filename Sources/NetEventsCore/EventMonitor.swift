import Synchronization

/// Traces one event kind in the kernel and delivers its events: the machinery every kind shares.
///
/// Each kind names its monitor (`TCPMonitor` is `EventMonitor<TCPKind>`, `UDPMonitor` is
/// `EventMonitor<UDPKind>`), and the kind supplies only its program, hooks, decoder and counters
/// (``EventKind``).
///
/// ```swift
/// let monitor = try TCPMonitor(configuration: .init(filter: .init(ports: [443])))
/// try monitor.start { event in print(event.command, event.sentBytes) }
/// // ...
/// monitor.stop()   // detaches, delivers what is buffered, then returns
/// try monitor.start { event in print(event.command) }   // a stopped monitor starts again
/// ```
///
/// At start the monitor checks privileges and tracefs, lets the kind pick the best hooks the
/// kernel offers (by probing; ``report`` says what was chosen and why), takes struct offsets from
/// BTF, compiles the kind's program with BCC and attaches it. Starting needs root (or `CAP_BPF` +
/// `CAP_PERFMON`) and takes about half a second (BCC's compile); statistics and `stop()` do not
/// wait for it. A stopped monitor can be started again: each start compiles and attaches anew,
/// and ``statistics`` and ``report`` describe the latest start.
///
/// Threading: a callback given to ``start(_:)`` runs on the monitor's own delivery thread, one
/// event at a time, in order. It must not block for long: events that find
/// ``MonitorConfiguration/deliveryCapacity`` events waiting are dropped and counted, and a
/// callback still behind ``MonitorConfiguration/stopGracePeriod`` after a stop is given up on
/// (and the monitor does not start again until that callback has returned).
/// The monitor is `Sendable`: start, stop and the statistics may be called from any thread or task.
public final class EventMonitor<Kind: EventKind>: Sendable {
    /// The options of a monitor of this kind.
    public typealias Configuration = MonitorConfiguration<Kind>
    /// What a monitor of this kind chose at start.
    public typealias Report = AttachReport<Kind.Hooks>
    /// What a monitor of this kind missed, and the kind's own counters.
    public typealias Statistics = MonitorStatistics<Kind.Counters>
    /// The events of this kind.
    public typealias Event = Kind.Event
    /// The kind's own options (`TCPKind.Options`, `UDPKind.Options`).
    public typealias Options = Kind.Options
    /// The kinds of kernel hook a kind may be forced to (``MonitorConfiguration/options``).
    public typealias Hook = HookType

    /// The options the monitor was made with.
    public let configuration: Configuration
    private let injectedSource: (any SampleSource)?
    /// The clock of each start: a fresh one (the wall-clock offset taken at start), or the one
    /// a test injected.
    private let makeClock: @Sendable () -> WallClock
    private let lifecycle = Locked(Lifecycle())

    private struct Lifecycle: Sendable {
        var phase: Phase = .stopped(nil)
        /// The number of the latest start: the sequence of ``events()`` stops only its own run.
        var run: UInt64 = 0
        /// The delivery of the latest start: its callback may still run after a stop gave up on it.
        var delivery: EventDelivery<Event>?
    }

    private enum Phase: Sendable {
        /// Compiling and attaching, outside the lock, for this delivery. A stop meanwhile ends
        /// the delivery and is remembered; the start then detaches and ends stopped.
        case starting(EventDelivery<Event>, stopRequested: Bool)
        case running(Run)
        /// Never started (nil), or stopped (or stopping): the last run, for its report and statistics.
        case stopped(Run?)
    }

    private struct Run: Sendable {
        /// Nil when a stop came before the session began.
        var session: TracingSession<Kind>?
        var report: Report?
        var counters: KernelCounters
    }

    /// A monitor of the running kernel. Nothing is compiled or attached until it starts.
    /// - Throws: `BPFError.invalidArgument` naming the first bad option.
    public convenience init(configuration: Configuration = Configuration()) throws(BPFError) {
        try self.init(source: nil, configuration: configuration, makeClock: { WallClock() })
    }

    /// A monitor that decodes samples from `source` instead of the kernel: for tests of code that
    /// consumes events, without privileges (see the `NetEventsTesting` library). Filters are not
    /// applied (the kernel applies them) and there are no kernel maps to scan.
    /// - Parameters:
    ///   - source: where the samples come from (`MockSampleSource`).
    ///   - configuration: the options; its filter is not applied.
    ///   - clock: maps the samples' monotonic timestamps to wall-clock time in every start; nil
    ///     takes the offset anew at each start, as a monitor of the kernel does.
    /// - Throws: `BPFError.invalidArgument` naming the first bad option.
    public convenience init(source: any SampleSource, configuration: Configuration = Configuration(), clock: WallClock? = nil)
        throws(BPFError)
    {
        try self.init(source: source, configuration: configuration, makeClock: { clock ?? WallClock() })
    }

    /// A monitor over `source` (nil: the kernel) whose every start takes its clock from `makeClock`.
    init(source: (any SampleSource)?, configuration: Configuration, makeClock: @escaping @Sendable () -> WallClock)
        throws(BPFError)
    {
        try configuration.validate()
        self.configuration = configuration
        self.injectedSource = source
        self.makeClock = makeClock
    }

    /// Starts tracing; `handler` is called on the monitor's delivery thread, in order, once per event.
    ///
    /// A monitor that was stopped starts again (compiled and attached anew, the wall-clock offset
    /// of event times taken anew; ``statistics`` count from zero). A ``stop()`` made while this
    /// start is compiling or attaching returns at once; this start then detaches what it attached
    /// and returns without throwing, the monitor stopped (``isRunning`` is false), nothing
    /// delivered after the stop returned and nothing counted.
    ///
    /// One event at a time holds across starts, too: while the delivery thread of an earlier run
    /// still runs (its callback stopped the monitor, which returns at once, and the thread then
    /// delivers that run's last events; or a stop gave up on a callback that has not returned,
    /// ``MonitorConfiguration/stopGracePeriod``), a start is refused rather than run a second
    /// callback beside it. Once that thread has ended, the monitor starts again.
    /// - Throws: `BPFError`: `.alreadyStarted` while the monitor is starting or running (stop it
    ///   first), while a start overtaken by a stop is still finishing (try again when that start
    ///   returns), or while the previous run's delivery thread still runs (from its own callback:
    ///   start from another thread; else try again once it has ended);
    ///   `.notPrivileged`, `.notSupported`, `.compileFailed`, `.loadFailed`, `.attachFailed`...
    ///   when the kernel, the privileges or the environment do not allow it; nothing stays attached then.
    public func start(_ handler: @escaping @Sendable (Event) -> Void) throws(BPFError) {
        try start(EventDelivery(capacity: configuration.deliveryCapacity, consumer: .callback(handler)))
    }

    /// Starts tracing; `handler` is called on the monitor's delivery thread, in order, with the
    /// events that arrived together (one drain of the kernel buffer, or a few while the handler
    /// was busy): for consumers whose work per call costs more than per event, such as one write
    /// of many output lines.
    /// - Throws: the errors of ``start(_:)``.
    public func startBatched(_ handler: @escaping @Sendable ([Event]) -> Void) throws(BPFError) {
        try start(EventDelivery(capacity: configuration.deliveryCapacity, consumer: .batchCallback(handler)))
    }

    /// Starts tracing and returns the events as an asynchronous sequence, which ends after
    /// ``stop()``. The sequence keeps the monitor alive; releasing it (and its iterators), or
    /// cancelling the iterating task, stops the monitor.
    /// - Throws: the errors of ``start(_:)``.
    public func events() throws(BPFError) -> EventSequence<Event> {
        let (sequence, feed) = EventSequence<Event>.make(capacity: configuration.deliveryCapacity)
        let run = try start(EventDelivery(capacity: configuration.deliveryCapacity, consumer: .sequence(feed)))
        // Only once started: a sequence that failed to start must not stop a monitor that runs;
        // and only its own run: a sequence ending late must not stop a later start.
        feed.onTermination { [weak self] in self?.stop(run: run) }
        // The sequence keeps the monitor alive: `for await e in try TCPMonitor().events()` works.
        return sequence.keepingAlive(self)
    }

    /// Detaches, delivers every event still buffered (and the kind's last reports), and ends
    /// delivery: the callback has run for every event when this returns, also for a second
    /// caller. Safe to call twice, and from the callback itself (which returns at once).
    ///
    /// Bounded: a callback that has not taken what is buffered within
    /// ``MonitorConfiguration/stopGracePeriod`` (blocked for good, say) is given up on: nothing
    /// more is delivered, every event it did not return from counts in
    /// ``MonitorStatistics/droppedEvents``, and this returns; the callback's thread is left to
    /// return whenever it can, and until it has, ``start(_:)`` refuses to run the monitor again
    /// (`.alreadyStarted`, naming the cause). A stop while a start is compiling or attaching does
    /// not wait for it: it returns at once, and that start ends with the monitor stopped. A stop
    /// before any start does nothing (the monitor can still be started).
    ///
    /// A monitor also stops when it is released: keep a reference while it should trace (the
    /// sequence of ``events()`` keeps its monitor alive by itself).
    public func stop() { stop(run: nil) }

    /// Stops the run numbered `number` (any run: nil), if it is the latest.
    private func stop(run number: UInt64?) {
        // Stopped during its start: end delivery now (the start stops the rest). Else the first
        // stop stops the session, and a later one waits for it (bounded, too).
        let (delivery, session) = lifecycle.withLock { lifecycle -> (EventDelivery<Event>?, TracingSession<Kind>?) in
            if let number, number != lifecycle.run { return (nil, nil) }
            switch lifecycle.phase {
            case .starting(let delivery, _):
                lifecycle.phase = .starting(delivery, stopRequested: true)
                return (delivery, nil)
            case .running(let run):
                lifecycle.phase = .stopped(run)
                return (nil, run.session)
            case .stopped(let run):
                return (nil, run?.session)
            }
        }
        // Outside the lock: ending a sequence runs its termination handler, which stops again.
        delivery?.finish(within: configuration.stopGracePeriod)
        session?.stop()
    }

    deinit { stop() }

    /// What was attached and why, once started (nil before, while a start is under way, and for a
    /// monitor over an injected source). After a stop: what the latest start attached.
    public var report: Report? { currentRun?.report }

    /// Whether the monitor traces: started and not stopped since (false while a start is still
    /// compiling, and after a start that a stop overtook).
    public var isRunning: Bool {
        lifecycle.withLock { lifecycle in
            if case .running = lifecycle.phase { true } else { false }
        }
    }

    /// Counts of what was lost, dropped, malformed or filtered so far, and the kind's counters:
    /// those of the latest start (all zero before it, and while a start is under way).
    public var statistics: Statistics {
        guard let running = currentRun, let session = running.session else { return Statistics() }
        var statistics = Statistics(kind: session.kind.counters(running.counters))
        // The program counts the samples its buffer refused; a perf reader reports its own losses.
        statistics.lostSamples = session.source.lostSamples + running.counters[0]
        statistics.droppedEvents = session.delivery.dropped
        statistics.malformedSamples = session.malformedSamples
        statistics.filteredEvents = running.counters[Kind.filteredCounter] + session.kind.filteredInUserSpace
        statistics.missedProgramRuns = session.missedProgramRuns
        statistics.unseenEvents = session.unseenEvents
        return statistics
    }

    /// The most recent sample that could not be decoded, and why.
    public var lastDecodingError: BPFError? { currentRun?.session?.lastDecodingError }

    private var currentRun: Run? {
        lifecycle.withLock { lifecycle in
            switch lifecycle.phase {
            case .running(let run), .stopped(let run?): return run
            default: return nil
            }
        }
    }

    /// Whether a stop came while the current start compiles and attaches.
    private var stopRequested: Bool {
        lifecycle.withLock { lifecycle in
            if case .starting(_, stopRequested: true) = lifecycle.phase { true } else { false }
        }
    }

    /// Starts a run delivering to `delivery`; returns its number.
    @discardableResult
    private func start(_ delivery: EventDelivery<Event>) throws(BPFError) -> UInt64 {
        // The number of the run, or why the monitor cannot start now (each reads "this monitor
        // (...) is already started: close it first, or make a new one").
        let claimed = lifecycle.withLock { lifecycle -> Result<UInt64, BPFError> in
            switch lifecycle.phase {
            case .starting(_, stopRequested: true):
                return .failure(.alreadyStarted("this monitor (a start is still finishing after stop(); try again when it returns)"))
            case .starting, .running:
                return .failure(.alreadyStarted("this monitor (running until stop())"))
            case .stopped:
                if lifecycle.delivery?.isDeliveryThread ?? false {
                    // That thread still delivers the stopped run's queue once the callback
                    // returns: the callback would run on two threads at once.
                    return .failure(.alreadyStarted(
                        "this monitor (start() was called from the stopped run's callback, which still delivers that run's last events; start from another thread)"))
                }
                if lifecycle.delivery?.abandonedCallbackIsRunning ?? false {
                    return .failure(.alreadyStarted(
                        "this monitor (the previous run's callback has not returned since stop gave up on it; start again once it returns)"))
                }
                if lifecycle.delivery?.threadIsRunning ?? false {
                    // Stopped from its callback: the stop returned at once, and the thread goes on.
                    return .failure(.alreadyStarted(
                        "this monitor (the stopped run's callback thread still delivers that run's last events; start again once it has)"))
                }
                lifecycle.run += 1
                lifecycle.phase = .starting(delivery, stopRequested: false)
                lifecycle.delivery = delivery
                return .success(lifecycle.run)
            }
        }
        let number: UInt64
        switch claimed {
        case .success(let claimedNumber):
            number = claimedNumber
        case .failure(let refusal):
            delivery.finish()
            throw refusal
        }
        // Not under the lock: the compile takes about a second, and stop and statistics go on meanwhile.
        let run: Run
        do throws(BPFError) {
            run = try makeRun(delivery)
        } catch {
            delivery.finish(within: configuration.stopGracePeriod)
            lifecycle.withLock { $0.phase = .stopped(nil) }
            throw error
        }
        // Checked again where the session is published: a stop may have come after makeRun's
        // last check, its session beginning on a delivery the stop had already ended. Such a
        // run never started: it ends stopped, and nothing of it (what its session pushed into
        // the ended delivery, say) counts in the statistics.
        let stopRequested = lifecycle.withLock { lifecycle -> Bool in
            if case .starting(_, stopRequested: true) = lifecycle.phase { return true }
            lifecycle.phase = .running(run)
            return false
        }
        if stopRequested {
            // Detach it first: until then a new start would find the source still taken.
            run.session?.stop()
            lifecycle.withLock { $0.phase = .stopped(Run(session: nil, report: run.report, counters: run.counters)) }
        }
        return number
    }

    /// What keeps the kernel's filter current while the monitor runs: following filtered cgroups.
    private func upkeep(of filter: ResolvedFilter, in module: BPFModule) -> (@Sendable () -> Void)? {
        guard filter.followsCgroups else { return nil }
        return { filter.refresh(in: module) }
    }

    /// Names events (``MonitorConfiguration/resolvesNames``) and marks those read at estimated offsets.
    private func makeAttributor(offsetsEstimated: Bool = false) -> EventAttributor? {
        guard configuration.resolvesNames || offsetsEstimated else { return nil }
        return configuration.resolvesNames
            ? EventAttributor(marksOffsetsEstimated: offsetsEstimated)
            : EventAttributor(cgroups: nil, resolvesNames: false, marksOffsetsEstimated: offsetsEstimated)
    }

    /// Compiles and attaches (or takes the injected source) and starts the session, unless a stop
    /// came meanwhile: then it detaches again and begins no session (no event is made).
    private func makeRun(_ delivery: EventDelivery<Event>) throws(BPFError) -> Run {
        let grace = configuration.stopGracePeriod
        // The wall-clock offset of this start's event times.
        let clock = makeClock()
        if let injectedSource {
            let kind = try Kind(configuration: configuration, module: nil, clock: clock)
            if stopRequested { return Run(session: nil, report: nil, counters: KernelCounters(map: nil)) }
            let session = try TracingSession(
                module: nil, links: [], source: injectedSource, delivery: delivery, kind: kind, attributor: makeAttributor(),
                stopGrace: grace)
            return Run(session: session, report: nil, counters: KernelCounters(map: nil))
        }
        let loaded = try ProgramLoader.load(configuration, as: Kind.self)
        do throws(BPFError) {
            let counters = KernelCounters(map: try loaded.module.table("stats").typed())
            let kind = try Kind(configuration: configuration, module: loaded.module, clock: clock)
            if stopRequested {
                detach(loaded)
                return Run(session: nil, report: loaded.report, counters: counters)
            }
            let session = try TracingSession(
                module: loaded.module, links: loaded.links, source: loaded.source, delivery: delivery, kind: kind,
                attributor: makeAttributor(offsetsEstimated: loaded.report.offsetsUntrusted), stopGrace: grace,
                upkeep: upkeep(of: loaded.filter, in: loaded.module), unseen: loaded.unseen)
            return Run(session: session, report: loaded.report, counters: counters)
        } catch {
            detach(loaded)
            throw error
        }
    }

    /// Undoes a load no session took over: links in the reverse of their attach order, as a stop does.
    private func detach(_ loaded: ProgramLoader.Loaded<Kind>) {
        loaded.links.reversed().forEach { $0.close() }
        loaded.source.close()
    }
}
