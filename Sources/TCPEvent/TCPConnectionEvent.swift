internal import CNetEventsABI

/// One moment in a TCP connection's life: its connect, its accept, its failure to connect, or its
/// close (``kind``), with who owned it, between which endpoints, what it has moved so far and how
/// healthy it is.
///
/// A loopback connection yields four events: `connect` and `close` for the client's end, `accept`
/// and `close` for the server's. A connect that never establishes yields one `fail` and no
/// `close`. Byte counts are the kernel's own (`tcp_info`'s `tcpi_bytes_received` and
/// `tcpi_bytes_acked`), which count the SYN and FIN sequence numbers: a client that sent 12,345
/// bytes and received 777 shows `sentBytes` 12,347 and `receivedBytes` 778 at its close.
///
/// The owner's ``process`` and the socket's ``endpoints`` read as the event's own members
/// (`event.pid`, `event.sourcePort`).
///
/// `Codable`: encoded (by `JSONEncoder`, or by `EventJSONEncoder` as the `tcp-events` tool prints
/// it) with the keys `event` (`connect`, `accept`, `fail`, `close`, `interval`), `time_ns`, `pid`, `uid`,
/// `comm`, `thread` (only when it differs from `comm`), `exe` (when known), `family`, `saddr`, `sport`, `daddr`,
/// `dport`, `rx_bytes`, `tx_bytes`, `segs_in`, `segs_out`, `data_segs_in`, `data_segs_out`,
/// `latency_ns` (connect only), `error` (fail only, when the socket recorded one), `srtt_us`,
/// `rttvar_us`, `min_rtt_us`, `retransmits`, `duration_ns` (close and fail only), `cgroup_id`,
/// `cgroup`, `container_id`, `container_runtime`, `pod_uid`, `service` (each when known), `netns`,
/// `netns_name` (when named), `socket_id`, `owner`, `prev_state` (not for accept or interval).
public struct TCPConnectionEvent: NetworkEvent {
    /// What happened.
    public var kind: Kind
    /// Wall-clock time of the event, in nanoseconds since the Unix epoch.
    public var timeNanoseconds: UInt64
    /// The owner: the process that connected or accepted the socket (see ``ownerSource``).
    public var process: EventProcess
    /// How the owner was found.
    public var ownerSource: OwnerSource
    /// The socket's family, addresses and ports.
    public var endpoints: SocketEndpoints
    /// `tcp_sock.bytes_received` (for an ``Kind/interval`` record, like every counter: its change
    /// since the connection's previous record).
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
    /// For a ``Kind/connect``: the time from sending the SYN to the connection's establishment.
    /// Nil for other kinds.
    public var latencyNanoseconds: UInt64?
    /// For a ``Kind/fail``: why the connect failed (`ECONNREFUSED`, `ETIMEDOUT`, ...), the
    /// socket's `sk_err`. Nil for other kinds, and for a failure the socket recorded no error for:
    /// its process closed it while connecting, or a local error after the SYN was queued that
    /// `connect(2)` returned without setting `sk_err`.
    public var error: TCPConnectError?
    /// Round-trip time and retransmissions, as `tcp_info` (and `ss -ti`) reports them.
    public var health: TCPHealth
    /// For a ``Kind/close`` or ``Kind/fail``: the time from the socket's first state change
    /// (connect, or the passive open) to this event; nil for other kinds and when the socket
    /// opened before tracing began.
    public var durationNanoseconds: UInt64?
    /// The owner's cgroup v2 id.
    public var cgroupID: UInt64
    /// The cgroup of ``cgroupID``: its path and the container, pod and service it names; nil when
    /// unknown (names off, or the cgroup gone before it was looked up).
    public var cgroup: Cgroup?
    /// The name `ip netns` gave ``networkNamespace``; nil when it has none.
    public var networkNamespaceName: String?
    /// The network namespace's inode number (as in `/proc/PID/ns/net`).
    public var networkNamespace: UInt32
    /// The socket's kernel cookie: the id `sock_diag` (and `ss -e`, as `sk:` in hex) reports for
    /// it, unique while the system runs, and the same in every event of the connection's end.
    /// Nil where the kernel cannot give sockets cookies as they are made
    /// (`KernelFeatures/socketCookies`), and for a socket made before tracing began that nobody
    /// has asked the kernel about.
    public var socketID: UInt64?
    /// The state the socket left: for a close, the one before `TCP_CLOSE`; for a connect or a
    /// failure, `SYN_SENT`. Nil for an accept or an interval record, which are no state change.
    public var previousState: TCPState?

