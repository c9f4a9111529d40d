public import NetEventsCore
public import Prometheus
public import TCPEvent
public import UDPEvent
import Synchronization

/// The monitors' events, counted into a Prometheus registry: connections, bytes and datagrams per
/// process name and container, connection durations and round-trip times, and the monitors' own
/// losses.
///
/// ```swift
/// import NetEventsMetrics
///
/// let metrics = NetworkMetrics()
/// let tcp = try TCPMonitor(configuration: .init(options: .init(interval: 10)))
/// try tcp.startBatched { metrics.record($0) }
/// // on each scrape:
/// metrics.update(tcp)
/// let text = metrics.registry.emitToString()
/// ```
///
/// The series, each labelled `comm` and `container` (the first 12 characters of the container id;
/// empty outside containers), with at most ``LabelLimits`` values each. An event whose owner is
/// unknown (`EventProcess.unknown`) counts under `comm` ``unknownOwnerLabel``:
/// - `netevents_tcp_connections_total{event="connect|accept|fail|close"}`
/// - `netevents_tcp_bytes_total{direction="sent|received"}`: the kernel's counters, as `tcp-events`
///   reports them (SYN and FIN included), moving at every `interval` record of a live connection
///   and at its close by what its records had not yet counted, so a connection adds exactly its
///   close totals.
/// - `netevents_udp_bytes_total{direction}` (payload) and `netevents_udp_packets_total{direction}`
///
/// Unlabelled: the histograms `netevents_tcp_connection_duration_seconds` and
/// `netevents_tcp_srtt_seconds` (one observation per closed end), and, by `monitor`, the counters
/// of what the monitors missed (``update(_:)-(TCPMonitor)``).
///
/// A TCP connection open before the monitor started is listed in its first interval records (the
/// snapshot, owner `fd`): with ``countsTrafficAfter(_:)`` called after the start, what it had
/// moved by then is its baseline, not counted, so a restart does not add every connection's past. Live counts come from `sock_diag`, which lists the
/// connections of the monitor's network namespace: the connections of a container with a network
/// namespace of its own move the counters at their close only.
public final class NetworkMetrics: Sendable {
    /// The registry the metrics live in; emit it for a scrape.
    public let registry: PrometheusCollectorRegistry
    /// How many `comm` and `container` values get a series of their own.
    public let limits: LabelLimits

    /// The `comm` of events whose owner is unknown: `(no known owner)`, 16 characters, which no
    /// process can be named (a `comm` has at most 15), so no process can count under it.
    public static let unknownOwnerLabel = "(no known owner)"

    private let state: Locked<State>
    private let duration: ValueHistogram
    private let smoothedRTT: ValueHistogram

    fileprivate struct SeriesKey: Hashable {
        var command: String
        var container: String
    }

    fileprivate struct State {
        var commands: LabelBudget
        var containers: LabelBudget
        /// By the event's own labels while they have series of their own, and by `other` folds.
        var series: [SeriesKey: TrafficSeries] = [:]
        /// By socket id: the bytes the interval records of a live TCP connection end counted.
        var countedTCP: [UInt64: (sent: UInt64, received: UInt64)] = [:]
        /// By monitor and metric name: the highest value of the monitor's counter seen, so that
        /// the exported counter grows by the difference, also when two scrapes race or a read
        /// comes out low.
        var monitorCounts: [String: UInt64] = [:]
        /// Records of open connections listed at or before this time (the TCP monitor's start
        /// snapshot) are baselines; see ``NetworkMetrics/countsTrafficAfter(_:)``.
        var snapshotEnd: UInt64 = 0
    }

