import CLibBPF
import Glibc
import Synchronization
import SystemPackage

/// Reads a `BPF_RINGBUF_OUTPUT` table: one ring shared by all CPUs, in order, polled on its own
/// thread.
///
/// The kernel does not count what a full ring refuses; programs do, when `bpf_ringbuf_output` or
/// `bpf_ringbuf_reserve` fails. Pass that counter (an array or per-CPU array of `u64`, read at
/// key 0) as `lostCounter` and ``lostSamples`` reports it.
///
/// Minimum kernel: 5.8. The corresponding C functions are libbpf's `ring_buffer__new`,
/// `ring_buffer__epoll_fd` and `ring_buffer__consume`.
public final class RingBuffer: SampleSource {
    /// The table being read.
    public let table: BPFTable
    private let lost: LostCounter?
    /// The shortest time between two drains (see ``init(table:lostCounter:minimumDrainInterval:)``).
    public let minimumDrainInterval: Duration
    private let state = Locked<State?>(nil)

    private struct State: @unchecked Sendable {
        var ring: OpaquePointer
        var context: Unmanaged<Context>
        var thread: PollThread
    }

    final class Context: Sendable {
        let handler: SampleHandler
        init(handler: SampleHandler) { self.handler = handler }
    }

    /// - Parameters:
    ///   - table: a `BPF_RINGBUF_OUTPUT` table.
    ///   - lostCounter: the program's count of samples the ring refused.
    ///   - minimumDrainInterval: the shortest time between two drains: a burst is then read in
    ///     batches, at the cost of up to this much latency. Zero reads every sample at once.
    /// - Throws: `BPFError.invalidArgument` when `table` is not a ring buffer or `lostCounter` is
    ///   not a map of `u32` keys and `u64` values.
    public init(table: BPFTable, lostCounter: BPFTable? = nil, minimumDrainInterval: Duration = .zero) throws(BPFError) {
        guard table.type == .ringBuffer else {
            throw BPFError.invalidArgument("\(table.name) is a \(table.type) map, not a ring buffer (BPF_RINGBUF_OUTPUT)")
        }
        self.table = table
        self.lost = try lostCounter.map { (counter) throws(BPFError) in LostCounter(map: try BPFMap(table: counter)) }
        self.minimumDrainInterval = minimumDrainInterval
    }

    /// Samples the program counted as refused by the full ring (0 without a `lostCounter`).
    public var lostSamples: UInt64 { lost?.total ?? 0 }

    /// Reads the program's counter and reports growth since the last report.
    private final class LostCounter: Sendable {
        let map: BPFMap<UInt32, UInt64>
        let reported = Atomic<UInt64>(0)
        init(map: BPFMap<UInt32, UInt64>) { self.map = map }

        var total: UInt64 { (try? map.lookupPerCPU(0)?.reduce(0, +)) ?? 0 }

        func report(to handler: SampleHandler) {
            let now = total
            let before = reported.exchange(now, ordering: .relaxed)
            if now > before { handler.onLost(now - before) }
        }
    }

    /// Opens the ring and starts the poll thread.
    ///
    /// A closed buffer can be started again.
    /// - Parameter handler: receives the samples and lost reports on the poll thread.
    /// - Throws: `BPFError.alreadyStarted` when it runs already, `.notPrivileged`,
    ///   `.bufferFailed` when the ring cannot be opened, `.systemCallFailed` when the poll thread
    ///   cannot start. Nothing stays open then.
    public func start(_ handler: SampleHandler) throws(BPFError) {
        try state.withLock { (state) throws(BPFError) in
            guard state == nil else { throw BPFError.alreadyStarted("ring buffer \(table.name)") }
            let context = Unmanaged.passRetained(Context(handler: handler))
            guard let ring = ring_buffer__new(table.fd, ringSampleCallback, context.toOpaque(), nil) else {
                let code = Errno.current
                context.release()
                throw BPFError.privileged(code, operation: "opening ring buffer \(table.name)") {
                    .bufferFailed(map: table.name, errno: $0)
                }
            }
            let reportLost: () -> Void = { [lost] in lost?.report(to: handler) }
            let thread: PollThread
            do throws(BPFError) {
                thread = try PollThread(
                    purpose: "the poll thread of ring buffer \(table.name)",
                    fds: [ring_buffer__epoll_fd(ring)], timeoutMilliseconds: 100, minimumDrainInterval: minimumDrainInterval,
                    onReadable: { _ in
                        _ = ring_buffer__consume(ring)
                        reportLost()
                        handler.onBatchEnd()
                    },
                    onStop: {
                        _ = ring_buffer__consume(ring)
                        reportLost()
                        handler.onBatchEnd()
                    })
            } catch {
                ring_buffer__free(ring)
                context.release()
                throw error
            }
            state = State(ring: ring, context: context, thread: thread)
        }
    }

    /// Drains what is buffered, stops the poll thread and frees the ring. Safe to call more than
    /// once, and before ``start(_:)``.
    public func close() {
        guard let old = state.withLock({ $0.take() }) else { return }
        old.thread.stop()
        ring_buffer__free(old.ring)
        old.context.release()
    }

    deinit { close() }
}

private func ringSampleCallback(_ cookie: UnsafeMutableRawPointer?, _ data: UnsafeMutableRawPointer?, _ size: Int) -> Int32 {
    guard let cookie, let data else { return 0 }
    let context = Unmanaged<RingBuffer.Context>.fromOpaque(cookie).takeUnretainedValue()
    context.handler.onSample(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
