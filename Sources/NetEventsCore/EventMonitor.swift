import Dispatch
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
/// ```
///
/// At start the monitor checks privileges and tracefs, lets the kind pick the best hooks the
/// kernel offers (by probing; ``report`` says what was chosen and why), takes struct offsets from
/// BTF, compiles the kind's program with BCC and attaches it. Starting needs root (or `CAP_BPF` +
/// `CAP_PERFMON`) and takes about half a second (BCC's compile); statistics and `stop()` do not
/// wait for it.
///
/// Threading: a callback given to ``start(_:)`` runs on the monitor's own delivery thread, one
/// event at a time, in order. It must not block for long: events that find
/// ``MonitorConfiguration/deliveryCapacity`` events waiting are dropped and counted. The monitor
/// is `Sendable`: start, stop and the statistics may be called from any thread or task.
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
    private let clock: WallClock
    private let state = Mutex<State>(.idle)
    /// Entered while a start compiles and attaches, so a stop meanwhile can wait for it.
    private let starting = DispatchGroup()

    private enum State: Sendable {
        case idle
        /// Compiling and attaching, outside the lock; a stop meanwhile is remembered.
        case starting(stopRequested: Bool)
        case running(Running)
        case stopped(Running?)
    }

    private struct Running: Sendable {
        var session: TracingSession<Kind>
        var report: Report?
        var counters: KernelCounters
    }

    /// A monitor of the running kernel. Nothing is compiled or attached until it starts.
    /// - Throws: `BPFError.invalidArgument` naming the first bad option.
    public init(configuration: Configuration = Configuration()) throws(BPFError) {
        try configuration.validate()
        self.configuration = configuration
        self.injectedSource = nil
        self.clock = WallClock()
    }

    /// A monitor that decodes samples from `source` instead of the kernel: for tests of code that
    /// consumes events, without privileges (see the `NetEventsTesting` library). Filters are not
    /// applied (the kernel applies them) and there are no kernel maps to scan.
    /// - Throws: `BPFError.invalidArgument` naming the first bad option.
    public init(source: any SampleSource, configuration: Configuration = Configuration(), clock: WallClock = WallClock())
        throws(BPFError)
    {
        try configuration.validate()
        self.configuration = configuration
        self.injectedSource = source
        self.clock = clock
    }

    /// Starts tracing; `handler` is called on the monitor's delivery thread, in order, once per event.
    /// - Throws: `BPFError`: `.alreadyStarted` for a second start (make a new monitor),
    ///   `.notPrivileged`, `.notSupported`, `.compileFailed`, `.loadFailed`, `.attachFailed`... when the
    ///   kernel, the privileges or the environment do not allow it; nothing stays attached then.
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
        try start(EventDelivery(capacity: configuration.deliveryCapacity, consumer: .sequence(feed)))
        // Only once started: a sequence that failed to start must not stop a monitor that runs.
        feed.onTermination { [weak self] in self?.stop() }
        // The sequence keeps the monitor alive: `for await e in try TCPMonitor().events()` works.
        return sequence.keepingAlive(self)
    }

    /// Detaches, delivers every event still buffered (and the kind's last reports), and ends
    /// delivery: the callback has run for every event when this returns, also for a second caller
    /// and for a stop made while the monitor was still starting (it waits for the start). Safe to
    /// call twice, and from the callback itself (which returns at once).
    ///
    /// A monitor also stops when it is released: keep a reference while it should trace (the
    /// sequence of ``events()`` keeps its monitor alive by itself).
    public func stop() {
        let (running, wasStarting) = state.withLock { state -> (Running?, Bool) in
            switch state {
            case .idle:
                state = .stopped(nil)
                return (nil, false)
            case .starting:
                state = .starting(stopRequested: true)
                return (nil, true)
            case .running(let running):
                state = .stopped(running)
                return (running, false)
            case .stopped(let running):
                return (running, false)  // its stop waits for the first one to finish
            }
        }
        if wasStarting {
            // The start finishes, sees the request and stops; wait for that, then for its drain.
            starting.wait()
            currentRun?.session.stop()
            return
        }
        running?.session.stop()
    }

    deinit { stop() }

    /// What was attached and why, once started (nil before, and for a monitor over an injected source).
    public var report: Report? {
        state.withLock { state in
            switch state {
            case .running(let running), .stopped(let running?): return running.report
            default: return nil
            }
        }
    }

    /// Counts of what was lost, dropped, malformed or filtered so far, and the kind's counters.
    public var statistics: Statistics {
        guard let running = currentRun else { return Statistics() }
        let session = running.session
        var statistics = Statistics(kind: session.kind.counters(running.counters))
        // The program counts the samples its buffer refused; a perf reader reports its own losses.
        statistics.lostSamples = session.source.lostSamples + running.counters[0]
        statistics.droppedEvents = session.delivery.dropped
        statistics.malformedSamples = session.malformedSamples
        statistics.filteredEvents = running.counters[Kind.filteredCounter]
        return statistics
    }

    /// The most recent sample that could not be decoded, and why.
    public var lastDecodingError: BPFError? { currentRun?.session.lastDecodingError }

    private var currentRun: Running? {
        state.withLock { state in
            switch state {
            case .running(let running), .stopped(let running?): return running
            default: return nil
            }
        }
    }

    private func start(_ delivery: EventDelivery<Event>) throws(BPFError) {
        let claimed = state.withLock { state -> Bool in
            guard case .idle = state else { return false }
            state = .starting(stopRequested: false)
            starting.enter()
            return true
        }
        guard claimed else {
            delivery.finish()
            throw .alreadyStarted("this monitor was already started (or stopped); make a new one")
        }
        defer { starting.leave() }
        let running: Running
        do throws(BPFError) {
            running = try makeRun(delivery)
        } catch {
            delivery.finish()
            // A stop asked for during the start stays asked for: the monitor does not start later.
            state.withLock { state in state = if case .starting(true) = state { .stopped(nil) } else { .idle } }
            throw error
        }
        let stopRequested = state.withLock { state -> Bool in
            let requested = if case .starting(true) = state { true } else { false }
            state = requested ? .stopped(running) : .running(running)
            return requested
        }
        if stopRequested { running.session.stop() }
    }

    /// What keeps the kernel's filter current while the monitor runs: following filtered cgroups.
    private func upkeep(of filter: ResolvedFilter, in module: BPFModule) -> (@Sendable () -> Void)? {
        guard filter.followsCgroups else { return nil }
        return { filter.refresh(in: module) }
    }

    private func makeAttributor() -> EventAttributor? {
        configuration.resolvesNames ? EventAttributor() : nil
    }

    /// Compiles and attaches (or takes the injected source) and starts the session.
    private func makeRun(_ delivery: EventDelivery<Event>) throws(BPFError) -> Running {
        if let injectedSource {
            let kind = try Kind(configuration: configuration, module: nil, clock: clock)
            let session = try TracingSession(
                module: nil, links: [], source: injectedSource, delivery: delivery, kind: kind, attributor: makeAttributor())
            return Running(session: session, report: nil, counters: KernelCounters(map: nil))
        }
        let loaded = try ProgramLoader.load(configuration, as: Kind.self)
        do throws(BPFError) {
            let counters = KernelCounters(map: try loaded.module.table("stats").typed())
            let kind = try Kind(configuration: configuration, module: loaded.module, clock: clock)
            let session = try TracingSession(
                module: loaded.module, links: loaded.links, source: loaded.source, delivery: delivery, kind: kind,
                attributor: makeAttributor(),
                upkeep: upkeep(of: loaded.filter, in: loaded.module))
            return Running(session: session, report: loaded.report, counters: counters)
        } catch {
            loaded.links.forEach { $0.close() }
            loaded.source.close()
            throw error
        }
    }
}
