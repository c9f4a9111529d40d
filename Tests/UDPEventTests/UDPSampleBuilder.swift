import BCCRuntime
@testable import UDPEvent

/// Builds raw close samples (`struct udp_close_t`: `struct udp_key_t` then `struct udp_flow_t`)
/// byte by byte, at the offsets `bpf/udp_events.c` uses.
struct UDPCloseSample {
    // struct udp_key_t
    var socket: UInt64 = 0xffff_8880_1234_5600
    var pid: UInt32 = 4242
    var keyPad: UInt32 = 0
    // struct udp_flow_t
    var start: UInt64 = 4_000_000_000
    var close: UInt64 = 5_000_000_000
    var txBytes: UInt64 = 12_345
    var rxBytes: UInt64 = 777
    var txPackets: UInt64 = 3
    var rxPackets: UInt64 = 2
    var cgroup: UInt64 = 77
    var uid: UInt32 = 65_534
    var netns: UInt32 = 4_026_531_840
    var family: UInt16 = 2
    var sport: UInt16 = 40_000
    var dport: UInt16 = 53
    var filtered: UInt8 = 0
    var flowPad: UInt8 = 0
    var saddr: [UInt8] = [127, 0, 0, 1]
    var daddr: [UInt8] = [127, 0, 0, 53]
    /// Written as the kernel does: at most 15 bytes, then NUL.
    var comm: String = "dig"
    /// Raw comm bytes (up to 16, no terminator added), replacing `comm` when set.
    var rawComm: [UInt8]?

    /// The 120 bytes of `struct udp_flow_t`, as a map value holds them.
    var flowBytes: [UInt8] {
        var raw = [UInt8](repeating: 0, count: UDPFlowDecoder.flowSize)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { raw.replaceSubrange(offset..<offset + $0.count, with: $0) }
        }
        typealias O = UDPFlowDecoder.Offset
        put(start, at: O.start)
        put(close, at: O.close)
        put(txBytes, at: O.txBytes)
        put(rxBytes, at: O.rxBytes)
        put(txPackets, at: O.txPackets)
        put(rxPackets, at: O.rxPackets)
        put(cgroup, at: O.cgroup)
        put(uid, at: O.uid)
        put(netns, at: O.netns)
        put(family, at: O.family)
        put(sport, at: O.sport)
        put(dport, at: O.dport)
        raw[O.filtered] = filtered
        raw[O.filtered + 1] = flowPad
        raw.replaceSubrange(O.saddr..<O.saddr + saddr.count, with: saddr)
        raw.replaceSubrange(O.daddr..<O.daddr + daddr.count, with: daddr)
        let name = rawComm ?? Array(comm.utf8.prefix(15))
        raw.replaceSubrange(O.comm..<O.comm + name.count, with: name)
        return raw
    }

    /// The 16 bytes of `struct udp_key_t`.
    var keyBytes: [UInt8] {
        var raw = [UInt8]()
        withUnsafeBytes(of: socket.littleEndian) { raw += $0 }
        withUnsafeBytes(of: pid.littleEndian) { raw += $0 }
        withUnsafeBytes(of: keyPad.littleEndian) { raw += $0 }
        return raw
    }

    /// The 136-byte close sample.
    var bytes: [UInt8] { keyBytes + flowBytes }

    /// What the kernel sends when more processes used a socket than it tracks: only the socket
    /// and the close time are set, everything else (family included) is zero.
    static func flush(socket: UInt64, close: UInt64) -> [UInt8] {
        var sample = UDPCloseSample()
        sample.socket = socket
        sample.pid = 0
        sample.start = 0
        sample.close = close
        sample.txBytes = 0
        sample.rxBytes = 0
        sample.txPackets = 0
        sample.rxPackets = 0
        sample.cgroup = 0
        sample.uid = 0
        sample.netns = 0
        sample.family = 0
        sample.sport = 0
        sample.dport = 0
        sample.saddr = []
        sample.daddr = []
        sample.comm = ""
        return sample.bytes
    }
}

/// A decoded pair for the ledger tests, without going through bytes.
func makeFlow(
    socket: UInt64 = 0xffff_8880_0000_1000, pid: UInt32 = 100, start: UInt64 = 1_000,
    counts: UDPFlow.Counts = .init(), filtered: Bool = false, command: String = "flowtest"
) -> UDPFlow {
    UDPFlow(
        key: .init(socket: socket, pid: pid, startNanoseconds: start), closeNanoseconds: 0, counts: counts,
        cgroupID: 9, uid: 1000, networkNamespace: 4_026_531_840, family: .ipv4, sourcePort: 5353, destinationPort: 0,
        filtered: filtered, sourceAddress: .v4(127, 0, 0, 1), destinationAddress: .v4(0, 0, 0, 0), command: command)
}

func counts(tx: UInt64, rx: UInt64, txPackets: UInt64, rxPackets: UInt64) -> UDPFlow.Counts {
    UDPFlow.Counts(txBytes: tx, rxBytes: rx, txPackets: txPackets, rxPackets: rxPackets)
}

extension UDPTrafficEvent {
    var deltaCounts: UDPFlow.Counts {
        UDPFlow.Counts(txBytes: sentBytes, rxBytes: receivedBytes, txPackets: sentPackets, rxPackets: receivedPackets)
    }
}

/// A 64-bit linear congruential generator (Knuth's MMIX constants): reproducible, no dependency.
struct LCG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 33
    }
    /// Uniform enough in `0..<bound` for tests.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}
