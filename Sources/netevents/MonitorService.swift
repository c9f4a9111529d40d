import Glibc
import Logging
import NetEventsCore
import NetEventsMetrics
import ServiceLifecycle
import TCPEvent
import UDPEvent

/// The TCP and UDP monitors as a service: attached by ``start()`` before the group runs (so a
/// failure is said before anything listens), counting into the metrics while it runs, and
/// stopped (what they buffered counted) at graceful shutdown or when the group is cancelled.
struct MonitorService: Service {
    let tcp: TCPMonitor
    let udp: UDPMonitor
    let metrics: NetworkMetrics
    let logger: Logger

    /// Attaches both monitors; on failure, detaches whichever did attach.
    func start() throws {
        let metrics = metrics
        try tcp.startBatched { metrics.record($0) }
        // The start's snapshot of open connections is done: those are baselines, not traffic.
        metrics.countsTrafficAfter(UInt64(WallClock.now(CLOCK_REALTIME)))
        do {
            try udp.startBatched { metrics.record($0) }
        } catch {
            tcp.stop()
            throw error
        }
        attached(tcp, "tcp", hook: \.hook.description)
        attached(udp, "udp", hook: \.hook.description)
    }

    func run() async throws {
        // Until SIGTERM or SIGINT, or until the server failed, which cancels the group.
        try? await gracefulShutdown()
        logger.info("stopping the monitors")
        stop(tcp, "tcp")
        stop(udp, "udp")
        let (tcpStatistics, udpStatistics) = (tcp.statistics, udp.statistics)
        for (name, lost, missed, dropped, unseen) in [
            ("tcp", tcpStatistics.lostSamples, tcpStatistics.missedProgramRuns, tcpStatistics.droppedEvents, tcpStatistics.unseenEvents),
            ("udp", udpStatistics.lostSamples, udpStatistics.missedProgramRuns, udpStatistics.droppedEvents, udpStatistics.unseenEvents),
        ] {
            logger.info("\(name) monitor stopped: lost \(lost), missed \(missed.map(String.init) ?? "uncounted"), dropped \(dropped)\(unseen.map { ", unseen \($0)" } ?? "")")
        }
    }

    private func attached<Kind>(_ monitor: EventMonitor<Kind>, _ name: String, hook: (Kind.Hooks) -> String) {
        guard let report = monitor.report else { return }
        metrics.setUp(
            name, attached: true, version: NetEventsCommand.version,
            hook: hook(report.hooks), transport: report.transport.rawValue,
            offsets: report.offsetsUntrusted ? "estimated" : report.offsetSource.rawValue)
        logger.info("\(name) monitor attached: \(report)")
    }

    /// Detaches, delivers what is buffered (into the metrics), and says so in `netevents_monitor_up`.
    private func stop<Kind>(_ monitor: EventMonitor<Kind>, _ name: String) {
        monitor.stop()
        metrics.setUp(name, attached: false, version: NetEventsCommand.version)
    }
}
