import Logging
import NetEventsMetrics
import ServiceLifecycle
import TCPEvent
import UDPEvent

/// The TCP and UDP monitors as a service: attached when the group starts, counting into the
/// metrics while it runs, stopped (what they buffered counted) at graceful shutdown.
struct MonitorService: Service {
    let tcp: TCPMonitor
    let udp: UDPMonitor
    let metrics: NetworkMetrics
    let logger: Logger
    /// Called once both monitors are attached.
    let onAttached: @Sendable () -> Void

    func run() async throws {
        metrics.setUp("tcp", attached: false, version: NetEventsCommand.version)
        metrics.setUp("udp", attached: false, version: NetEventsCommand.version)
        let metrics = metrics
        try tcp.startBatched { metrics.record($0) }
        defer { stop(tcp, "tcp") }
        attached(tcp, "tcp", hook: \.hook.description)
        try udp.startBatched { metrics.record($0) }
        defer { stop(udp, "udp") }
        attached(udp, "udp", hook: \.hook.description)
        onAttached()
        // Until SIGTERM or SIGINT (or the server failed, which cancels the group).
        try? await gracefulShutdown()
        logger.info("stopping the monitors")
    }

    private func attached<Kind>(_ monitor: EventMonitor<Kind>, _ name: String, hook: (Kind.Hooks) -> String) {
        guard let report = monitor.report else { return }
        metrics.setUp(
            name, attached: true, version: NetEventsCommand.version,
            hook: hook(report.hooks), transport: report.transport.rawValue)
        logger.info("\(name) monitor attached: \(report)")
    }

    /// Detaches, delivers what is buffered (into the metrics), and says so in `netevents_monitor_up`.
    private func stop<Kind>(_ monitor: EventMonitor<Kind>, _ name: String) {
        monitor.stop()
        metrics.setUp(name, attached: false, version: NetEventsCommand.version)
    }
}