    /// Metrics in `registry`, with at most `limits` label values.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), limits: LabelLimits = LabelLimits()) {
        self.registry = registry
        self.limits = limits
        state = Locked(State(commands: LabelBudget(limit: limits.commands), containers: LabelBudget(limit: limits.containers)))
        duration = registry.makeValueHistogram(
            descriptor: MetricName.tcpDuration,
            buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400])
        smoothedRTT = registry.makeValueHistogram(
            descriptor: MetricName.tcpSmoothedRTT,
            buckets: [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])
    }

    /// Counts a batch of TCP events (as `TCPMonitor.startBatched` delivers them).
    public func record(_ events: [TCPConnectionEvent]) {
        state.withLock { state in
            for event in events {
                let series = state.seriesOf(event, registry: registry)
                switch event.kind {
                case .connect, .accept:
                    series.countTCP(event.kind)
                case .fail:
                    series.countTCP(.fail)
                    if let id = event.socketID { state.countedTCP[id] = nil }
                case .interval:
                    if let id = event.socketID, event.ownerSource == .openFile, event.timeNanoseconds <= state.snapshotEnd,
                        state.countedTCP[id] == nil
                    {
                        // A connection open before the start (the snapshot): what it moved until
                        // now is its baseline, not traffic of this agent's time, or every restart
                        // would add each connection's whole past to the counters. (Owner `fd`
                        // alone is not enough: a new connection the poll lists before its accept
                        // arrives has it too, and its bytes are this agent's time.)
                        state.countedTCP[id] = (event.sentBytes, event.receivedBytes)
                        continue
                    }
                    series.addTCP(sent: event.sentBytes, received: event.receivedBytes)
                    if let id = event.socketID {
                        let counted = state.countedTCP[id] ?? (0, 0)
                        state.countedTCP[id] = (counted.sent &+ event.sentBytes, counted.received &+ event.receivedBytes)
                    }
                case .close:
                    series.countTCP(.close)
                    // A close carries the connection's totals; its interval records counted part of them.
                    let counted = event.socketID.flatMap { state.countedTCP.removeValue(forKey: $0) } ?? (0, 0)
                    series.addTCP(
                        sent: event.sentBytes &- min(counted.sent, event.sentBytes),
                        received: event.receivedBytes &- min(counted.received, event.receivedBytes))
                    if let nanoseconds = event.durationNanoseconds {
                        duration.record(Double(nanoseconds) / 1e9)
                    }
                    if event.health.smoothedRTTMicroseconds > 0 {
                        smoothedRTT.record(Double(event.health.smoothedRTTMicroseconds) / 1e6)
                    }
                }
            }
        }
    }

    /// Takes the interval records of connections found open by the TCP monitor's start (its
    /// snapshot, owner `fd`, made before `nanoseconds`, wall clock) as baselines: what those
    /// connections had moved before is not counted, so that a restart of the agent does not add
    /// every connection's past to the counters. Call it once the TCP monitor has started. Until
    /// then (and without it), every record counts.
    public func countsTrafficAfter(_ nanoseconds: UInt64) {
        state.withLock { $0.snapshotEnd = nanoseconds }
    }

    /// Counts a batch of UDP events (as `UDPMonitor.startBatched` delivers them): each carries the
    /// counts since its pair's previous event.
    public func record(_ events: [UDPTrafficEvent]) {
        state.withLock { state in
            for event in events {
                state.seriesOf(event, registry: registry).addUDP(
                    sent: event.sentBytes, received: event.receivedBytes,
                    sentPackets: event.sentPackets, receivedPackets: event.receivedPackets)
            }
        }
    }

    /// Brings the TCP monitor's counters of what it missed (`monitor="tcp"`) up to date: lost,
    /// dropped and malformed samples, owners evicted under map pressure, failed polls of open
    /// connections. Call it before each scrape.
    public func update(_ monitor: TCPMonitor) {
        let statistics = monitor.statistics
        update("tcp", statistics, [(MetricName.evicted, statistics.evictedSockets), (MetricName.failedPolls, statistics.failedPolls)])
    }

    /// Brings the UDP monitor's counters of what it missed (`monitor="udp"`) up to date: lost,
    /// dropped and malformed samples, and the traffic counted while its pair map was full, which
    /// is in no `comm` series. Call it before each scrape.
    public func update(_ monitor: UDPMonitor) {
        let statistics = monitor.statistics
        update(
            "udp", statistics,
            [
                (MetricName.unattributedPackets, statistics.unattributedPackets),
                (MetricName.unattributedBytes, statistics.unattributedBytes),
            ])
    }

    /// Says whether `monitor` is attached (`netevents_monitor_up`) and, once it is, what it runs on
    /// (`netevents_build_info{version,monitor,hook,transport,offsets}`; `offsets` is `btf`,
    /// `headers`, or `estimated` for another kernel's header offsets accepted by the user: then
    /// that monitor's numbers may be wrong).
    public func setUp(
        _ monitor: String, attached: Bool, version: String, hook: String? = nil, transport: String? = nil, offsets: String = "btf"
    ) {
        registry.makeGauge(descriptor: MetricName.monitorUp, labels: [("monitor", monitor)])
            .set(to: attached ? 1 : 0)
        if let hook, let transport {
            registry.makeGauge(
                descriptor: MetricName.buildInfo,
                labels: [("version", version), ("monitor", monitor), ("hook", hook), ("transport", transport), ("offsets", offsets)]
            ).set(to: 1)
        }
    }

    private func update<Counters>(
        _ monitor: String, _ statistics: MonitorStatistics<Counters>, _ kindCounts: [(MetricNameDescriptor, UInt64)]
    ) {
        // Skipped runs only where the kernel counts them: no series beats a series of zeros that lies.
        let missed = statistics.missedProgramRuns.map { [(MetricName.missedProgramRuns, $0)] } ?? []
        let unseen = statistics.unseenEvents.map { [(MetricName.unseenEvents, $0)] } ?? []
        let counts =
            [
                (MetricName.lostEvents, statistics.lostSamples),
                (MetricName.droppedEvents, statistics.droppedEvents),
                (MetricName.malformedSamples, statistics.malformedSamples),
            ] + missed + unseen + kindCounts
        let keys = counts.map { monitor + " " + $0.0.name }
        let values = counts.map(\.1)
        let (increments, folded) = state.withLock { state in
            let increments = zip(keys, values).map { key, value -> UInt64 in
                let highest = state.monitorCounts[key] ?? 0
                state.monitorCounts[key] = max(highest, value)
                return value > highest ? value - highest : 0
            }
            return (increments, (state.commands.refused.count, state.containers.refused.count))
        }
        let labels = [("monitor", monitor)]
        for ((descriptor, _), increment) in zip(counts, increments) {
            // Made at the first update even when zero, so a dashboard sees the series from the start.
            registry.makeCounter(descriptor: descriptor, labels: labels).increment(by: Int64(clamping: increment))
        }
        for (label, count) in [("comm", folded.0), ("container", folded.1)] {
            registry.makeGauge(descriptor: MetricName.foldedLabelValues, labels: [("label", label)])
                .set(to: Double(count))
        }
    }
}

extension NetworkMetrics.State {
    /// The series of an event's process name and container, folded into `other` past the limits.
    fileprivate mutating func seriesOf(_ event: some NetworkEvent, registry: PrometheusCollectorRegistry) -> TrafficSeries {
        let container = event.cgroup?.container.map { String($0.id.prefix(12)) } ?? ""
        let command = event.process == .unknown ? NetworkMetrics.unknownOwnerLabel : event.process.command
        let key = NetworkMetrics.SeriesKey(command: command, container: container)
        if let known = series[key] { return known }
        let folded = NetworkMetrics.SeriesKey(
            // The unknown owner takes no process's slot, like `other`.
            command: command == NetworkMetrics.unknownOwnerLabel ? command : commands.label(key.command),
            container: container.isEmpty ? "" : containers.label(container))
        if let known = series[folded] { return known }
        let made = TrafficSeries(registry: registry, command: folded.command, container: folded.container)
        series[folded] = made
        return made
    }
}
