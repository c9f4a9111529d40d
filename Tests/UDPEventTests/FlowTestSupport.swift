import NetEventsTesting
@testable import UDPEvent

// Test-only helpers for the UDP kind. Raw samples come from NetEventsTesting's `UDPCloseSample`.

/// A decoded pair for the ledger tests, without going through bytes.
func makeFlow(
    socket: UInt64 = 0xffff_8880_0000_1000, pid: UInt32 = 100, start: UInt64 = 1_000,
    counts: UDPFlow.Counts = .init(), command: String = "flowtest"
) -> UDPFlow {
    UDPFlow(
        key: .init(socket: socket, pid: pid, startNanoseconds: start), closeNanoseconds: 0, counts: counts,
        cgroupID: 9, uid: 1000, networkNamespace: 4_026_531_840, family: .ipv4, sourcePort: 5353, destinationPort: 0,
        sourceAddress: .v4(127, 0, 0, 1), destinationAddress: .v4(0, 0, 0, 0), command: command, thread: command,
        cookie: socket &+ 1000)
}

func counts(tx: UInt64, rx: UInt64, txPackets: UInt64, rxPackets: UInt64) -> UDPFlow.Counts {
    UDPFlow.Counts(txBytes: tx, rxBytes: rx, txPackets: txPackets, rxPackets: rxPackets)
}

extension UDPTrafficEvent {
    var deltaCounts: UDPFlow.Counts {
        UDPFlow.Counts(txBytes: sentBytes, rxBytes: receivedBytes, txPackets: sentPackets, rxPackets: receivedPackets)
    }
}

extension UDPCloseSample {
    /// The bytes and datagrams the sample says were sent and received, as a flow's counts.
    var counts: UDPFlow.Counts {
        get { UDPFlow.Counts(txBytes: txBytes, rxBytes: rxBytes, txPackets: txPackets, rxPackets: rxPackets) }
        set {
            txBytes = newValue.txBytes
            rxBytes = newValue.rxBytes
            txPackets = newValue.txPackets
            rxPackets = newValue.rxPackets
        }
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
