import Prometheus
import TCPEvent

/// The counters of one (`comm`, `container`) label pair, each registered on first use, so a
/// process that never spoke UDP has no UDP series.
final class TrafficSeries {
    private let registry: PrometheusCollectorRegistry
    private let labels: [(String, String)]
    private var tcpConnections: [TCPConnectionEvent.Kind: Counter] = [:]
    private var tcpSent: Counter?, tcpReceived: Counter?
    private var udpSent: Counter?, udpReceived: Counter?
    private var udpSentPackets: Counter?, udpReceivedPackets: Counter?

    init(registry: PrometheusCollectorRegistry, command: String, container: String) {
        self.registry = registry
        labels = [("comm", command), ("container", container)]
    }

    func countTCP(_ kind: TCPConnectionEvent.Kind) {
        if let counter = tcpConnections[kind] {
            counter.increment()
        } else {
            let counter = registry.makeCounter(descriptor: MetricName.tcpConnections, labels: [("event", kind.rawValue)] + labels)
            tcpConnections[kind] = counter
            counter.increment()
        }
    }

    func addTCP(sent: UInt64, received: UInt64) {
        add(sent, to: &tcpSent, MetricName.tcpBytes, "sent")
        add(received, to: &tcpReceived, MetricName.tcpBytes, "received")
    }

    func addUDP(sent: UInt64, received: UInt64, sentPackets: UInt64, receivedPackets: UInt64) {
        add(sent, to: &udpSent, MetricName.udpBytes, "sent")
        add(received, to: &udpReceived, MetricName.udpBytes, "received")
        add(sentPackets, to: &udpSentPackets, MetricName.udpPackets, "sent")
        add(receivedPackets, to: &udpReceivedPackets, MetricName.udpPackets, "received")
    }

    private func add(_ amount: UInt64, to counter: inout Counter?, _ descriptor: MetricNameDescriptor, _ direction: String) {
        guard amount > 0 else { return }
        if counter == nil {
            counter = registry.makeCounter(descriptor: descriptor, labels: [("direction", direction)] + labels)
        }
        counter?.increment(by: Int64(clamping: amount))
    }
}
