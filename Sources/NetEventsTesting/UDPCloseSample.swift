internal import CNetEventsABI
import NetEventsCore

/// Builds the raw close sample the kernel program writes when a UDP socket is released (`struct
/// ne_udp_close` of the `udp_events_abi.h` contract header: a `struct ne_udp_key`, then a
/// `struct ne_udp_flow`), for feeding a ``MockSampleSource``.
///
/// Field names follow the C structs'. Defaults describe `dig` (pid 4242, uid 65534) that sent
/// 12,345 bytes in 3 datagrams and received 777 in 2.
public struct UDPCloseSample: Sendable {
    /// The socket's kernel address (`ne_udp_key.sk`), and the process (0 makes a flush
    /// request, see ``flush(socket:close:)``).
    public var socket: UInt64 = 0xffff_8880_1234_5600, pid: UInt32 = 4242
    /// Monotonic nanoseconds of the flow's first packet and of the release.
    public var start: UInt64 = 4_000_000_000, close: UInt64 = 5_000_000_000
    /// Payload bytes and datagrams sent and received.
    public var txBytes: UInt64 = 12_345, rxBytes: UInt64 = 777, txPackets: UInt64 = 3, rxPackets: UInt64 = 2
    /// The process's cgroup id and user id, and the network namespace's inode number.
    public var cgroup: UInt64 = 77, uid: UInt32 = 65_534, netns: UInt32 = 4_026_531_840
    /// `AF_INET` (2) or `AF_INET6` (10), anything else being malformed; the local port, and the
    /// peer's port of a connected socket (else 0).
    public var family: UInt16 = 2, sport: UInt16 = 40_000, dport: UInt16 = 53
    /// The local address, and the peer's of a connected socket: 4 bytes for IPv4, 16 for IPv6.
    public var saddr: [UInt8] = [127, 0, 0, 1], daddr: [UInt8] = [127, 0, 0, 53]
    /// The process's `comm`, written as the kernel does: at most 15 bytes, then NUL; or raw
    /// bytes (up to 16, no terminator added) that replace it when set.
    public var comm: String = "dig", rawComm: [UInt8]? = nil
    /// The name of the thread of the first datagram; nil: the same as `comm`.
    public var thread: String? = nil
    /// The process's executable file name, as the kernel writes it (at most 63 bytes, then NUL); empty: none.
    public var exe: String = "dig.bind"
    /// The socket's kernel cookie (what events report as `socket_id`); 0: none.
    public var cookie: UInt64 = 0x2f_0001
    /// The family of the flow's peer in the key (`daddr`, `dport`): nil for the socket's family
    /// when `dport` is set, else no peer. `AF_INET` on an IPv6 socket is a v4-mapped peer.
    public var peerFamily: UInt16? = nil

    /// A sample with the defaults.
    public init() {}

    /// The flow part (`struct ne_udp_flow`), as a map value holds it.
    public var flowBytes: [UInt8] { withUnsafeBytes(of: flow) { Array($0) } }

    /// The key part (`struct ne_udp_key`).
    public var keyBytes: [UInt8] { withUnsafeBytes(of: key) { Array($0) } }

    /// The whole close sample.
    public var bytes: [UInt8] {
        var sample = ne_udp_close()
        sample.key = key
        sample.flow = flow
        return withUnsafeBytes(of: sample) { Array($0) }
    }

    /// What the kernel sends when a socket had more flows than it tracks: only the socket
    /// and the close time are set, everything else (family included) is zero.
    public static func flush(socket: UInt64, close: UInt64) -> [UInt8] {
        var sample = ne_udp_close()
        sample.key.sk = socket
        sample.flow.close_ns = close
        return withUnsafeBytes(of: sample) { Array($0) }
    }

    private var key: ne_udp_key {
        var key = ne_udp_key()
        key.sk = socket
        key.pid = pid
        key.peer.family = peerFamily ?? (dport == 0 ? 0 : family)
        key.peer.port = dport
        SampleBytes.copy(daddr, into: &key.peer.addr)
        return key
    }

    private var flow: ne_udp_flow {
        var flow = ne_udp_flow()
        flow.start_ns = start; flow.close_ns = close
        flow.tx_bytes = txBytes; flow.rx_bytes = rxBytes; flow.tx_packets = txPackets; flow.rx_packets = rxPackets
        flow.cgroup_id = cgroup; flow.uid = uid; flow.netns = netns
        flow.family = family; flow.sport = sport; flow.dport = dport; flow.cookie = cookie
        SampleBytes.copy(saddr, into: &flow.saddr)
        SampleBytes.copy(daddr, into: &flow.daddr)
        SampleBytes.copy(rawComm ?? Array(comm.utf8.prefix(15)), into: &flow.comm)
        SampleBytes.copy(thread.map { Array($0.utf8.prefix(15)) } ?? rawComm ?? Array(comm.utf8.prefix(15)), into: &flow.thread)
        SampleBytes.copy(Array(exe.utf8.prefix(63)), into: &flow.exe)
        return flow
    }
}
