import CBCCLoader
import Glibc
import Synchronization
import SystemPackage

/// Reads a `BPF_PERF_OUTPUT` table: one perf ring per online CPU, polled on its own thread.
///
/// The kernel drops samples when a CPU's ring is full and reports how many; those reports are
/// summed in ``lostSamples`` and passed to the handler's `onLost`.
///
/// Minimum kernel: 4.4. The corresponding C functions are BCC's `bpf_open_perf_buffer_opts`
/// and `perf_reader_event_read`.
public final class PerfBuffer: SampleSource {
    /// The table being read.
    public let table: BPFTable
    /// Pages (of 4 KiB) per CPU ring; a power of two.
    public let pageCount: Int
    /// Samples a CPU's ring collects before it wakes the reader (1: every sample).
    public let wakeupEvents: Int
    /// The shortest time between two drains (see ``init(table:pageCount:wakeupEvents:minimumDrainInterval:)``).
    public let minimumDrainInterval: Duration

    private let lost = LostCount()
    private let state = Locked<State?>(nil)

    private struct State: @unchecked Sendable {
        var readers: [OpaquePointer]
        var context: Unmanaged<Context>
        var thread: PollThread
    }

    /// The lost-sample total, shared with the C callbacks' context. The context must not hold the
    /// buffer itself: that would keep a started buffer alive forever, so deinit could never close it.
    final class LostCount: Sendable {
        let value = Atomic<UInt64>(0)
    }

    final class Context: Sendable {
        let handler: SampleHandler
        let lost: LostCount
        init(handler: SampleHandler, lost: LostCount) {
            self.handler = handler
            self.lost = lost
        }
    }

    /// - Parameters:
    ///   - table: a `BPF_PERF_OUTPUT` table.
    ///   - pageCount: pages per CPU ring, a power of two (BCC's default is 8; 64 absorbs bursts).
    ///   - wakeupEvents: samples per wakeup; above 1 trades latency (bounded by a 100 ms poll
    ///     timeout) for fewer wakeups.
    ///   - minimumDrainInterval: the shortest time between two drains: a burst is then read in
    ///     batches, at the cost of up to this much latency. Zero reads every sample at once.
    /// - Throws: `BPFError.invalidArgument` when `table` is not a perf event array or a count is
    ///   out of range.
    public init(
        table: BPFTable, pageCount: Int = 64, wakeupEvents: Int = 1, minimumDrainInterval: Duration = .zero
    ) throws(BPFError) {
        guard table.type == .perfEventArray else {
            throw BPFError.invalidArgument("\(table.name) is a \(table.type) map, not a perf event array (BPF_PERF_OUTPUT)")
        }
        guard pageCount > 0, pageCount & (pageCount - 1) == 0 else {
            throw BPFError.invalidArgument("perf buffer page count must be a power of two, got \(pageCount)")
        }
        guard wakeupEvents >= 1 else { throw BPFError.invalidArgument("wakeupEvents must be at least 1") }
        self.table = table
        self.pageCount = pageCount
        self.wakeupEvents = wakeupEvents
        self.minimumDrainInterval = minimumDrainInterval
    }

    /// Samples the kernel dropped because a CPU's ring was full, summed since the first start.
    public var lostSamples: UInt64 { lost.value.load(ordering: .relaxed) }

    /// Opens one ring per online CPU, enters them in the table, and starts the poll thread.
    ///
    /// A closed buffer can be started again.
    /// - Parameter handler: receives the samples and lost reports on the poll thread.
    /// - Throws: `BPFError.alreadyStarted` when it runs already, `.notPrivileged`,
    ///   `.bufferFailed` when a ring cannot be opened, `.mapOperationFailed` when it cannot be
    ///   entered in the table, `.systemCallFailed` when the poll thread cannot start. Nothing
    ///   stays open then.
    public func start(_ handler: SampleHandler) throws(BPFError) {
        try state.withLock { (state) throws(BPFError) in
            guard state == nil else { throw BPFError.alreadyStarted("perf buffer \(table.name)") }
            let context = Unmanaged.passRetained(Context(handler: handler, lost: lost))
            var readers: [OpaquePointer] = []
            // Undo everything opened so far if a later CPU fails.
            var succeeded = false
            defer {
                if !succeeded {
                    readers.forEach { LibBCC.functions.perf_reader_free(UnsafeMutableRawPointer($0)) }
                    context.release()
                }
            }
            for cpu in CPUs.online {
                var options = bcc_perf_buffer_opts(pid: -1, cpu: cpu, wakeup_events: Int32(wakeupEvents))
                guard let raw = LibBCC.functions.bpf_open_perf_buffer_opts(
                    perfRawCallback, perfLostCallback, context.toOpaque(), Int32(pageCount), &options)
                else {
                    let code = Errno.current
                    throw BPFError.privileged(code, operation: "opening perf buffer \(table.name)") {
                        .bufferFailed(map: table.name, errno: $0)
                    }
                }
                let reader = OpaquePointer(raw)
                readers.append(reader)
                var key = cpu
                var fd = LibBCC.functions.perf_reader_fd(reader)
                guard LibBCC.functions.bpf_update_elem(table.fd, &key, &fd, 0) == 0 else {
                    throw BPFError.mapOperationFailed(map: table.name, operation: "update", errno: .current)
                }
            }
            let all = readers
            let drain: ([Int]) -> Void = { indices in
                for index in indices { LibBCC.functions.perf_reader_event_read(all[index]) }
                handler.onBatchEnd()
            }
            let thread = try PollThread(
                purpose: "the poll thread of perf buffer \(table.name)",
                fds: readers.map { LibBCC.functions.perf_reader_fd($0) }, timeoutMilliseconds: 100, minimumDrainInterval: minimumDrainInterval,
                onReadable: drain, onStop: { drain(Array(all.indices)) })
            state = State(readers: readers, context: context, thread: thread)
            succeeded = true
        }
    }

    /// Drains what is buffered, stops the poll thread, removes the rings from the table and frees
    /// them. Safe to call more than once, and before ``start(_:)``.
    public func close() {
        guard let old = state.withLock({ $0.take() }) else { return }
        old.thread.stop()
        for (cpu, reader) in zip(CPUs.online, old.readers) {
            var key = cpu
            _ = LibBCC.functions.bpf_delete_elem(table.fd, &key)
            LibBCC.functions.perf_reader_free(UnsafeMutableRawPointer(reader))
        }
        old.context.release()
    }

    deinit { close() }
}

private func perfRawCallback(_ cookie: UnsafeMutableRawPointer?, _ data: UnsafeMutableRawPointer?, _ size: Int32) {
    guard let cookie, let data else { return }
    let context = Unmanaged<PerfBuffer.Context>.fromOpaque(cookie).takeUnretainedValue()
    context.handler.onSample(UnsafeRawBufferPointer(start: data, count: Int(size)))
}

private func perfLostCallback(_ cookie: UnsafeMutableRawPointer?, _ count: UInt64) {
    guard let cookie else { return }
    let context = Unmanaged<PerfBuffer.Context>.fromOpaque(cookie).takeUnretainedValue()
    context.lost.value.add(count, ordering: .relaxed)
    context.handler.onLost(count)
}
