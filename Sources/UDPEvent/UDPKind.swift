internal import CNetEventsABI
import Glibc
import Synchronization

/// The UDP event kind: traffic counted in the kernel per (socket, process, peer) and reported as
/// ``UDPTrafficEvent``s every interval while a flow moves data, when its socket closes, and at
/// stop. The events of a flow add up exactly to its traffic. Its monitor is ``UDPMonitor``.
///
/// The program is `bpf/udp_events.c`; its map layouts, close sample and counters are declared
/// once, in the `udp_events_abi.h` contract header that the program and this module share.
public final class UDPKind: EventKind {

    /// The UDP kind's counters (`MonitorStatistics/kind`).
    public struct Counters: EventKindCounters {
        /// (socket, process, peer) flows the kernel started counting.
        public var flows: UInt64 = 0
        /// Sockets whose release the close hook saw.
        public var closes: UInt64 = 0
        /// Packets and bytes counted while the map was full, so not attributed to a socket.
        public var unattributedPackets: UInt64 = 0, unattributedBytes: UInt64 = 0
        /// Pairs whose kernel entries were freed after being idle (all their counts had been
        /// reported; nothing is lost).
        public var idleEvictions: UInt64 = 0
        /// Sockets with more (process, peer) flows than the kernel tracks per socket (flushed by a scan at close).
        public var sharedSocketOverflows: UInt64 = 0
        /// Flows whose close found the kernel's buffer full (a mass close): their final counts
        /// waited in the kernel's map and came with the next scan, as `.close` events. Late, not lost.
        public var deferredCloses: UInt64 = 0

        /// All zero.
        public init() {}
    }

    public static let activity = "tracing UDP traffic"
    public static let filteredCounter = NE_UDP_STAT_FILTERED.rawValue

    private let options: Options
    private let clock: WallClock
    private let ledger: FlowLedger
    private let flows: BPFMap<ne_udp_key, ne_udp_flow>?
    private let idleEvictions = Atomic<UInt64>(0)

    public init(configuration: Configuration, module: BPFModule?, clock: WallClock) throws(BPFError) {
        self.options = configuration.options
        self.clock = clock
        self.ledger = FlowLedger(clock: clock)
        self.flows = try module?.table("flows").typed()
    }

    public var scanInterval: Duration? { flows == nil ? nil : .seconds(options.interval) }

    /// Turns a close sample into the flow's last event; a flush request into the last events of
    /// every flow of the socket.
    public func decode(_ raw: UnsafeRawBufferPointer, into events: inout [UDPTrafficEvent]) throws(BPFError) {
        let close = try UDPFlowDecoder.close(raw)
        let time = clock.wallClock(fromMonotonic: close.closeNanoseconds)
        guard let flow = close.flow else {
            // The socket had more flows than the kernel tracks per socket: flush the others.
            flushSocket(close.socket, closeNanoseconds: close.closeNanoseconds, time: time, into: &events)
            return
        }
        if let event = ledger.finish(flow, reason: .close, at: time) { events.append(event) }
    }

    /// Reports what every flow moved since its last report; frees flows idle too long, and those
    /// whose close found the kernel's buffer full (their last report, `.close`).
    public func scan(into events: inout [UDPTrafficEvent], final: Bool) {
        guard let flows, let keys = try? flows.keys() else { return }
        let time = UInt64(WallClock.now(CLOCK_REALTIME))
        let reason: UDPTrafficEvent.Reason = final ? .stop : .interval
        let idleLimit = final ? nil : options.idleReportsBeforeEviction
        var seen = Set<FlowKey>()
        for raw in keys where seen.insert(FlowKey(raw)).inserted {  // a walk of a live map can repeat a key
            let event = ledger.scan(
                reason: reason, at: time, idleLimit: idleLimit,
                fetch: { Self.decode(raw, try? flows.lookup(raw)) },
                evict: {
                    let flow = Self.decode(raw, try? flows.lookupAndDelete(raw))
                    if flow != nil { self.idleEvictions.add(1, ordering: .relaxed) }
                    return flow
                },
                collect: { Self.decode(raw, try? flows.lookupAndDelete(raw)) })
            if let event { events.append(event) }
        }
        ledger.endScan()
    }

    private func flushSocket(_ socket: UInt64, closeNanoseconds: UInt64, time: UInt64, into events: inout [UDPTrafficEvent]) {
        guard let flows, let keys = try? flows.keys() else { return }
        for key in keys where key.sk == socket {
            // Not the flows of a new socket made at the same address since the close.
            guard let value = try? flows.lookup(key), value.start_ns <= closeNanoseconds else { continue }
            if let flow = Self.decode(key, try? flows.lookupAndDelete(key)),
                let event = ledger.finish(flow, reason: .close, at: time)
            {
                events.append(event)
            }
        }
    }

    private static func decode(_ key: ne_udp_key, _ value: ne_udp_flow?) -> UDPFlow? {
        value.flatMap { UDPFlowDecoder.flow(key: key, $0) }
    }

    public func counters(_ kernel: KernelCounters) -> Counters {
        var counters = Counters()
        counters.flows = kernel[NE_UDP_STAT_FLOWS.rawValue]
        counters.unattributedPackets = kernel[NE_UDP_STAT_UNTRACKED_TX_PACKETS.rawValue] + kernel[NE_UDP_STAT_UNTRACKED_RX_PACKETS.rawValue]
        counters.unattributedBytes = kernel[NE_UDP_STAT_UNTRACKED_TX_BYTES.rawValue] + kernel[NE_UDP_STAT_UNTRACKED_RX_BYTES.rawValue]
        counters.closes = kernel[NE_UDP_STAT_CLOSES.rawValue]
        counters.sharedSocketOverflows = kernel[NE_UDP_STAT_SHARED_OVERFLOW.rawValue]
        counters.deferredCloses = kernel[NE_UDP_STAT_DEFERRED_CLOSES.rawValue]
        counters.idleEvictions = idleEvictions.load(ordering: .relaxed)
        return counters
    }

    /// A hashable copy of a raw key (no allocation: a scan makes one per flow).
    private struct FlowKey: Hashable {
        var socket: UInt64
        var pid: UInt32
        var port: UInt16, family: UInt16
        var address: (high: UInt64, low: UInt64)
        init(_ raw: ne_udp_key) {
            socket = raw.sk
            pid = raw.pid
            port = raw.peer.port
            family = raw.peer.family
            address = withUnsafeBytes(of: raw.peer.addr) { ($0.loadUnaligned(as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
        }
        static func == (a: FlowKey, b: FlowKey) -> Bool {
            a.socket == b.socket && a.pid == b.pid && a.port == b.port && a.family == b.family && a.address == b.address
        }
        func hash(into hasher: inout Hasher) {
            hasher.combine(socket)
            hasher.combine(pid)
            hasher.combine(port)
            hasher.combine(address.high)
            hasher.combine(address.low)
        }
    }
}
