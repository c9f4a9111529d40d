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
        /// Closes (and flush requests of sockets with more flows than the kernel tracks) that found
        /// the kernel's buffer full, in a mass close: they waited in a kernel map and came with the
        /// next scan, within a second, as `.close` events. Late, not lost.
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
    /// Closes and flush requests that found the buffer full (see `bpf/udp_events.c`).
    private let closedFlows: BPFMap<ne_udp_closed_key, ne_udp_flow>?
    private let closedSockets: BPFMap<UInt64, UInt64>?
    private let idleEvictions = Atomic<UInt64>(0)
    /// Scans run at least every second, to report closes that waited; every `ticksPerReport`-th
    /// reports the interval's counts.
    private let ticksPerReport: Int
    private let ticks = Atomic<Int>(0)

    public init(configuration: Configuration, module: BPFModule?, clock: WallClock) throws(BPFError) {
        self.options = configuration.options
        self.clock = clock
        self.ledger = FlowLedger(clock: clock)
        self.flows = try module?.table("flows").typed()
        self.closedFlows = try module?.table("closed_flows").typed()
        self.closedSockets = try module?.table("closed_sockets").typed()
        self.ticksPerReport = max(1, Int(options.interval.rounded(.up)))
    }

    /// The interval split evenly into ticks of at most a second.
    public var scanInterval: Duration? { flows == nil ? nil : .seconds(options.interval / Double(ticksPerReport)) }

    /// Turns a close sample into the flow's last event; a flush request into the last events of
    /// every flow of the socket.
    public func decode(_ raw: UnsafeRawBufferPointer, into events: inout [UDPTrafficEvent]) throws(BPFError) {
        let close = try UDPFlowDecoder.close(raw)
        guard let flow = close.flow else {
            // The socket had more flows than the kernel tracks per socket: flush the others.
            flushSockets([close.socket: close.closeNanoseconds], into: &events)
            return
        }
        if let event = ledger.finish(flow, reason: .close, at: clock.wallClock(fromMonotonic: close.closeNanoseconds)) { events.append(event) }
    }

    /// Reports the closes that found the kernel's buffer full; at each interval (and at stop),
    /// what every flow moved since its last report, freeing flows idle too long.
    public func scan(into events: inout [UDPTrafficEvent], final: Bool) {
        collectWaitingCloses(into: &events)
        guard final || ticks.wrappingAdd(1, ordering: .relaxed).newValue % ticksPerReport == 0 else { return }
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
                })
            if let event { events.append(event) }
        }
        ledger.endScan()
    }

    /// The closes (and flush requests) that found the buffer full, as their samples would have
    /// been: each is taken out of its map as it is reported.
    private func collectWaitingCloses(into events: inout [UDPTrafficEvent]) {
        // Lookup-and-delete needs 5.14 for hash maps; before, a lookup then a delete does: the
        // kernel only adds keys to closed_flows (a later time in closed_sockets between the two
        // leaves the flows begun meanwhile to the interval reports).
        func take<Key, Value>(_ key: Key, from map: BPFMap<Key, Value>) -> Value? {
            if let value = try? map.lookupAndDelete(key) { return value }
            guard let value = try? map.lookup(key) else { return nil }
            _ = try? map.delete(key)
            return value
        }
        if let closedSockets, let sockets = try? closedSockets.keys() {
            var closes: [UInt64: UInt64] = [:]
            for socket in sockets { closes[socket] = take(socket, from: closedSockets) }
            flushSockets(closes, into: &events)
        }
        guard let closedFlows, let keys = try? closedFlows.keys() else { return }
        for key in keys {
            guard let value = take(key, from: closedFlows), let flow = UDPFlowDecoder.flow(key: key.key, value),
                let event = ledger.finish(flow, reason: .close, at: clock.wallClock(fromMonotonic: key.close_ns))
            else { continue }
            events.append(event)
        }
    }

    /// The last events of the flows of sockets that closed with more flows than the kernel tracks
    /// per socket (socket → its close's monotonic time), in one walk of the map for them all.
    private func flushSockets(_ closes: [UInt64: UInt64], into events: inout [UDPTrafficEvent]) {
        guard !closes.isEmpty, let flows, let keys = try? flows.keys() else { return }
        for key in keys {
            // Not the flows of a new socket made at the same address since the close.
            guard let closed = closes[key.sk], let value = try? flows.lookup(key), value.start_ns <= closed else { continue }
            if let flow = Self.decode(key, try? flows.lookupAndDelete(key)),
                let event = ledger.finish(flow, reason: .close, at: clock.wallClock(fromMonotonic: closed))
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
