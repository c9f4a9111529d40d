import NetEventsCore
import NetEventsMetrics
import TCPEvent
import UDPEvent

/// The series names the tests read, written out: they are the agent's contract with dashboards.
enum Name {
    static let tcpConnections = "netevents_tcp_connections_total"
    static let tcpBytes = "netevents_tcp_bytes_total"
    static let udpBytes = "netevents_udp_bytes_total"
    static let udpPackets = "netevents_udp_packets_total"
    static let tcpDuration = "netevents_tcp_connection_duration_seconds"
    static let tcpSmoothedRTT = "netevents_tcp_srtt_seconds"
    static let lostEvents = "netevents_lost_events_total"
    static let droppedEvents = "netevents_dropped_events_total"
    static let malformedSamples = "netevents_malformed_samples_total"
    static let evicted = "netevents_evicted_total"
    static let buildInfo = "netevents_build_info"
    static let monitorUp = "netevents_monitor_up"
    static let foldedLabelValues = "netevents_label_values_folded"
}

extension Exposition {
    func tcpConnections(_ event: String, comm: String, container: String = "") -> Double? {
        self[Name.tcpConnections, ["event": event, "comm": comm, "container": container]]
    }

    func tcpBytes(_ direction: String, comm: String, container: String = "") -> Double? {
        self[Name.tcpBytes, ["direction": direction, "comm": comm, "container": container]]
    }

    func udpBytes(_ direction: String, comm: String, container: String = "") -> Double? {
        self[Name.udpBytes, ["direction": direction, "comm": comm, "container": container]]
    }

    func udpPackets(_ direction: String, comm: String, container: String = "") -> Double? {
        self[Name.udpPackets, ["direction": direction, "comm": comm, "container": container]]
    }

    /// A process's UDP counts: bytes sent and received, then datagrams sent and received.
    func udpCounts(comm: String, container: String = "") -> [Double?] {
        [
            udpBytes("sent", comm: comm, container: container), udpBytes("received", comm: comm, container: container),
            udpPackets("sent", comm: comm, container: container), udpPackets("received", comm: comm, container: container),
        ]
    }

    /// Every series of `name` in one `direction`, by "comm/container": the whole set, so that an
    /// assertion on it also says no other series exists.
    func byCommAndContainer(_ name: String, direction: String) -> [String: Double] {
        Dictionary(
            uniqueKeysWithValues: series(named: name).filter { $0.labels["direction"] == direction }.map {
                ("\($0.labels["comm"] ?? "?")/\($0.labels["container"] ?? "?")", self[$0.name, $0.labels] ?? .nan)
            })
    }

    /// A histogram's cumulative bucket `le` (as the registry writes a Double bound).
    func bucket(_ histogram: String, le: Double) -> Double? { self[histogram + "_bucket", ["le": "\(le)"]] }
}

/// A TCP event with only what the metrics read set.
func tcpEvent(
    _ kind: TCPConnectionEvent.Kind, comm: String = "curl", socket: UInt64? = nil, sent: UInt64 = 0, received: UInt64 = 0,
    durationNanoseconds: UInt64? = nil, srttMicroseconds: UInt32 = 0, cgroup: Cgroup? = nil,
    owner: TCPConnectionEvent.OwnerSource = .connect
) -> TCPConnectionEvent {
    TCPConnectionEvent(
        kind: kind, timeNanoseconds: 1, process: owner == .unknown ? .unknown : EventProcess(pid: 100, uid: 0, command: comm), ownerSource: owner,
        endpoints: endpoints, receivedBytes: received, sentBytes: sent, segmentsIn: 0, segmentsOut: 0,
        dataSegmentsIn: 0, dataSegmentsOut: 0, durationNanoseconds: durationNanoseconds, cgroupID: cgroup?.id ?? 1,
        networkNamespace: 1, cgroup: cgroup, previousState: nil,
        health: TCPHealth(smoothedRTTMicroseconds: srttMicroseconds), socketID: socket)
}

/// A UDP event carrying the given counts since its pair's previous event.
func udpEvent(
    _ reason: UDPTrafficEvent.Reason = .interval, comm: String = "dig", sent: UInt64 = 0, received: UInt64 = 0,
    sentPackets: UInt64 = 0, receivedPackets: UInt64 = 0, cgroup: Cgroup? = nil
) -> UDPTrafficEvent {
    UDPTrafficEvent(
        timeNanoseconds: 1, reason: reason, process: EventProcess(pid: 200, uid: 0, command: comm), endpoints: endpoints,
        receivedBytes: received, sentBytes: sent, receivedPackets: receivedPackets, sentPackets: sentPackets,
        cgroupID: cgroup?.id ?? 1, networkNamespace: 1, cgroup: cgroup, socketID: 7, socketFirstSeenNanoseconds: 0)
}

private let endpoints = SocketEndpoints(
    family: .ipv4, sourceAddress: .v4(127, 0, 0, 1), sourcePort: 40_000, destinationAddress: .v4(127, 0, 0, 1),
    destinationPort: 443)

/// A 64-digit container id starting with 12 `digit`s (what its label keeps), then other digits.
func containerID(_ digit: Character) -> String { String(repeating: digit, count: 12) + String(repeating: "0123", count: 13) }

/// The cgroup Docker's systemd driver makes for container `id` (as `Cgroup` reads paths).
func dockerCgroup(_ id: String, cgroupID: UInt64 = 9) -> Cgroup {
    Cgroup(id: cgroupID, path: "/system.slice/docker-\(id).scope")
}
