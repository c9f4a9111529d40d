
/// One TCP socket that reached `TCP_CLOSE`: who owned it, between which endpoints, and what it moved.
///
/// A loopback connection yields two events, one per end. Byte counts are the kernel's own
/// (`tcp_info`'s `tcpi_bytes_received` and `tcpi_bytes_acked`), which count the SYN and FIN
/// sequence numbers: a client that sent 12,345 bytes and received 777 shows `sentBytes` 12,347 and
/// `receivedBytes` 778.
///
/// The owner's ``process`` and the socket's ``endpoints`` read as the event's own members
/// (`event.pid`, `event.sourcePort`).
///
/// `Codable`: encoded (by `JSONEncoder`, or by `EventJSONEncoder` as the
/// `tcp-events` tool prints it) with the keys `event` (`close`), `time_ns`, `pid`, `uid`, `comm`, `thread` (only when it differs from `comm`),
/// `family`, `saddr`, `sport`, `daddr`, `dport`, `rx_bytes`, `tx_bytes`, `segs_in`, `segs_out`,
/// `data_segs_in`, `data_segs_out`, `duration_ns`, `cgroup_id`, `netns`, `owner`, `prev_state`.
public struct TCPConnectionEvent: NetworkEvent {
    /// Wall-clock time of the close, in nanoseconds since the Unix epoch.
    public var timeNanoseconds: UInt64
    /// The owner: the process that connected or accepted the socket (see ``ownerSource``).
    public var process: EventProcess
    /// How the owner was found.
    public var ownerSource: OwnerSource
    /// The socket's family, addresses and ports.
    public var endpoints: SocketEndpoints
    /// `tcp_sock.bytes_received`.
    public var receivedBytes: UInt64
    /// `tcp_sock.bytes_acked`: bytes sent and acknowledged by the peer.
    public var sentBytes: UInt64
    /// `tcp_sock.segs_in`: all segments received, including pure ACKs.
    public var segmentsIn: UInt32
    /// `tcp_sock.segs_out`: all segments sent, including pure ACKs.
    public var segmentsOut: UInt32
    /// `tcp_sock.data_segs_in`: segments received that carried payload.
    public var dataSegmentsIn: UInt32
    /// `tcp_sock.data_segs_out`: segments sent that carried payload.
    public var dataSegmentsOut: UInt32
    /// Time from the socket's first state change (connect, or the passive open) to its close;
    /// nil when the socket opened before tracing began.
    public var durationNanoseconds: UInt64?
    /// The owner's cgroup v2 id.
    public var cgroupID: UInt64
    /// The network namespace's inode number (as in `/proc/PID/ns/net`).
    public var networkNamespace: UInt32
    /// The state the socket left for `TCP_CLOSE`.
    public var previousState: TCPState

    /// How an event's owner was established, most reliable first.
    public enum OwnerSource: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// The process that called `connect(2)`.
        case connect = 1
        /// The process that `accept(2)`ed the socket.
        case accept = 2
        /// The first process that sent or received on it (sockets not seen being opened).
        case firstIO = 3
        /// Nobody claimed the socket while traced: the task that ran the close, which for closes
        /// processed in softirq may be another process.
        case closingTask = 4

        /// The name in JSON and tables: `connect`, `accept`, `io`, `close`.
        public var description: String {
            switch self {
            case .connect: return "connect"
            case .accept: return "accept"
            case .firstIO: return "io"
            case .closingTask: return "close"
            }
        }
    }

    /// An event with every field given (decoders and tests make them).
    public init(
        timeNanoseconds: UInt64, process: EventProcess, ownerSource: OwnerSource, endpoints: SocketEndpoints,
        receivedBytes: UInt64, sentBytes: UInt64, segmentsIn: UInt32, segmentsOut: UInt32, dataSegmentsIn: UInt32,
        dataSegmentsOut: UInt32, durationNanoseconds: UInt64?, cgroupID: UInt64, networkNamespace: UInt32,
        previousState: TCPState
    ) {
        self.timeNanoseconds = timeNanoseconds; self.process = process; self.ownerSource = ownerSource
        self.endpoints = endpoints; self.receivedBytes = receivedBytes; self.sentBytes = sentBytes
        self.segmentsIn = segmentsIn; self.segmentsOut = segmentsOut
        self.dataSegmentsIn = dataSegmentsIn; self.dataSegmentsOut = dataSegmentsOut
        self.durationNanoseconds = durationNanoseconds; self.cgroupID = cgroupID
        self.networkNamespace = networkNamespace; self.previousState = previousState
    }
}