    /// What a ``TCPConnectionEvent`` reports. `TCPKind.Options/events` chooses which are reported.
    public enum Kind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// The connecting end's connection established (`SYN_SENT` to `ESTABLISHED`).
        case connect
        /// The accepting process took the passive end (at `accept(2)`, or at its first send or
        /// receive when `accept(2)` was not seen).
        case accept
        /// A connect that never established: refused, timed out, unreachable, reset, or given up.
        case fail
        /// The socket reached `TCP_CLOSE` after it established (or during a passive open).
        case close
        /// What an open connection moved since its previous record (the first: since it opened),
        /// with its health now: every `TCPKind/Options/interval` for each connection that moved
        /// data, and at start for every open connection (the snapshot).
        case interval

        /// The name in JSON, tables and `--events`: `connect`, `accept`, `fail`, `close`, `interval`.
        public var description: String { rawValue }

        /// The kind's bit in a set of kinds kept as a mask.
        var bit: UInt8 {
            switch self {
            case .connect: 1
            case .accept: 2
            case .fail: 4
            case .close: 8
            case .interval: 16
            }
        }

        /// The contract's `enum ne_tcp_event_kind` value; nil for records made in user space.
        var sampleKind: UInt8? {
            switch self {
            case .close: UInt8(NE_TCP_EVENT_CLOSE.rawValue)
            case .connect: UInt8(NE_TCP_EVENT_CONNECT.rawValue)
            case .accept: UInt8(NE_TCP_EVENT_ACCEPT.rawValue)
            case .fail: UInt8(NE_TCP_EVENT_FAIL.rawValue)
            case .interval: nil
            }
        }

        /// The kind of a sample's `kind` byte; nil for a value no program writes. (A switch, not a
        /// search of `allCases`: that array would be built anew for every sample.)
        init?(sampleKind: UInt8) {
            switch UInt32(sampleKind) {
            case NE_TCP_EVENT_CLOSE.rawValue: self = .close
            case NE_TCP_EVENT_CONNECT.rawValue: self = .connect
            case NE_TCP_EVENT_ACCEPT.rawValue: self = .accept
            case NE_TCP_EVENT_FAIL.rawValue: self = .fail
            default: return nil
            }
        }
    }

    /// How an event's owner was established, most reliable first.
    public enum OwnerSource: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// No process is known to own the socket: nobody claimed it while traced (opened before
        /// tracing began and never used since, or never accepted), or its owner was pushed out of
        /// the full map of live sockets (``TCPKind/Options/maxTrackedSockets``). The event's
        /// process is `EventProcess.unknown` (pid 0), never whichever task ran the close: a
        /// close runs in softirq, in any task, a kernel thread or the tracer itself.
        case unknown = 0
        /// The process that called `connect(2)`.
        case connect = 1
        /// The process that `accept(2)`ed the socket.
        case accept = 2
        /// The first process that sent or received on it: a passive socket before its accept,
        /// or one no entry knew (opened before tracing began, or evicted) once it is used again.
        case firstIO = 3
        /// The process holding the socket, found in `/proc/PID/fd` as `ss -p` finds it: for a
        /// connection opened before tracing began, or one whose open the poll listed before its
        /// event arrived. Only for ``Kind/interval`` records.
        case openFile = 5

        /// The name in JSON and tables: `unknown`, `connect`, `accept`, `io`, `fd`.
        public var description: String {
            switch self {
            case .unknown: return "unknown"
            case .connect: return "connect"
            case .accept: return "accept"
            case .firstIO: return "io"
            case .openFile: return "fd"
            }
        }
    }

    /// Whether the fields read from kernel structs are estimates (`NetworkEvent.offsetsEstimated`).
    public var offsetsEstimated = false

    /// An event with every field given (decoders and tests make them).
    public init(
        kind: Kind = .close, timeNanoseconds: UInt64, process: EventProcess, ownerSource: OwnerSource,
        endpoints: SocketEndpoints, receivedBytes: UInt64, sentBytes: UInt64, segmentsIn: UInt32, segmentsOut: UInt32,
        dataSegmentsIn: UInt32, dataSegmentsOut: UInt32, durationNanoseconds: UInt64?, cgroupID: UInt64,
        networkNamespace: UInt32, cgroup: Cgroup? = nil, networkNamespaceName: String? = nil, previousState: TCPState?,
        latencyNanoseconds: UInt64? = nil,
        error: TCPConnectError? = nil, health: TCPHealth = TCPHealth(), socketID: UInt64? = nil
    ) {
        self.socketID = socketID
        self.kind = kind
        self.timeNanoseconds = timeNanoseconds; self.process = process; self.ownerSource = ownerSource
        self.endpoints = endpoints; self.receivedBytes = receivedBytes; self.sentBytes = sentBytes
        self.segmentsIn = segmentsIn; self.segmentsOut = segmentsOut
        self.dataSegmentsIn = dataSegmentsIn; self.dataSegmentsOut = dataSegmentsOut
        self.latencyNanoseconds = latencyNanoseconds; self.error = error; self.health = health
        self.durationNanoseconds = durationNanoseconds; self.cgroupID = cgroupID
        self.cgroup = cgroup; self.networkNamespaceName = networkNamespaceName
        self.networkNamespace = networkNamespace; self.previousState = previousState
    }
}

