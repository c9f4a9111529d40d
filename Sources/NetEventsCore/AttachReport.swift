/// What a monitor chose at start, for logs and bug reports: hooks, transport, where offsets came
/// from, the header tree, every attachment, and why a better choice was passed over.
///
/// The chosen hooks read as the report's own members (`report.hook`).
@dynamicMemberLookup
public struct AttachReport<Hooks: Sendable & Equatable & CustomStringConvertible>: Sendable, CustomStringConvertible {
    /// The hooks the kind chose.
    public var hooks: Hooks
    /// How samples travel.
    public var transport: SampleTransport
    /// Where the struct offsets came from.
    public var offsetSource: OffsetSource
    /// The header tree BCC compiled against.
    public var headers: KernelHeaders
    /// Every attachment, e.g. `tracepoint sock:inet_sock_set_state`.
    public var attachments: [String]
    /// Why a better hook or option was passed over, when one was.
    public var notes: [String]

    /// A chosen hook, as the report's own member.
    @inlinable public subscript<Value>(dynamicMember keyPath: KeyPath<Hooks, Value>) -> Value { hooks[keyPath: keyPath] }

    /// Whether the events may carry wrong fields: offsets taken from headers of another kernel
    /// (only when ``MonitorConfiguration/acceptsEstimatedOffsets``; each event then says so).
    public var offsetsUntrusted: Bool { offsetSource == .headers && !headers.matchesRunningKernel }

    public var description: String {
        var text = "\(hooks), transport: \(transport.rawValue), offsets: \(offsetSource.rawValue)"
        switch headers.source {
        case .distribution(let release): text += ", headers: \(release)"
        case .environment: text += ", headers: BCC_KERNEL_SOURCE"
        case .runningKernel: text += ", headers: running kernel"
        case .kheaders: text += ", headers: kheaders"
        }
        if offsetsUntrusted {
            text += " (WARNING: header offsets from another kernel version; counters may be wrong)"
        }
        text += "; attached: " + attachments.joined(separator: ", ")
        if !notes.isEmpty { text += "; " + notes.joined(separator: "; ") }
        return text
    }
}

/// Counters that say what, if anything, a monitor missed, the same for every kind, and the
/// kind's own (which read as the statistics' own members: `statistics.trackedSockets`).
@dynamicMemberLookup
public struct MonitorStatistics<Counters: EventKindCounters>: Sendable, Equatable {
    /// Samples the kernel could not hand over (the buffer was full): the events they carried are missing.
    public var lostSamples: UInt64 = 0
    /// Events dropped because the consumer fell ``MonitorConfiguration/deliveryCapacity`` behind,
    /// or because it had not taken them when a stop's ``MonitorConfiguration/stopGracePeriod`` ran out.
    public var droppedEvents: UInt64 = 0
    /// Samples that could not be decoded (each skipped, the last error in ``EventMonitor/lastDecodingError``).
    public var malformedSamples: UInt64 = 0
    /// Records the filters discarded: events for TCP, datagrams for UDP. The kernel discards them,
    /// but for TCP closes whose owner the kernel did not know while the poll of open connections
    /// is on (an interval set): those are filtered once the poll has named their owner, or found
    /// none (an unknown owner passes no pid, uid or cgroup filter).
    public var filteredEvents: UInt64 = 0
    /// Runs of the monitor's kernel programs that the kernel skipped, because an eBPF program was
    /// already running on that CPU when its hook fired (`BPFProgram.missedRuns`). A skipped run
    /// may be an event that was never made (a close, say) or an owner not recorded: like
    /// ``lostSamples``, a count of what is missing. Rare (2 of 204,000 state changes in a close of
    /// 102,000 loopback sockets at once). Nil where the kernel skips such runs without counting
    /// them: tracepoint and kprobe programs before Linux 6.7.
    public var missedProgramRuns: UInt64? = 0
    /// Hits of the hook that makes the events that no run of the monitor's program saw, by the
    /// kernel's own count of that hook (perf events counting its tracepoint,
    /// ``EventKind/crossCheck(_:)``): for TCP, closes. A close whose run the kernel skipped is
    /// among them whether the skip is in ``missedProgramRuns`` (which also counts other programs
    /// and other state changes) or was counted nowhere (seen on Linux 6.18: about 1 close in 3
    /// million, in a softirq at the timer tick). A close in flight when it is read, at start or at
    /// stop, is taken for seen. Blind spots: a tracepoint program of another tool on the same
    /// tracepoint that returns 0 (BCC's `tcplife` does) keeps its hits from the kernel's count,
    /// and a CPU brought online after start is not counted. Nil where the kind has no such count
    /// (UDP, DNS; TCP on the kprobe and fentry hooks, with offsets from headers, or before Linux
    /// 5.6) or the kernel refused the perf events (the attach report's notes say why).
    public var unseenEvents: UInt64? = nil
    /// The kind's own counters.
    public var kind: Counters

    /// Statistics with every counter zero.
    public init(kind: Counters = Counters()) { self.kind = kind }

    /// A counter of the kind, as the statistics' own member.
    @inlinable public subscript<Value>(dynamicMember keyPath: KeyPath<Counters, Value>) -> Value { kind[keyPath: keyPath] }
}

/// The per-CPU counters of a program (its `stats` array), summed over CPUs. Slot numbers are the
/// kind's counter enum in its contract header; reads of a monitor without a program are zero.
public struct KernelCounters: Sendable {
    let map: BPFMap<UInt32, UInt64>?

    /// The sum over CPUs of one slot; zero when it cannot be read.
    public subscript(slot: UInt32) -> UInt64 {
        (try? map?.lookupPerCPU(slot)?.reduce(0, +)) ?? 0
    }
}
