/// What an event kind (TCP connections, UDP traffic, ...) supplies to the monitor core: its
/// program, flags and hook ladder, its decoder and its counters. Everything else (start and
/// stop, delivery by callback or `AsyncSequence`, the common options and filters, the attach
/// scaffolding, statistics) is ``EventMonitor``'s, the same for every kind.
///
/// An instance is the kind's state for one run of a monitor, made once the program is attached
/// (or, for a monitor over an injected `SampleSource`, without a program).
/// Its `decode` and `scan` are called on the core's single producer path, never concurrently
/// with each other; `counters(_:)` may be called from any thread at any time (for statistics).
public protocol EventKind: Sendable {
    /// What the kind delivers.
    associatedtype Event: Sendable
    /// The kind's own options (its hook overrides, map sizes, intervals).
    associatedtype Options: EventKindOptions
    /// The hooks chosen at start, reported in ``AttachReport``.
    associatedtype Hooks: Sendable, Equatable, CustomStringConvertible
    /// The kind's own counters, reported in ``MonitorStatistics``.
    associatedtype Counters: EventKindCounters

    /// What the kind does, for errors and reports: "tracing TCP connections".
    static var activity: String { get }

    /// The default size of the kernel buffer, in pages (``MonitorConfiguration/bufferPages``).
    static var defaultBufferPages: Int { get }

    /// The per-CPU counter slot (of the program's `stats` array) that counts records the in-kernel
    /// filters discarded.
    static var filteredCounter: UInt32 { get }

    /// Chooses the hooks (the configured ones, or the best the kernel has, by probing) and fills
    /// in the program: its text, its flags and the struct members it reads.
    /// - Throws: `BPFError.notSupported` when no hook of the kind works on this kernel.
    static func plan(
        _ configuration: MonitorConfiguration<Self>, features: KernelFeatures, into program: inout ProgramPlan
    ) throws(BPFError) -> Hooks

    /// The capabilities a monitor of this kind needs with `configuration`, checked before anything
    /// is compiled so that a missing one is named rather than met as a failure inside the compile.
    /// By default what every monitor needs here (`SystemChecks.monitorNeeds`).
    static func capabilityNeeds(_ configuration: MonitorConfiguration<Self>) -> [CapabilityNeed]

    /// Loads and attaches the programs of the chosen hooks, appending each link as it is made (the
    /// core closes them all if a later step fails). The order is the kind's: each hook comes after
    /// the hooks it depends on (owners and socket ids before the hook that reports them; a
    /// socket's close before the hooks that count its traffic), so nothing is reported unseen.
    /// Stop detaches in the reverse order, so each hook also goes before what it depends on.
    static func attach(_ hooks: Hooks, module: BPFModule, links: inout [BPFLink]) throws(BPFError)

    /// The tracepoint whose hits the kernel counts against the program's runs
    /// (``MonitorStatistics/unseenEvents``), for these hooks; nil for none (the default).
    static func crossCheck(_ hooks: Hooks) -> KernelCrossCheck?

    /// The state of one run.
    /// - Parameters:
    ///   - configuration: the monitor's options.
    ///   - module: the loaded program, whose maps the kind may read; nil over an injected source.
    ///   - clock: maps the kernel's monotonic timestamps to wall-clock time.
    init(configuration: MonitorConfiguration<Self>, module: BPFModule?, clock: WallClock) throws(BPFError)

    /// Decodes one raw sample, appending what it yields (none, one or several events).
    /// - Throws: `BPFError.malformedSample` for a sample no kernel writes; it is counted and skipped.
    func decode(_ raw: UnsafeRawBufferPointer, into events: inout [Event]) throws(BPFError)

    /// The slow half of ``begin(into:)`` and of each ``scan(into:final:)`` but the final one
    /// (listing what the kernel has open, say), run just before it outside the producer's lock, so
    /// samples go on being decoded meanwhile.
    func prepare()

    /// Appends what the kind reports once tracing has started (what was already there, say),
    /// before the first sample is delivered or the first ``scan(into:final:)`` runs.
    func begin(into events: inout [Event])

    /// How often ``scan(into:final:)`` runs; nil for kinds that only decode samples.
    var scanInterval: Duration? { get }

    /// Reads what the kernel keeps in maps (counters of live sockets, say) and appends events for
    /// it. Runs every ``scanInterval`` and once more at stop (`final`), after the last sample.
    func scan(into events: inout [Event], final: Bool)

    /// Records the kind's `decode` filtered itself, after the kernel let them through (0 for
    /// kinds whose filters all run in the kernel); counted in ``MonitorStatistics/filteredEvents``.
    var filteredInUserSpace: UInt64 { get }

    /// The kind's counters, from the program's per-CPU counters.
    func counters(_ kernel: KernelCounters) -> Counters

    /// Names the cgroup and network namespace of `events[start...]`. Kinds whose events are
    /// ``NetworkEvent``s get this from the core; others have nothing to name.
    static func attribute(_ events: inout [Event], from start: Int, with attributor: EventAttributor)
}

extension EventKind {
    /// No cross-check: ``MonitorStatistics/unseenEvents`` is nil.
    public static func crossCheck(_ hooks: Hooks) -> KernelCrossCheck? { nil }

    /// Nothing to name: the events of this kind are no ``NetworkEvent``s.
    public static func attribute(_ events: inout [Event], from start: Int, with attributor: EventAttributor) {}
}

extension EventKind where Event: NetworkEvent {
    /// Names the cgroup and network namespace of each event, through ``EventAttributor``.
    /// (`@inlinable`: each kind's conformance specializes it for its event type.)
    @inlinable public static func attribute(_ events: inout [Event], from start: Int, with attributor: EventAttributor) {
        guard start < events.endIndex else { return }
        events.withUnsafeMutableBufferPointer { all in
            attributor.attribute(UnsafeMutableBufferPointer(rebasing: all[start...]))
        }
    }
}

extension EventKind {
    /// What every monitor needs here: `SystemChecks.monitorNeeds`.
    public static func capabilityNeeds(_ configuration: MonitorConfiguration<Self>) -> [CapabilityNeed] { SystemChecks.monitorNeeds }
    public static var defaultBufferPages: Int { 64 }
    public var scanInterval: Duration? { nil }
    public var filteredInUserSpace: UInt64 { 0 }
    public func begin(into events: inout [Event]) {}
    public func prepare() {}
    public func scan(into events: inout [Event], final: Bool) {}
}

/// The options of an event kind: default values, and a check that names the first bad one.
public protocol EventKindOptions: Sendable, Equatable {
    /// The defaults.
    init()
    /// Throws `BPFError.invalidArgument` naming the first bad option.
    func validate() throws(BPFError)
}

/// The counters of an event kind; all zero when made with `init()`.
public protocol EventKindCounters: Sendable, Equatable {
    /// All counters zero.
    init()
}

extension EventKind {
    /// The configuration of a monitor of this kind.
    public typealias Configuration = MonitorConfiguration<Self>
}
