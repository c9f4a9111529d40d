import Hummingbird
import Logging
import NetEventsMetrics
import TCPEvent
import UDPEvent

/// The HTTP side: `GET /metrics` in the Prometheus text format, brought up to date with the
/// monitors' loss counters at each scrape.
struct MetricsServer {
    let application: Application<RouterResponder<BasicRequestContext>>

    init(metrics: NetworkMetrics, tcp: TCPMonitor, udp: UDPMonitor, address: ListenAddress, logger: Logger) {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            metrics.update(tcp)
            metrics.update(udp)
            let body = metrics.registry.emitToBuffer()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.get("/") { _, _ -> String in
            "netevents \(NetEventsCommand.version): metrics at /metrics\n"
        }
        application = Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "netevents"),
            onServerRunning: { _ in logger.info("serving http://\(address)/metrics") },
            logger: logger)
    }
}
