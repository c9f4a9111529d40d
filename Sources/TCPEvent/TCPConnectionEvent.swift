import BCCRuntime

/// One TCP socket that reached `TCP_CLOSE`: who owned it, between which endpoints, and what it moved.
///
/// A loopback connection yields two events, one per end. Byte counts are the kernel's own
/// (`tcp_info`'s `tcpi_bytes_received` and `tcpi_bytes_acked`), which count the SYN and FIN
/// sequence numbers: a client that sent 12,345 bytes and received 777 shows `sentBytes` 12,347 and
/// `receivedBytes` 778.
public struct TCPConnectionEvent: Sendable, Hashable {
    /// Wall-clock time of the close, in nanoseconds since the Unix epoch.
    public var timeNanoseconds: UInt64
    /// Process id (thread group id) of the owner.
    public var pid: Int32
    /// Real user id of the owner.
    public var uid: UInt32
    /// The owner's command name (`comm`, at most 15 bytes).
    public var command: String
    /// How the owner was found.
    public var ownerSource: OwnerSource
    /// Address family, as the kernel reports it (a v4-mapped address on an IPv6 socket is IPv6).
    public var family: AddressFamily
    public var sourceAddress: IPAddress
    public var sourcePort: UInt16
    public var destinationAddress: IPAddress
    public var destinationPort: UInt16
    /// `tcp_sock.bytes_received`.
    public var receivedBytes: UInt64
    /// `tcp_sock.bytes_acked`: bytes sent and acknowledged by the peer.
    public var sentBytes: UInt64
    /// `tcp_sock.segs_in` / `segs_out`: all segments, including pure ACKs.
    public var segmentsIn: UInt32
    public var segmentsOut: UInt32
    /// `tcp_sock.data_segs_in` / `data_segs_out`: segments that carried payload.
    public var dataSegmentsIn: UInt32
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
    public enum OwnerSource: UInt8, Sendable, Hashable, Codable {
        /// The process that called `connect(2)`.
        case connect = 1
        /// The process that `accept(2)`ed the socket.
        case accept = 2
        /// The first process that sent or received on it (sockets not seen being opened).
        case firstIO = 3
        /// Nobody claimed the socket while traced: the task that ran the close, which for closes
        /// processed in softirq may be another process.
        case closingTask = 4
    }

    public init(
        timeNanoseconds: UInt64, pid: Int32, uid: UInt32, command: String, ownerSource: OwnerSource,
        family: AddressFamily, sourceAddress: IPAddress, sourcePort: UInt16, destinationAddress: IPAddress,
        destinationPort: UInt16, receivedBytes: UInt64, sentBytes: UInt64, segmentsIn: UInt32, segmentsOut: UInt32,
        dataSegmentsIn: UInt32, dataSegmentsOut: UInt32, durationNanoseconds: UInt64?, cgroupID: UInt64,
        networkNamespace: UInt32, previousState: TCPState
    ) {
        self.timeNanoseconds = timeNanoseconds
        self.pid = pid
        self.uid = uid
        self.command = command
        self.ownerSource = ownerSource
        self.family = family
        self.sourceAddress = sourceAddress
        self.sourcePort = sourcePort
        self.destinationAddress = destinationAddress
        self.destinationPort = destinationPort
        self.receivedBytes = receivedBytes
        self.sentBytes = sentBytes
        self.segmentsIn = segmentsIn
        self.segmentsOut = segmentsOut
        self.dataSegmentsIn = dataSegmentsIn
        self.dataSegmentsOut = dataSegmentsOut
        self.durationNanoseconds = durationNanoseconds
        self.cgroupID = cgroupID
        self.networkNamespace = networkNamespace
        self.previousState = previousState
    }
}

/// TCP states, numbered as in the kernel's `include/net/tcp_states.h`.
public enum TCPState: UInt8, Sendable, Hashable, Codable, CustomStringConvertible {
    case established = 1, synSent, synReceived, finWait1, finWait2, timeWait, close, closeWait, lastAck, listen,
        closing, newSynReceived

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