/// A connection's round-trip time and retransmissions, read from the kernel's `tcp_sock` at the
/// event, as `tcp_get_info` computes `tcp_info` (and so as `ss -ti` prints them, in milliseconds:
/// `rtt:SRTT/RTTVAR`, `minrtt:MIN`, `retrans:N/RETRANSMITS`).
public struct TCPHealth: Sendable, Hashable {
    /// Smoothed round-trip time (`tcpi_rtt`), in microseconds; 0 before the first sample.
    public var smoothedRTTMicroseconds: UInt32
    /// Round-trip time mean deviation (`tcpi_rttvar`), in microseconds.
    public var rttVarianceMicroseconds: UInt32
    /// The smallest round-trip time seen recently (`tcpi_min_rtt`), in microseconds; nil before
    /// the first sample (the kernel's `~0U`).
    public var minimumRTTMicroseconds: UInt32?
    /// Segments retransmitted over the connection's life (`tcpi_total_retrans`).
    public var retransmits: UInt32

    /// Health with every field given (zero by default).
    public init(smoothedRTTMicroseconds: UInt32 = 0, rttVarianceMicroseconds: UInt32 = 0, minimumRTTMicroseconds: UInt32? = nil, retransmits: UInt32 = 0) {
        self.smoothedRTTMicroseconds = smoothedRTTMicroseconds
        self.rttVarianceMicroseconds = rttVarianceMicroseconds
        self.minimumRTTMicroseconds = minimumRTTMicroseconds
        self.retransmits = retransmits
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
        writer.writeHeader(event: kind.description, time: timeNanoseconds, process: process, endpoints: endpoints)
        writer.write(receivedBytes, forKey: "rx_bytes")
        writer.write(sentBytes, forKey: "tx_bytes")
        writer.write(segmentsIn, forKey: "segs_in")
        writer.write(segmentsOut, forKey: "segs_out")
        writer.write(dataSegmentsIn, forKey: "data_segs_in")
        writer.write(dataSegmentsOut, forKey: "data_segs_out")
        if kind == .connect { writer.write(latencyNanoseconds, forKey: "latency_ns") }
        writer.write(error?.name, forKey: "error")
        writer.write(health.smoothedRTTMicroseconds, forKey: "srtt_us")
        writer.write(health.rttVarianceMicroseconds, forKey: "rttvar_us")
        writer.write(health.minimumRTTMicroseconds.map(UInt64.init), forKey: "min_rtt_us")
        writer.write(health.retransmits, forKey: "retransmits")
        if kind == .close || kind == .fail { writer.write(durationNanoseconds, forKey: "duration_ns") }
        writer.writeAttribution(of: self)
        writer.write(socketID, forKey: "socket_id")
        writer.write(ownerSource.description, forKey: "owner")
        writer.write(previousState?.description, forKey: "prev_state")
    }

    /// Reads what ``encode(to:)`` wrote (a line of `tcp-events --json`).
    /// - Throws: `DecodingError` for a missing key or a value out of range.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: EventCodingKey.self)
        self.init(
            kind: try container.decodeNamed(Kind.self, forKey: "event"),
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
            cgroup: try container.decodeCgroup(),
            networkNamespaceName: try container.decodeIfPresent(String.self, forKey: "netns_name"),
            previousState: try container.contains("prev_state") ? container.decodeNamed(TCPState.self, forKey: "prev_state") : nil,
            latencyNanoseconds: try container.decodeIfPresent(UInt64.self, forKey: "latency_ns"),
            error: try container.decodeIfPresent(String.self, forKey: "error").map { name in
                guard let error = TCPConnectError(name: name) else {
                    throw DecodingError.dataCorruptedError(forKey: "error", in: container, debugDescription: "unknown error \(name)")
                }
                return error
            },
            health: TCPHealth(
                smoothedRTTMicroseconds: try container.decode(UInt32.self, forKey: "srtt_us"),
                rttVarianceMicroseconds: try container.decode(UInt32.self, forKey: "rttvar_us"),
                minimumRTTMicroseconds: try container.decodeIfPresent(UInt32.self, forKey: "min_rtt_us"),
                retransmits: try container.decode(UInt32.self, forKey: "retransmits")),
            socketID: try container.decodeIfPresent(UInt64.self, forKey: "socket_id"))
        offsetsEstimated = try container.decodeIfPresent(Bool.self, forKey: "offsets_estimated") ?? false
    }
}
