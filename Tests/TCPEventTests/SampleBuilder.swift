import BCCRuntime
@testable import TCPEvent

/// Builds raw `struct tcp_event_t` samples byte by byte, at the offsets `bpf/tcp_events.c` uses.
struct TCPSample {
    var timestamp: UInt64 = 5_000_000_000
    var start: UInt64 = 4_000_000_000
    var cgroup: UInt64 = 77
    var rxBytes: UInt64 = 778
    var txBytes: UInt64 = 12_347
    var segsIn: UInt32 = 5, segsOut: UInt32 = 6, dataSegsIn: UInt32 = 1, dataSegsOut: UInt32 = 2
    var pid: UInt32 = 4242, uid: UInt32 = 65_534, netns: UInt32 = 4_026_531_840
    var family: UInt16 = 2
    var sport: UInt16 = 40_000, dport: UInt16 = 443
    var oldState: UInt8 = 1
    var ownerSource: UInt8 = 1
    var saddr: [UInt8] = [127, 0, 0, 1]
    var daddr: [UInt8] = [10, 1, 2, 3]
    var comm: String = "curl"

    var bytes: [UInt8] {
        var raw = [UInt8](repeating: 0, count: TCPEventDecoder.sampleSize)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { raw.replaceSubrange(offset..<offset + $0.count, with: $0) }
        }
        typealias O = TCPEventDecoder.Offset
        put(timestamp, at: O.timestamp)
        put(start, at: O.start)
        put(cgroup, at: O.cgroup)
        put(rxBytes, at: O.rxBytes)
        put(txBytes, at: O.txBytes)
        put(segsIn, at: O.segsIn)
        put(segsOut, at: O.segsOut)
        put(dataSegsIn, at: O.dataSegsIn)
        put(dataSegsOut, at: O.dataSegsOut)
        put(pid, at: O.pid)
        put(uid, at: O.uid)
        put(netns, at: O.netns)
        put(family, at: O.family)
        put(sport, at: O.sport)
        put(dport, at: O.dport)
        raw[O.oldState] = oldState
        raw[O.ownerSource] = ownerSource
        raw.replaceSubrange(O.saddr..<O.saddr + saddr.count, with: saddr)
        raw.replaceSubrange(O.daddr..<O.daddr + daddr.count, with: daddr)
        let name = Array(comm.utf8.prefix(15))
        raw.replaceSubrange(O.comm..<O.comm + name.count, with: name)
        return raw
    }
}
