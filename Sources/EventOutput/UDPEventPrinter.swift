import BCCRuntime
import Foundation
import UDPEvent

/// Formats UDP events as table rows or JSON lines.
public struct UDPEventPrinter: Sendable {
    public let json: Bool
    let columns = [
        TextColumn("TIME", width: 12), TextColumn("PID", width: 7, rightAligned: true), TextColumn("UID", width: 6, rightAligned: true),
        TextColumn("COMM", width: 15), TextColumn("LOCAL", width: 26), TextColumn("PEER", width: 26),
        TextColumn("TX_PKTS", width: 8, rightAligned: true), TextColumn("TX_BYTES", width: 10, rightAligned: true),
        TextColumn("RX_PKTS", width: 8, rightAligned: true), TextColumn("RX_BYTES", width: 10, rightAligned: true),
        TextColumn("WHY", width: 8),
    ]

    public init(json: Bool) { self.json = json }

    /// The table's header line.
    public var header: String { columns.header }

    /// Writes the event to standard output.
    public func print(_ event: UDPTrafficEvent) {
        StandardOutput.writeLine(json ? jsonLine(event) : row(event))
    }

    /// A table row.
    public func row(_ event: UDPTrafficEvent) -> String {
        columns.row([
            clockTime(event.timeNanoseconds), String(event.pid), String(event.uid), event.command,
            endpoint(event.sourceAddress, event.sourcePort),
            event.isConnected ? endpoint(event.destinationAddress, event.destinationPort) : "-",
            String(event.sentPackets), String(event.sentBytes), String(event.receivedPackets), String(event.receivedBytes),
            event.reason.rawValue,
        ])
    }

    /// A JSON object with the keys of DESIGN.md (`time_ns, pid, uid, comm, family, saddr, sport,
    /// daddr, dport, rx_bytes, tx_bytes, rx_packets, tx_packets`) and more.
    public func jsonLine(_ event: UDPTrafficEvent) -> String {
        var line = JSONLine()
        line.add("time_ns", event.timeNanoseconds)
        line.add("pid", event.pid)
        line.add("uid", event.uid)
        line.add("comm", event.command)
        line.add("family", event.family.rawValue)
        line.add("saddr", event.sourceAddress.description)
        line.add("sport", event.sourcePort)
        line.add("daddr", event.destinationAddress.description)
        line.add("dport", event.destinationPort)
        line.add("rx_bytes", event.receivedBytes)
        line.add("tx_bytes", event.sentBytes)
        line.add("rx_packets", event.receivedPackets)
        line.add("tx_packets", event.sentPackets)
        line.add("reason", event.reason.rawValue)
        line.add("cgroup_id", event.cgroupID)
        line.add("netns", event.networkNamespace)
        line.add("socket_id", event.socketID)
        return line.line
    }
}

/// `HH:MM:SS.mmm` in local time.
func clockTime(_ nanoseconds: UInt64) -> String {
    var time = tm()
    var raw = time_t(nanoseconds / 1_000_000_000)
    localtime_r(&raw, &time)
    return String(format: "%02d:%02d:%02d.%03d", time.tm_hour, time.tm_min, time.tm_sec, Int(nanoseconds / 1_000_000 % 1000))
}

/// `1.2.3.4:80` or `[::1]:80`.
func endpoint(_ address: IPAddress, _ port: UInt16) -> String {
    address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
}
