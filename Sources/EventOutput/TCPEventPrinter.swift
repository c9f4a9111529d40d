import BCCRuntime
import Foundation
import TCPEvent

/// Formats events as table rows or JSON lines.
public struct TCPEventPrinter: Sendable {
    public let json: Bool

    public init(json: Bool) { self.json = json }
    let columns = [
        TextColumn("TIME", width: 12), TextColumn("PID", width: 7, rightAligned: true), TextColumn("UID", width: 6, rightAligned: true),
        TextColumn("COMM", width: 15), TextColumn("LOCAL", width: 26), TextColumn("REMOTE", width: 26),
        TextColumn("TX_BYTES", width: 10, rightAligned: true), TextColumn("RX_BYTES", width: 10, rightAligned: true),
        TextColumn("SEGS_OUT", width: 8, rightAligned: true), TextColumn("SEGS_IN", width: 8, rightAligned: true),
        TextColumn("MS", width: 9, rightAligned: true), TextColumn("OWNER", width: 7),
    ]

    /// The table's header line.
    public var header: String { columns.header }

    /// Writes the event to standard output.
    public func print(_ event: TCPConnectionEvent) {
        StandardOutput.writeLine(json ? jsonLine(event) : row(event))
    }

    /// A table row.
    public func row(_ event: TCPConnectionEvent) -> String {
        let clock = clockTime(event.timeNanoseconds)
        let ms = event.durationNanoseconds.map { String(format: "%.2f", Double($0) / 1e6) } ?? "-"
        return columns.row([
            clock, String(event.pid), String(event.uid), event.command,
            endpoint(event.sourceAddress, event.sourcePort), endpoint(event.destinationAddress, event.destinationPort),
            String(event.sentBytes), String(event.receivedBytes), String(event.segmentsOut), String(event.segmentsIn), ms,
            ownerName(event.ownerSource),
        ])
    }

    /// A JSON object with the keys of DESIGN.md (`time_ns, pid, uid, comm, family, saddr, sport,
    /// daddr, dport, rx_bytes, tx_bytes, segs_in, segs_out, duration_ns`) and more.
    public func jsonLine(_ event: TCPConnectionEvent) -> String {
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
        line.add("segs_in", event.segmentsIn)
        line.add("segs_out", event.segmentsOut)
        line.add("data_segs_in", event.dataSegmentsIn)
        line.add("data_segs_out", event.dataSegmentsOut)
        line.add("duration_ns", event.durationNanoseconds)
        line.add("cgroup_id", event.cgroupID)
        line.add("netns", event.networkNamespace)
        line.add("owner", ownerName(event.ownerSource))
        line.add("prev_state", event.previousState.description)
        return line.line
    }

    func ownerName(_ source: TCPConnectionEvent.OwnerSource) -> String {
        switch source {
        case .connect: return "connect"
        case .accept: return "accept"
        case .firstIO: return "io"
        case .closingTask: return "close"
        }
    }
}
