internal import CNetEventsABI
internal import UDPEvent
import Synchronization

/// The DNS event kind: every UDP datagram to or from a DNS port, sampled in the kernel with its
/// process, socket, peer and payload as the process sends or receives it, parsed here into
/// ``DNSMessageEvent``s. Its monitor is ``DNSMonitor``.
///
/// The program is `bpf/dns_events.c`, on the datagram hooks it shares with the UDP kind
/// (`bpf/udp_datagrams.h`); its sample and counters are declared in `dns_events_abi.h`.
/// A datagram that is not a DNS message is counted in ``Counters/malformed``, never an event.
public final class DNSKind: EventKind {
    /// The DNS kind's counters (`MonitorStatistics/kind`).
    public struct Counters: EventKindCounters {
        /// Datagrams to or from a DNS port that the kernel sampled.
        public var datagrams: UInt64 = 0
        /// Of those, datagrams whose payload could not be read (moved by a call whose buffer the
        /// program cannot find: io_uring, sendfile, a kernel socket, a 32-bit process).
        public var withoutPayload: UInt64 = 0
        /// Datagrams whose payload is not a DNS message (too short, a bad name, a loop of
        /// compression pointers...).
        public var malformed: UInt64 = 0
        /// Queries forgotten before their response came (too many waiting, or older than
        /// ``Options/queryTimeout``); such a response has no latency.
        public var forgottenQueries: UInt64 = 0

        /// All zero.
        public init() {}
    }

    /// The hooks chosen at start (`AttachReport/hooks`).
    public struct Hooks: Sendable, Equatable, CustomStringConvertible {
        /// The hook that sees each datagram.
        public var hook: HookType
        /// Where `flags` sits among `udp_recvmsg`'s parameters, for the kprobe and fexit hooks.
        public var receiveFlagsArgument: Int
        /// Whether cgroup `sendmsg`/`recvmsg` programs give the peers of unconnected sockets.
        public var peers: Bool
        /// Whether sockets get their kernel cookies (``DNSMessageEvent/socketID``).
        public var socketCookies: Bool
        /// The DNS ports, written into the program's `dns_ports` map before it attaches.
        public var ports: [UInt16]

        /// `hook: ..., peers: ..., socket ids: ..., ports: 53`.
        public var description: String {
            "hook: \(hook), peers: \(peers ? "cgroup sendmsg/recvmsg" : "connected sockets only"), "
                + "socket ids: \(socketCookies ? "cookie" : "none"), ports: \(ports.map(String.init).joined(separator: ","))"
        }
    }

    public static let activity = "tracing DNS"
    public static let filteredCounter = NE_DNS_STAT_FILTERED.rawValue

    private let clock: WallClock
    private let ledger: Locked<QueryLedger>
    private let malformed = Atomic<UInt64>(0)

    public init(configuration: Configuration, module: BPFModule?, clock: WallClock) throws(BPFError) {
        self.clock = clock
        let options = configuration.options
        ledger = Locked(QueryLedger(limit: options.maxPendingQueries, timeoutNanoseconds: UInt64(options.queryTimeout * 1e9)))
    }

    public static func plan(_ configuration: Configuration, features: KernelFeatures, into program: inout ProgramPlan)
        throws(BPFError) -> Hooks
    {
        #if !arch(x86_64)
            throw .notSupported(
                feature: "DNS payloads", minimumKernel: "5.15",
                reason: "reading a datagram's buffer from the system call's registers is written for x86-64 only")
        #endif
        if !KernelVersion.running.isAtLeast(5, 15) {
            throw .notSupported(
                feature: "DNS payloads", minimumKernel: "5.15",
                reason: "the payload is read through bpf_task_pt_regs, which this kernel (\(KernelVersion.running.release)) lacks")
        }
        program.text = EmbeddedBPF.dnsEvents
        program.headers = EmbeddedBPF.headers
        program.offsets = MemberOffset.socketEndpoints + MemberOffset.taskNames
        let datagrams = try UDPKind.planDatagrams(configuration.options.hook, features: features, into: &program)
        let cookies = SocketCookies.plan(features: features, into: &program)
        return Hooks(
            hook: datagrams.hook, receiveFlagsArgument: datagrams.receiveFlagsArgument, peers: datagrams.peers,
            socketCookies: cookies, ports: configuration.options.dnsPorts.sorted())
    }

    public static func attach(_ hooks: Hooks, module: BPFModule, links: inout [BPFLink]) throws(BPFError) {
        let ports: BPFMap<UInt32, UInt8> = try module.table("dns_ports").typed()
        for port in hooks.ports { try ports.update(UInt32(port), 1) }
        if hooks.socketCookies { try SocketCookies.attach(module: module, links: &links, passiveOpens: false) }
        // Where each sendmmsg/recvmmsg starts, before any datagram of one is seen.
        for call in ["sendmmsg", "recvmmsg"] {
            let program = try module.loadProgram("tracepoint__syscalls__sys_enter_\(call)", type: .tracepoint)
            links.append(try BPFLink.tracepoint(program, category: "syscalls", name: "sys_enter_\(call)"))
        }
        try UDPKind.attachDatagrams(hooks.hook, peers: hooks.peers, module: module, links: &links)
    }

    /// Parses one sample into an event; a payload that is no DNS message is counted, not thrown.
    public func decode(_ raw: UnsafeRawBufferPointer, into events: inout [DNSMessageEvent]) throws(BPFError) {
        let sample = try DNSSampleDecoder.decode(raw)
        guard let payload = sample.payload else { return }  // counted by the kernel (withoutPayload)
        let message: DNSMessage
        do {
            message = try DNSMessage(parsing: payload)
        } catch {
            malformed.add(1, ordering: .relaxed)
            return
        }
        let question = message.questions.first
        let key = QueryLedger.Key(
            socket: sample.socket, peer: sample.endpoints.destinationAddress, peerPort: sample.endpoints.destinationPort,
            id: message.id, querySent: message.isResponse ? !sample.isSent : sample.isSent)
        var latency: UInt64?
        if message.isResponse {
            latency = ledger.withLock { $0.response(to: key, at: sample.monotonicNanoseconds) }
        } else {
            ledger.withLock { $0.query(key, at: sample.monotonicNanoseconds) }
        }
        events.append(
            DNSMessageEvent(
                timeNanoseconds: clock.wallClock(fromMonotonic: sample.monotonicNanoseconds),
                kind: message.isResponse ? .response : .query, isSent: sample.isSent, process: sample.process,
                endpoints: sample.endpoints, id: message.id, name: question?.name ?? "",
                queryType: question?.type ?? DNSRecordType(rawValue: 0),
                responseCode: message.isResponse ? message.responseCode : nil,
                answers: message.isResponse ? message.answerAddresses : [], answersIncomplete: message.isResponse && message.answersIncomplete,
                isTruncated: message.isResponse && message.isTruncated,
                latencyNanoseconds: latency, length: sample.length, cgroupID: sample.cgroupID,
                networkNamespace: sample.networkNamespace, socketID: sample.cookie == 0 ? nil : sample.cookie))
    }

    public func counters(_ kernel: KernelCounters) -> Counters {
        var counters = Counters()
        counters.datagrams = kernel[NE_DNS_STAT_SAMPLES.rawValue]
        counters.withoutPayload = kernel[NE_DNS_STAT_NO_PAYLOAD.rawValue]
        counters.malformed = malformed.load(ordering: .relaxed)
        counters.forgottenQueries = ledger.withLock { $0.forgotten }
        return counters
    }
}
