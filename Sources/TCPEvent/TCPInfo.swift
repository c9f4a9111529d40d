/// What `struct tcp_info` (the `INET_DIAG_INFO` attribute of a `sock_diag` dump, or
/// `getsockopt(TCP_INFO)`) says of a connection: the counters and health the programs read from
/// `tcp_sock` at events, as `tcp_get_info` copies them. Offsets are the uapi layout, which only
/// ever grows at its end.
struct TCPInfo: Equatable, Sendable {
    /// The counters an interval record holds the change of.
    struct Totals: Equatable, Sendable {
        var receivedBytes: UInt64 = 0, sentBytes: UInt64 = 0
        var segmentsIn: UInt32 = 0, segmentsOut: UInt32 = 0, dataSegmentsIn: UInt32 = 0, dataSegmentsOut: UInt32 = 0

        /// What moved from `earlier` to these (counters only grow over a connection's life).
        func since(_ earlier: Totals) -> Totals {
            Totals(
                receivedBytes: receivedBytes &- earlier.receivedBytes, sentBytes: sentBytes &- earlier.sentBytes,
                segmentsIn: segmentsIn &- earlier.segmentsIn, segmentsOut: segmentsOut &- earlier.segmentsOut,
                dataSegmentsIn: dataSegmentsIn &- earlier.dataSegmentsIn, dataSegmentsOut: dataSegmentsOut &- earlier.dataSegmentsOut)
        }
    }

    var totals: Totals
    var health: TCPHealth

    /// The bytes up to `tcpi_data_segs_out` (Linux 4.6+); nil when the kernel wrote fewer.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= 160 else { return nil }
        func u32(_ offset: Int) -> UInt32 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) } }
        func u64(_ offset: Int) -> UInt64 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) } }
        totals = Totals(
            receivedBytes: u64(128), sentBytes: u64(120),  // tcpi_bytes_received, tcpi_bytes_acked
            segmentsIn: u32(140), segmentsOut: u32(136),  // tcpi_segs_in, tcpi_segs_out
            dataSegmentsIn: u32(152), dataSegmentsOut: u32(156))  // tcpi_data_segs_in, tcpi_data_segs_out
        let minimum = u32(148)  // tcpi_min_rtt: ~0U before the first sample
        health = TCPHealth(
            smoothedRTTMicroseconds: u32(68), rttVarianceMicroseconds: u32(72),  // tcpi_rtt, tcpi_rttvar
            minimumRTTMicroseconds: minimum == .max ? nil : minimum, retransmits: u32(100))  // tcpi_total_retrans
    }
}
