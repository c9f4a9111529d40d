import BCCRuntime
import Glibc
import Synchronization

/// Counts UDP traffic per (socket, process) in the kernel and reports it as ``UDPTrafficEvent``s:
/// every interval while a pair moves data, when its socket closes, and at stop. The events of a pair
/// add up exactly to its traffic.
///
/// ```swift
/// let monitor = try UDPMonitor(configuration: .init(port: 53, interval: 5))
/// for await event in try monitor.events() { print(event.command, event.sentPackets) }
/// ```
///
/// Requires root (or `CAP_BPF` + `CAP_PERFMON`); ``report`` says which hooks were chosen.
public final class UDPMonitor: Sendable {
    public let configuration: Configuration
    private let injectedSource: (any SampleSource)?
    private let clock: WallClock
    private let ledger: FlowLedger
    private let running = Mutex<Running?>(nil)
    private let idleEvictions = Atomic<UInt64>(0)

    private struct Running: Sendable {
        var session: TracingSession<UDPTrafficEvent>
        var report: AttachReport?
        var kernel: KernelState?
        var timer: PeriodicTask?
    }

    /// The kernel maps, for scans and statistics.
    struct KernelState: Sendable {
        var flows: BPFMap<RawFlowKey, RawFlow>
        var stats: BPFMap<UInt32, UInt64>
    }

    /// `struct udp_key_t`.
    struct RawFlowKey: BitwiseCopyable, Sendable {
        var socket: UInt64
        var pid: UInt32
        var pad: UInt32 = 0
    }

    /// `struct udp_flow_t`, as raw bytes.
    struct RawFlow: BitwiseCopyable, Sendable {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
    }

    /// A monitor of the running kernel. Nothing is compiled or attached until `start`.
    public init(configuration: Configuration = Configuration()) throws(BPFError) {
        try configuration.validate()
        self.configuration = configuration
        self.injectedSource = nil
        self.clock = WallClock()
        self.ledger = FlowLedger(clock: clock)
    }

    /// A monitor that decodes close samples from `source` instead of the kernel, for tests without
    /// privileges. There are no kernel counters to scan, so only `.close` events are produced.
    public init(source: any SampleSource, configuration: Configuration = Configuration(), clock: WallClock = WallClock())
        throws(BPFError)
    {
        try configuration.validate()
        self.configuration = configuration
        self.injectedSource = source
        self.clock = clock
        self.ledger = FlowLedger(clock: clock)
    }

    /// Starts tracing; `handler` is called on a delivery thread, in order, for each event.
    public func start(_ handler: @escaping @Sendable (UDPTrafficEvent) -> Void) throws {
        try start(EventDelivery(capacity: configuration.deliveryCapacity, consumer: .callback(handler)))
    }

    /// Starts tracing and returns the events as an asynchronous sequence, which ends after
    /// ``stop()``. Ending the iteration early stops the monitor.
    public func events() throws -> EventSequence<UDPTrafficEvent> {
        let (sequence, feed) = EventSequence<UDPTrafficEvent>.make(capacity: configuration.deliveryCapacity)
        try start(EventDelivery(capacity: configuration.deliveryCapacity, consumer: .sequence(feed)))
        // Only once started: a sequence that failed to start must not stop a monitor that runs.
        feed.onTermination { [weak self] in self?.stop() }
        return sequence
    }

    /// Detaches, reports every pair's remaining counts (as `.stop`), and ends delivery. Safe to call twice.
    public func stop() {
        guard let running = running.withLock({ $0 }) else { return }
        running.timer?.stop()
        running.session.stop()
    }

    deinit { stop() }

    public var report: AttachReport? { running.withLock { $0?.report } }

    public var statistics: Statistics {
        guard let running = running.withLock({ $0 }) else { return Statistics() }
        var statistics = Statistics()
        statistics.lostSamples = running.session.source.lostSamples
        statistics.droppedEvents = running.session.delivery.dropped
        statistics.malformedSamples = running.session.malformedSamples
        statistics.idleEvictions = idleEvictions.load(ordering: .relaxed)
        if let stats = running.kernel?.stats {
            func slot(_ index: UInt32) -> UInt64 { (try? stats.lookupPerCPU(index)?.reduce(0, +)) ?? 0 }
            statistics.lostSamples += slot(0)
            statistics.flows = slot(1)
            statistics.unattributedPackets = slot(2) + slot(4)
            statistics.unattributedBytes = slot(3) + slot(5)
            statistics.closes = slot(6)
            statistics.sharedSocketOverflows = slot(7)
        }
        return statistics
    }

