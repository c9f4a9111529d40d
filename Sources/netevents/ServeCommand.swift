import ArgumentParser
import BCCRuntime
import EventOutput
import Glibc
import Hummingbird
import Logging
import NetEventsMetrics
import ServiceLifecycle
import TCPEvent
import UDPEvent

/// `netevents serve`: the monitors and a Prometheus endpoint, until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Trace TCP and UDP and serve the counts as Prometheus metrics at http://ADDRESS/metrics.",
        discussion: """
            \(CapabilityNeed.helpText(ptrace: true)) Runs until SIGTERM or SIGINT, which finish the scrape in progress, \
            stop the monitors and exit 0. Counters move while connections live: every --interval \
            seconds (for the connections of this network namespace; those of a container with \
            its own move at their close), and at each close. Labels are the process name (comm) and the container; \
            past --max-comms or --max-containers values, the rest count as "other".
            """)

    @Option(name: .long, help: ListenAddress.help)
    var listen = ListenAddress(argument: "127.0.0.1:9750")!

    @Option(
        name: .long, parsing: .unconditional,
        help: "Seconds between the records of live TCP connections and UDP flows (\(TCPKind.Options.intervalsText)).")
    var interval: Double = 10

    @Option(name: .long, parsing: .unconditional, help: "Process names with series of their own; the rest are comm=\"other\".")
    var maxComms = LabelLimits().commands

    @Option(name: .long, parsing: .unconditional, help: "Containers with series of their own; the rest are container=\"other\".")
    var maxContainers = LabelLimits().containers

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Flag(
        name: .long,
        help: "Without kernel BTF, run on another kernel's header offsets anyway: counts may be wrong, and netevents_build_info says offsets=\"estimated\".")
    var acceptEstimatedOffsets = false

    func validate() throws {
        guard TCPKind.Options.intervals.contains(interval) else {
            throw ValidationError("--interval must be \(TCPKind.Options.intervalsText) seconds")
        }
        for (flag, value) in [("--max-comms", maxComms), ("--max-containers", maxContainers)]
        where !(0...LabelLimits.maximum).contains(value) {
            throw ValidationError("\(flag) must be 0 to \(LabelLimits.maximum)")
        }
    }

    func run() async throws {
        let logger = {
            var logger = Logger(label: "netevents")
            logger.logLevel = logLevel
            return logger
        }()
        if let error = listen.bindError() {
            let hint = error == EADDRINUSE ? ": the port is in use; pick another with --listen" : ""
            TracerRun.writeError("netevents serve: cannot listen on \(listen): \(String(cString: strerror(error)))\(hint)")
            throw ExitCode.failure
        }
        let metrics = NetworkMetrics(limits: LabelLimits(commands: maxComms, containers: maxContainers))
        // A live connection's interval records and its close are joined by socket cookie; where
        // the kernel gives closes none (no cgroup v2), its bytes would count twice: closes only.
        var tcpInterval = interval
        if !KernelFeatures.shared.socketCookies.isYes {
            logger.warning("no socket cookies on this kernel (\(KernelFeatures.shared.socketCookies)): TCP bytes move at each close only")
            tcpInterval = 0
        }
        let monitors: MonitorService
        do {
            var tcp = TCPMonitor.Configuration(options: .init(interval: tcpInterval))
            var udp = UDPMonitor.Configuration(options: .init(interval: interval))
            tcp.acceptsEstimatedOffsets = acceptEstimatedOffsets
            udp.acceptsEstimatedOffsets = acceptEstimatedOffsets
            monitors = MonitorService(
                tcp: try TCPMonitor(configuration: tcp), udp: try UDPMonitor(configuration: udp), metrics: metrics, logger: logger)
            try monitors.start()
        } catch {
            TracerRun.fail("netevents serve", error)
        }
        let server = MetricsServer(metrics: metrics, tcp: monitors.tcp, udp: monitors.udp, address: listen, logger: logger)
        // A signal ends the signal service, which shuts the rest down gracefully in the reverse
        // order: the server finishes its scrape first, then the monitors stop.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: SignalService(signals: NetEventsCommand.signals, logger: logger), successTerminationBehavior: .gracefullyShutdownGroup),
                    .init(service: monitors),
                    .init(service: server.application),
                ],
                logger: logger))
        do {
            try await group.run()
        } catch {
            TracerRun.fail("netevents serve", error)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
