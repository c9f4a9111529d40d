/// UDP traffic of one flow (a socket, a process, a peer) since the previous report of that flow.
///
/// The kernel counts every datagram a process sends or receives on a UDP socket; events carry
/// the counts since the last event for the same (socket, process, peer), so the sum of a socket's
/// events is exactly its traffic. A flow is reported every interval while it moves data, when the
/// socket closes (if anything moved since its last report), and when the monitor stops.
///
/// The process's and the socket's fields read as the event's own members (`event.pid`,
/// `event.sourcePort`).
///
/// `Codable`: encoded (by `JSONEncoder`, or by `EventJSONEncoder` as the
/// `udp-events` tool prints it) with the keys `event` (the ``Reason``), `time_ns`, `pid`, `uid`,
/// `comm`, `thread` (only when it differs from `comm`), `exe` (when known), `family`, `saddr`, `sport`, `daddr`, `dport`, `rx_bytes`, `tx_bytes`, `rx_packets`,
/// `tx_packets`, `reason`, `cgroup_id`, `cgroup`, `container_id`, `container_runtime`, `pod_uid`, `service`
/// (each when known), `netns`, `netns_name` (when named), `socket_id`, `first_seen_ns`.
public struct UDPTrafficEvent: NetworkEvent {
    /// Why this report was made.
    public enum Reason: String, Sendable, Hashable, Codable {
        /// The periodic report of a flow that moved data.
        case interval
        /// The socket was released; these are the flow's counts since its last report (a flow
        /// with none makes no close event).
        case close
        /// The monitor stopped; the socket may still be open.
        case stop
        /// The flow's kernel entry was freed after it stayed idle, and traffic that raced the
        /// freeing is reported here. Usually there is none, and the freeing makes no event; later
        /// traffic starts a new flow.
        case idle
    }

    /// Wall-clock time of the report (of the close, for `.close`), nanoseconds since the epoch.
    public var timeNanoseconds: UInt64
    /// Why this report was made.
    public var reason: Reason
    /// The process, with its user id and command name at its first packet on this socket.
    public var process: EventProcess
    /// The socket's local address and port, and the flow's peer: the socket's connected peer, or
    /// the address its datagrams went to or came from (else the unspecified address and port 0).
    public var endpoints: SocketEndpoints
    /// Payload bytes received, as the receive calls returned them.
    public var receivedBytes: UInt64
    /// Payload bytes sent, as the send calls returned them.
    public var sentBytes: UInt64
    /// Datagrams received.
    public var receivedPackets: UInt64
    /// Datagrams sent.
    public var sentPackets: UInt64
    /// The process's cgroup v2 id.
    public var cgroupID: UInt64
    /// The cgroup of ``cgroupID``: its path and the container, pod and service it names; nil when
    /// unknown (names off, or the cgroup gone before it was looked up).
    public var cgroup: Cgroup?
    /// The name `ip netns` gave ``networkNamespace``; nil when it has none.
    public var networkNamespaceName: String?
    /// The network namespace's inode number.
    public var networkNamespace: UInt32
    /// The socket's kernel cookie: the id `sock_diag` (and `ss -e`, as `sk:` in hex) reports for
    /// it, unique while the system runs, and the same for every event of the socket (TCP events
    /// use the same id). Nil where the kernel cannot give sockets cookies as they are made
    /// (`KernelFeatures/socketCookies`), and for a socket made before tracing began that nobody
    /// has asked the kernel about.
    public var socketID: UInt64?
    /// Wall-clock time of the flow's first packet.
    public var socketFirstSeenNanoseconds: UInt64
    /// Whether the fields read from kernel structs are estimates (`NetworkEvent.offsetsEstimated`).
    public var offsetsEstimated = false

    /// An event with every field given (the monitor and tests make them).
    public init(
        timeNanoseconds: UInt64, reason: Reason, process: EventProcess, endpoints: SocketEndpoints,
        receivedBytes: UInt64, sentBytes: UInt64, receivedPackets: UInt64, sentPackets: UInt64, cgroupID: UInt64,
        networkNamespace: UInt32, cgroup: Cgroup? = nil, networkNamespaceName: String? = nil, socketID: UInt64?,
        socketFirstSeenNanoseconds: UInt64
    ) {
        self.timeNanoseconds = timeNanoseconds; self.reason = reason; self.process = process; self.endpoints = endpoints
        self.receivedBytes = receivedBytes; self.sentBytes = sentBytes
        self.receivedPackets = receivedPackets; self.sentPackets = sentPackets
        self.cgroupID = cgroupID; self.networkNamespace = networkNamespace
        self.cgroup = cgroup; self.networkNamespaceName = networkNamespaceName
        self.socketID = socketID; self.socketFirstSeenNanoseconds = socketFirstSeenNanoseconds
    }

    /// Whether the flow's peer is known: the socket is connected, or its calls named the address
    /// (the kernel's cgroup sendmsg/recvmsg hooks saw it). A receive that asks no address on an
    /// unconnected socket has none: the kernel does not tell.
    public var hasPeer: Bool { endpoints.destinationPort != 0 }
}

extension UDPTrafficEvent {
    /// Writes the keys every event starts with (DESIGN.md), then the UDP ones: the one list of
    /// this event's keys, for `Codable` and for the tools' JSON lines alike.
    @inlinable public func writeFields<Writer: EventFieldWriter>(to writer: inout Writer) {
        writer.writeHeader(event: reason.rawValue, time: timeNanoseconds, process: process, endpoints: endpoints)
        writer.write(receivedBytes, forKey: "rx_bytes")
        writer.write(sentBytes, forKey: "tx_bytes")
        writer.write(receivedPackets, forKey: "rx_packets")
        writer.write(sentPackets, forKey: "tx_packets")
        writer.write(reason.rawValue, forKey: "reason")
        writer.writeAttribution(of: self)
        writer.write(socketID, forKey: "socket_id")
        writer.write(socketFirstSeenNanoseconds, forKey: "first_seen_ns")
    }

    /// Reads what ``encode(to:)`` wrote (a line of `udp-events --json`).
    /// - Throws: `DecodingError` for a missing key or a value out of range.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: EventCodingKey.self)
        self.init(
            timeNanoseconds: try container.decode(UInt64.self, forKey: "time_ns"),
            reason: try container.decode(Reason.self, forKey: "reason"),
            process: try container.decodeProcess(),
            endpoints: try container.decodeEndpoints(),
            receivedBytes: try container.decode(UInt64.self, forKey: "rx_bytes"),
            sentBytes: try container.decode(UInt64.self, forKey: "tx_bytes"),
            receivedPackets: try container.decode(UInt64.self, forKey: "rx_packets"),
            sentPackets: try container.decode(UInt64.self, forKey: "tx_packets"),
            cgroupID: try container.decode(UInt64.self, forKey: "cgroup_id"),
            networkNamespace: try container.decode(UInt32.self, forKey: "netns"),
            cgroup: try container.decodeCgroup(),
            networkNamespaceName: try container.decodeIfPresent(String.self, forKey: "netns_name"),
            socketID: try container.decodeIfPresent(UInt64.self, forKey: "socket_id"),
            socketFirstSeenNanoseconds: try container.decode(UInt64.self, forKey: "first_seen_ns"))
        offsetsEstimated = try container.decodeIfPresent(Bool.self, forKey: "offsets_estimated") ?? false
    }
}
