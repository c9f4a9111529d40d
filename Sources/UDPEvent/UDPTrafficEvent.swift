import BCCRuntime

/// UDP traffic of one socket in one process since the previous report of that pair.
///
/// The kernel counts every datagram a process sends or receives on a UDP socket; events carry
/// the counts since the last event for the same (socket, process), so the sum of a socket's events
/// is exactly its traffic. A pair is reported every interval while it moves data, when the socket
/// closes, and when the monitor stops.
public struct UDPTrafficEvent: Sendable, Hashable {
    /// Why this report was made.
    public enum Reason: String, Sendable, Hashable, Codable {
        /// The periodic report of a pair that moved data.
        case interval
        /// The socket was released; these are its last counts (possibly zero: every close is reported).
        case close
        /// The monitor stopped; the socket may still be open.
        case stop
        /// The pair's kernel entry was freed after it stayed idle, and traffic that raced the
        /// freeing is reported here. Usually there is none, and the freeing makes no event; later
        /// traffic starts a new pair.
        case idle
    }

    /// Wall-clock time of the report (of the close, for `.close`), nanoseconds since the epoch.
    public var timeNanoseconds: UInt64
    public var reason: Reason
    public var pid: Int32
    /// Real user id of the process at its first packet on this socket.
    public var uid: UInt32
    /// The process's command name at its first packet on this socket.
    public var command: String
    public var family: AddressFamily
    /// The socket's local address and port.
    public var sourceAddress: IPAddress
    public var sourcePort: UInt16
    /// The peer of a connected socket; the unspecified address and port 0 otherwise.
    public var destinationAddress: IPAddress
    public var destinationPort: UInt16
    /// Payload bytes received and sent, as the calls returned them.
    public var receivedBytes: UInt64
    public var sentBytes: UInt64
    public var receivedPackets: UInt64
    public var sentPackets: UInt64
    /// The process's cgroup v2 id.
    public var cgroupID: UInt64
    /// The network namespace's inode number.
    public var networkNamespace: UInt32
    /// An opaque identity of the socket (its kernel address, as BCC's tools print it); with
    /// ``socketFirstSeenNanoseconds`` it tells sockets apart even when the kernel reuses an address.
    public var socketID: UInt64
    /// Wall-clock time of the pair's first packet.
    public var socketFirstSeenNanoseconds: UInt64

    /// Whether the socket is connected (has a fixed peer).
    public var isConnected: Bool { destinationPort != 0 }
}