    // MARK: - Running

    private func start(_ delivery: EventDelivery<UDPTrafficEvent>) throws {
        try running.withLock { running in
            guard running == nil else {
                delivery.finish()
                throw BPFError.invalidArgument("the monitor was already started; make a new one")
            }
            do {
                if let injectedSource {
                    let session = try TracingSession(
                        module: nil, links: [], source: injectedSource, delivery: delivery,
                        decode: closeDecoder(kernel: nil, delivery: delivery))
                    running = Running(session: session)
                    return
                }
                let attached = try UDPProgram.attach(configuration)
                let kernel = KernelState(
                    flows: try attached.module.table("flows").typed(), stats: try attached.module.table("stats").typed())
                let session = try TracingSession(
                    module: attached.module, links: attached.links, source: attached.source, delivery: delivery,
                    decode: closeDecoder(kernel: kernel, delivery: delivery),
                    finalFlush: { [self] delivery in self.scan(kernel, reason: .stop, into: delivery) })
                let timer = PeriodicTask(interval: configuration.interval, name: "udp scan") { [weak self] in
                    self?.scan(kernel, reason: .interval, into: delivery)
                }
                running = Running(session: session, report: attached.report, kernel: kernel, timer: timer)
            } catch {
                delivery.finish()
                throw error
            }
        }
    }

    /// Turns a close sample into the pair's last event.
    private func closeDecoder(kernel: KernelState?, delivery: EventDelivery<UDPTrafficEvent>) -> TracingSession<UDPTrafficEvent>.Decoder {
        let ledger = self.ledger
        let clock = self.clock
        return { [weak self] raw throws(BPFError) in
            let close = try UDPFlowDecoder.close(raw)
            let time = clock.wallClock(fromMonotonic: close.closeNanoseconds)
            guard let flow = close.flow else {
                // More processes used the socket than the kernel tracks: flush its other pairs.
                if let kernel { self?.flushSocket(close.socket, kernel: kernel, time: time, into: delivery) }
                return nil
            }
            return ledger.finish(flow, reason: .close, at: time)
        }
    }

    /// Reports what every pair moved since its last report; frees pairs idle too long.
    private func scan(_ kernel: KernelState, reason: UDPTrafficEvent.Reason, into delivery: EventDelivery<UDPTrafficEvent>) {
        guard let keys = try? kernel.flows.keys() else { return }
        let time = UInt64(WallClock.now(CLOCK_REALTIME))
        let idleLimit = reason == .interval ? configuration.idleReportsBeforeEviction : nil
        var events: [UDPTrafficEvent] = []
        for key in Set(keys.map { Key($0) }) {
            let event = ledger.scan(
                reason: reason, at: time, idleLimit: idleLimit,
                fetch: { Self.decode(key.raw, try? kernel.flows.lookup(key.raw)) },
                evict: {
                    let flow = Self.decode(key.raw, try? kernel.flows.lookupAndDelete(key.raw))
                    if flow != nil { self.idleEvictions.add(1, ordering: .relaxed) }
                    return flow
                })
            if let event { events.append(event) }
        }
        ledger.endScan()
        delivery.push(contentsOf: &events)
    }

    /// Final reports of every pair of one socket.
    private func flushSocket(_ socket: UInt64, kernel: KernelState, time: UInt64, into delivery: EventDelivery<UDPTrafficEvent>) {
        guard let keys = try? kernel.flows.keys() else { return }
        for key in keys where key.socket == socket {
            if let flow = Self.decode(key, try? kernel.flows.lookupAndDelete(key)),
                let event = ledger.finish(flow, reason: .close, at: time)
            {
                delivery.push(event)
            }
        }
    }

    private static func decode(_ key: RawFlowKey, _ raw: RawFlow?) -> UDPFlow? {
        guard var raw else { return nil }
        return withUnsafeBytes(of: &raw) { try? UDPFlowDecoder.flow(socket: key.socket, pid: key.pid, $0) }
    }

    /// A hashable wrapper of a raw key (the walk of a live map can return a key twice).
    private struct Key: Hashable {
        var socket: UInt64
        var pid: UInt32
        init(_ raw: RawFlowKey) {
            socket = raw.socket
            pid = raw.pid
        }
        var raw: RawFlowKey { RawFlowKey(socket: socket, pid: pid) }
    }
}