/// TCP states, numbered as in the kernel's `include/net/tcp_states.h`.
public enum TCPState: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `TCP_ESTABLISHED` (1).
    case established = 1
    /// `TCP_SYN_SENT`.
    case synSent
    /// `TCP_SYN_RECV`.
    case synReceived
    /// `TCP_FIN_WAIT1`.
    case finWait1
    /// `TCP_FIN_WAIT2`.
    case finWait2
    /// `TCP_TIME_WAIT`.
    case timeWait
    /// `TCP_CLOSE`.
    case close
    /// `TCP_CLOSE_WAIT`.
    case closeWait
    /// `TCP_LAST_ACK`.
    case lastAck
    /// `TCP_LISTEN`.
    case listen
    /// `TCP_CLOSING`.
    case closing
    /// `TCP_NEW_SYN_RECV` (12).
    case newSynReceived

    /// The kernel's name, e.g. `ESTABLISHED`.
    public var description: String {
        switch self {
        case .established: return "ESTABLISHED"
        case .synSent: return "SYN_SENT"
        case .synReceived: return "SYN_RECV"
        case .finWait1: return "FIN_WAIT1"
        case .finWait2: return "FIN_WAIT2"
        case .timeWait: return "TIME_WAIT"
        case .close: return "CLOSE"
        case .closeWait: return "CLOSE_WAIT"
        case .lastAck: return "LAST_ACK"
        case .listen: return "LISTEN"
        case .closing: return "CLOSING"
        case .newSynReceived: return "NEW_SYN_RECV"
        }
    }
}

extension TCPConnectionEvent {
    /// Writes the keys every event starts with (DESIGN.md), then the TCP ones: the one list of
    /// this event's keys, for `Codable` and for the tools' JSON lines alike.
    @inlinable public func writeFields<Writer: EventFieldWriter>(to writer: inout Writer) {
        writer.writeHeader(event: "close", time: timeNanoseconds, process: process, endpoints: endpoints)
        writer.write(receivedBytes, forKey: "rx_bytes")
        writer.write(sentBytes, forKey: "tx_bytes")
        writer.write(segmentsIn, forKey: "segs_in")
        writer.write(segmentsOut, forKey: "segs_out")
        writer.write(dataSegmentsIn, forKey: "data_segs_in")
        writer.write(dataSegmentsOut, forKey: "data_segs_out")
        writer.write(durationNanoseconds, forKey: "duration_ns")
        writer.write(cgroupID, forKey: "cgroup_id")
        writer.write(networkNamespace, forKey: "netns")
        writer.write(ownerSource.description, forKey: "owner")
        writer.write(previousState.description, forKey: "prev_state")
    }

    /// Reads what ``encode(to:)`` wrote (a line of `tcp-events --json`).
    /// - Throws: `DecodingError` for a missing key or a value out of range.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: EventCodingKey.self)
        self.init(
            timeNanoseconds: try container.decode(UInt64.self, forKey: "time_ns"),
            process: try container.decodeProcess(),
            ownerSource: try container.decodeNamed(OwnerSource.self, forKey: "owner"),
            endpoints: try container.decodeEndpoints(),
            receivedBytes: try container.decode(UInt64.self, forKey: "rx_bytes"),
            sentBytes: try container.decode(UInt64.self, forKey: "tx_bytes"),
            segmentsIn: try container.decode(UInt32.self, forKey: "segs_in"),
            segmentsOut: try container.decode(UInt32.self, forKey: "segs_out"),
            dataSegmentsIn: try container.decode(UInt32.self, forKey: "data_segs_in"),
            dataSegmentsOut: try container.decode(UInt32.self, forKey: "data_segs_out"),
            durationNanoseconds: try container.decodeIfPresent(UInt64.self, forKey: "duration_ns"),
            cgroupID: try container.decode(UInt64.self, forKey: "cgroup_id"),
            networkNamespace: try container.decode(UInt32.self, forKey: "netns"),
            previousState: try container.decodeNamed(TCPState.self, forKey: "prev_state"))
    }
}
