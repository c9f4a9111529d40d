import BCCRuntime
import Synchronization

/// Traces TCP connections as they close: one ``TCPConnectionEvent`` per socket that reaches
/// `TCP_CLOSE`, attributed to the process that connected or accepted it.
///
/// ```swift
/// let monitor = TCPMonitor(configuration: .init(port: 443))
/// try monitor.start { event in print(event.command, event.sentBytes) }
/// // ...
/// monitor.stop()   // detaches, delivers what is buffered
/// ```
///
/// At start the monitor picks the best hook the kernel offers (``Hook``), takes struct offsets
/// from BTF, compiles `bpf/tcp_events.c` with BCC and attaches it; ``report`` says what it chose.
/// Requires root (or `CAP_BPF` + `CAP_PERFMON`).
public final class TCPMonitor: Sendable {
    /// The options the monitor was made with.
    public let configuration: Configuration
    private let injectedSource: (any SampleSource)?
    private let clock: WallClock
    private let running = Mutex<Running?>(nil)

    private struct Running: Sendable {
        var session: TracingSession<TCPConnectionEvent>
        var report: AttachReport?
        var stats: BPFMap<UInt32, UInt64>?
        var owners: BPFMap<UInt64, OwnerRecord>?
    }

    /// A monitor of the running kernel. Nothing is compiled or attached until `start`.
    /// - Throws: `BPFError.invalidArgument` for a bad configuration.
    public init(configuration: Configuration = Configuration()) throws(BPFError) {
        try configuration.validate()
        self.configuration = configuration
        self.injectedSource = nil
        self.clock = WallClock()
    }

    /// A monitor that decodes samples from `source` instead of the kernel: for tests of code that
    /// consumes events, without privileges. Filters are not applied (the kernel applies them).
    public init(source: any SampleSource, configuration: Configuration = Configuration(), clock: WallClock = WallClock())
        throws(BPFError)
    {
        try configuration.validate()
        self.configuration = configuration
        self.injectedSource = source
        self.clock = clock
    }

    /// Starts tracing; `handler` is called on a delivery thread, in order, for each event.
    /// - Throws: `BPFError` when the kernel, the privileges or the environment do not allow it;
    ///   nothing stays attached then.
    public func start(_ handler: @escaping @Sendable (TCPConnectionEvent) -> Void) throws {
        try start(EventDelivery(capacity: configuration.deliveryCapacity, consumer: .callback(handler)))
    }

    /// Starts tracing and returns the events as an asynchronous sequence, which ends after
    /// ``stop()``. Ending the iteration early stops the monitor.
    public func events() throws -> EventSequence<TCPConnectionEvent> {
        let (sequence, feed) = EventSequence<TCPConnectionEvent>.make(capacity: configuration.deliveryCapacity)
        try start(EventDelivery(capacity: configuration.deliveryCapacity, consumer: .sequence(feed)))
        // Only once started: a sequence that failed to start must not stop a monitor that runs.
        feed.onTermination { [weak self] in self?.stop() }
        return sequence
    }

    /// Detaches, delivers every event still buffered, and ends delivery. Safe to call twice.
    public func stop() {
        running.withLock { $0 }?.session.stop()
    }

    deinit { stop() }

    /// What was attached, once started (nil for a monitor over an injected source).
    public var report: AttachReport? { running.withLock { $0?.report } }

    /// Counts of what was lost, dropped, filtered or evicted so far.
    public var statistics: Statistics {
        guard let running = running.withLock({ $0 }) else { return Statistics() }
        var statistics = Statistics()
        statistics.lostSamples = running.session.source.lostSamples
        statistics.droppedEvents = running.session.delivery.dropped
        statistics.malformedSamples = running.session.malformedSamples
        if let stats = running.stats {
            func slot(_ index: UInt32) -> UInt64 { (try? stats.lookupPerCPU(index)?.reduce(0, +)) ?? 0 }
            // The program counts failed outputs itself; the perf buffer reports its own losses.
            statistics.lostSamples += slot(0)
            statistics.trackedSockets = slot(1)
            let closedTracked = slot(2)
            statistics.untrackedCloses = slot(3)
            statistics.filteredEvents = slot(4)
            if let owners = running.owners, let live = try? owners.keys().count {
                let accounted = closedTracked + UInt64(live)
                statistics.evictedSockets = statistics.trackedSockets > accounted ? statistics.trackedSockets - accounted : 0
            }
        }
        return statistics
    }

    /// `struct owner_t` of `bpf/tcp_events.c` (48 bytes): only counted, never read.
    struct OwnerRecord: BitwiseCopyable { var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) }

    private func start(_ delivery: EventDelivery<TCPConnectionEvent>) throws {
        try running.withLock { running in
            guard running == nil else {
                delivery.finish()
                throw BPFError.invalidArgument("the monitor was already started; make a new one")
            }
            let clock = self.clock
            let decode: TracingSession<TCPConnectionEvent>.Decoder = { raw throws(BPFError) in
                try TCPEventDecoder.decode(raw, clock: clock)
            }
            if let injectedSource {
                let session = try TracingSession(module: nil, links: [], source: injectedSource, delivery: delivery, decode: decode)
                running = Running(session: session)
                return
            }
            do {
                let attached = try TCPProgram.attach(configuration)
                let session = try TracingSession(
                    module: attached.module, links: attached.links, source: attached.source, delivery: delivery, decode: decode)
                running = Running(
                    session: session, report: attached.report,
                    stats: try attached.module.table("stats").typed(), owners: try attached.module.table("owners").typed())
            } catch {
                delivery.finish()
                throw error
            }
        }
    }
}
