internal import CNetEventsABI
import Glibc
import NetEventsCore
import TCPEvent

/// Builds the raw sample the kernel program writes for one closed TCP socket (`struct
/// ne_tcp_event` of the `tcp_events_abi.h` contract header), for feeding a ``MockSampleSource``.
///
/// Field names follow the C struct's. Defaults describe a client (pid 4242, uid 65534, `curl`)
/// that sent 12,345 bytes and received 777 (the kernel's counters: 12,347 and 778).
///
/// ```swift
/// let source = MockSampleSource()
/// let monitor = try TCPMonitor(source: source)
/// try monitor.start { event in print(event.command) }
/// var sample = TCPSample()
/// sample.pid = 42
/// source.emit(sample.bytes)
/// ```
public struct TCPSample: Sendable {
    /// The `enum ne_tcp_event_kind` value: 1 close, 2 connect, 3 accept, 4 fail (0 and 5+ are
    /// malformed).
    public var kind: UInt8 = 1
    /// Monotonic nanoseconds of the close and of the first state change (0: unknown); the
    /// monitor's clock maps them to wall-clock time.
    public var timestamp: UInt64 = 5_000_000_000, start: UInt64 = 4_000_000_000
    /// `tcp_sock.bytes_received` and `tcp_sock.bytes_acked`.
    public var rxBytes: UInt64 = 778, txBytes: UInt64 = 12_347
    /// `tcp_sock.segs_in`, `segs_out`, `data_segs_in` and `data_segs_out`.
    public var segsIn: UInt32 = 5, segsOut: UInt32 = 6, dataSegsIn: UInt32 = 1, dataSegsOut: UInt32 = 2
    /// `tcp_info`'s `tcpi_rtt`, `tcpi_rttvar`, `tcpi_min_rtt` (microseconds) and
    /// `tcpi_total_retrans`.
    public var srttMicroseconds: UInt32 = 120, rttvarMicroseconds: UInt32 = 60, minRTTMicroseconds: UInt32 = 90, retransmits: UInt32 = 0
    /// `sock.sk_err` of a failed connect (an errno), else 0.
    public var error: Int32 = 0
    /// The socket's kernel cookie (what events report as `socket_id`); 0: none.
    public var socketID: UInt64 = 0x2f_0002
    /// The owner's process id, user id and cgroup id, and the network namespace's inode number.
    public var pid: UInt32 = 4242, uid: UInt32 = 65_534, cgroup: UInt64 = 77, netns: UInt32 = 4_026_531_840
    /// `AF_INET` (2) or `AF_INET6` (10), anything else being malformed; the local and remote ports.
    public var family: UInt16 = 2, sport: UInt16 = 40_000, dport: UInt16 = 443
    /// The TCP state left (1 is `ESTABLISHED`; 13+ is malformed, and 0 is for an accept only), and the
    /// raw value of `TCPConnectionEvent.OwnerSource` (1 to 4; anything else is malformed).
    public var oldState: UInt8 = 1, ownerSource: UInt8 = 1
    /// The local and remote addresses: 4 bytes for IPv4, 16 for IPv6, in network order.
    public var saddr: [UInt8] = [127, 0, 0, 1], daddr: [UInt8] = [10, 1, 2, 3]
    /// The owner's `comm`, written as the kernel does: at most 15 bytes, then NUL.
    public var comm: String = "curl"
    /// The owning thread's name, as the kernel writes it; nil: the same as `comm`.
    public var thread: String? = nil
    /// The owner's executable file name, as the kernel writes it (at most 63 bytes, then NUL); empty: none.
    public var exe: String = "curl-8.5"

    /// A sample with the defaults.
    public init() {}

    /// The defaults as the program writes a sample of `kind`: a connect (left `SYN_SENT`), an
    /// accept (no state left, owner `accept`), a failure (left `SYN_SENT`, `ECONNREFUSED`, no RTT
    /// sample yet) or a close. Nil for an interval record, which no program writes.
    public init?(kind: TCPConnectionEvent.Kind) {
        switch kind {
        case .close: break
        case .connect: (self.kind, oldState) = (UInt8(NE_TCP_EVENT_CONNECT.rawValue), TCPState.synSent.rawValue)
        case .accept:
            (self.kind, oldState, ownerSource) = (UInt8(NE_TCP_EVENT_ACCEPT.rawValue), 0, TCPConnectionEvent.OwnerSource.accept.rawValue)
        case .fail:
            (self.kind, oldState, error, minRTTMicroseconds) = (UInt8(NE_TCP_EVENT_FAIL.rawValue), TCPState.synSent.rawValue, ECONNREFUSED, .max)
        case .interval: return nil
        }
    }

    /// The sample's bytes, as the kernel hands them over.
    public var bytes: [UInt8] {
        var sample = ne_tcp_event()
        sample.ts_ns = timestamp; sample.start_ns = start
        sample.rx_bytes = rxBytes; sample.tx_bytes = txBytes
        sample.segs_in = segsIn; sample.segs_out = segsOut; sample.data_segs_in = dataSegsIn; sample.data_segs_out = dataSegsOut
        sample.pid = pid; sample.uid = uid; sample.cgroup_id = cgroup; sample.netns = netns
        sample.family = family; sample.sport = sport; sample.dport = dport
        sample.oldstate = oldState; sample.owner_source = ownerSource; sample.kind = kind
        sample.srtt_us = srttMicroseconds; sample.rttvar_us = rttvarMicroseconds; sample.min_rtt_us = minRTTMicroseconds
        sample.retransmits = retransmits; sample.error = error; sample.socket_id = socketID
        SampleBytes.copy(saddr, into: &sample.saddr)
        SampleBytes.copy(daddr, into: &sample.daddr)
        SampleBytes.copy(Array(comm.utf8.prefix(15)), into: &sample.comm)
        SampleBytes.copy(Array(exe.utf8.prefix(63)), into: &sample.exe)
        SampleBytes.copy(Array((thread ?? comm).utf8.prefix(15)), into: &sample.thread)
        return withUnsafeBytes(of: sample) { Array($0) }
    }
}

/// Byte-array fields of C samples (imported as tuples).
enum SampleBytes {
    /// Copies `bytes` into the start of a fixed-size C array; the rest stays as it was.
    static func copy<Field>(_ bytes: [UInt8], into field: inout Field) {
        withUnsafeMutableBytes(of: &field) { raw in
            for (index, byte) in bytes.prefix(raw.count).enumerated() { raw[index] = byte }
        }
    }
}
