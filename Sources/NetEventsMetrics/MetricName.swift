public import Prometheus

/// The metrics ``NetworkMetrics`` exports: their names (`name`) and help texts. (Computed: the
/// descriptor type is not `Sendable`.)
public enum MetricName {
    /// `netevents_tcp_connections_total{event,comm,container}`
    public static var tcpConnections: MetricNameDescriptor { netevents(
        "tcp_connections", "total", "TCP connection events by kind: connect, accept, fail, close.") }
    /// `netevents_tcp_bytes_total{direction,comm,container}`
    public static var tcpBytes: MetricNameDescriptor { netevents(
        "tcp_bytes", "total",
        "TCP bytes by direction, the kernel's counters (bytes_acked sent, bytes_received received; SYN and FIN count one each).") }
    /// `netevents_udp_bytes_total{direction,comm,container}`
    public static var udpBytes: MetricNameDescriptor { netevents("udp_bytes", "total", "UDP payload bytes by direction.") }
    /// `netevents_udp_packets_total{direction,comm,container}`
    public static var udpPackets: MetricNameDescriptor { netevents("udp_packets", "total", "UDP datagrams by direction.") }
    /// `netevents_tcp_connection_duration_seconds` (histogram)
    public static var tcpDuration: MetricNameDescriptor { netevents(
        "tcp_connection_duration", "seconds", "Time from a TCP connection's open to its close, one observation per closed end.") }
    /// `netevents_tcp_srtt_seconds` (histogram)
    public static var tcpSmoothedRTT: MetricNameDescriptor { netevents(
        "tcp_srtt", "seconds", "Smoothed round-trip time of TCP connections at their close, one observation per closed end.") }
    /// `netevents_lost_events_total{monitor}`
    public static var lostEvents: MetricNameDescriptor { netevents(
        "lost_events", "total", "Samples the kernel could not hand over (its buffer was full): their events are missing.") }
    /// `netevents_missed_program_runs_total{monitor}`
    public static var missedProgramRuns: MetricNameDescriptor { netevents(
        "missed_program_runs", "total",
        "Runs of the monitor's eBPF programs the kernel skipped (another eBPF program was running on that CPU): each may be a missing event.") }
    /// `netevents_unseen_events_total{monitor}`
    public static var unseenEvents: MetricNameDescriptor { netevents(
        "unseen_events", "total",
        "Events the kernel made that no run of the monitor's eBPF program saw, by the kernel's own count of the hook (TCP closes): each a missing event.") }
    /// `netevents_dropped_events_total{monitor}`
    public static var droppedEvents: MetricNameDescriptor { netevents(
        "dropped_events", "total", "Events dropped because the metrics fell behind the monitor.") }
    /// `netevents_malformed_samples_total{monitor}`
    public static var malformedSamples: MetricNameDescriptor { netevents(
        "malformed_samples", "total", "Samples that could not be decoded, each skipped.") }
    /// `netevents_evicted_total{monitor}`
    public static var evicted: MetricNameDescriptor { netevents(
        "evicted", "total",
        "TCP owners evicted from the kernel map under pressure: those connections' events name the closing task.") }
    /// `netevents_failed_polls_total{monitor}`
    public static var failedPolls: MetricNameDescriptor { netevents(
        "failed_polls", "total", "Polls of the open TCP connections that failed: the live bytes of that interval come at the next poll or the close.") }
    /// `netevents_unattributed_packets_total{monitor}`
    public static var unattributedPackets: MetricNameDescriptor { netevents(
        "unattributed_packets", "total", "UDP datagrams counted while the kernel's pair map was full: in no comm series.") }
    /// `netevents_unattributed_bytes_total{monitor}`
    public static var unattributedBytes: MetricNameDescriptor { netevents(
        "unattributed_bytes", "total", "UDP payload bytes counted while the kernel's pair map was full: in no comm series.") }
    /// `netevents_build_info{version,monitor,hook,transport,offsets}`
    public static var buildInfo: MetricNameDescriptor { netevents(
        "build", "info", "Always 1, labelled with the version and each monitor's hook, transport and offsets (estimated: may be wrong).") }
    /// `netevents_monitor_up{monitor}`
    public static var monitorUp: MetricNameDescriptor { netevents(
        "monitor", "up", "1 while the monitor is attached and counting; 0 before it attached and after it stopped.") }
    /// `netevents_label_values_folded{label}`
    public static var foldedLabelValues: MetricNameDescriptor { netevents(
        "label_values", "folded", "Distinct label values counted as \"other\" because the label's limit was reached.") }

    private static func netevents(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "netevents", metricName: name, unitName: unit, helpText: help)
    }
}
