internal import CPerfEvents
import Glibc

/// The kernel's own count of a tracepoint's hits that pass a filter, on every CPU: perf events in
/// counting mode, which keep no record and run no program. Held against the runs a program counts
/// itself, it tells the hits the program never ran for, whether the kernel counted the skip
/// (``BPFProgram/missedRuns``) or not.
///
/// Counts from its creation; ``freeze()`` stops it (a stop freezes it before it detaches the
/// program, so what happens after is not taken for unseen). CPUs brought online later are not
/// counted.
public final class TracepointCounter: Sendable {
    private let descriptors: Locked<[Int32]>
    private let frozenCount = Locked<UInt64?>(nil)

    /// Opens and enables a counting perf event on each online CPU.
    /// - Parameters:
    ///   - category: the tracepoint's category (`sock`).
    ///   - name: its name (`inet_sock_set_state`).
    ///   - filter: an ftrace filter over the record's fields (`protocol == 6 && newstate == 7`).
    /// - Throws: `BPFError` when tracefs does not name the tracepoint or the kernel refuses an event
    ///   (`perf_event_open` needs `CAP_PERFMON`).
    public init(category: String, name: String, filter: String) throws(BPFError) {
        guard let tracefs = SystemChecks.tracefsPath else { throw .tracefsNotMounted }
        let idPath = "\(tracefs)/events/\(category)/\(name)/id"
        guard let text = SystemChecks.readKernelFile(idPath), let id = text.split(whereSeparator: \.isWhitespace).first.flatMap({ UInt64($0) })
        else { throw .noSuchObject(kind: "tracepoint", name: "\(category):\(name)") }
        var attributes = perf_event_attr()
        attributes.type = UInt32(PERF_TYPE_TRACEPOINT.rawValue)
        attributes.size = UInt32(MemoryLayout<perf_event_attr>.size)
        attributes.config = id
        attributes.sample_period = 0  // counting only: no samples, no buffer
        var opened: [Int32] = []
        do throws(BPFError) {
            for cpu in 0..<Int32(sysconf(Int32(_SC_NPROCESSORS_ONLN))) {
                let fd = ne_perf_event_open(&attributes, -1, cpu)
                guard fd >= 0 else { throw .systemCallFailed(call: "perf_event_open", purpose: "counting \(category):\(name) on CPU \(cpu)", errno: .current) }
                opened.append(fd)
                guard ne_perf_event_set_filter(fd, filter) == 0 else {
                    throw .systemCallFailed(call: "ioctl(PERF_EVENT_IOC_SET_FILTER)", purpose: "filtering \(category):\(name) by \(filter)", errno: .current)
                }
            }
            for fd in opened where ne_perf_event_enable(fd) != 0 {
                throw .systemCallFailed(call: "ioctl(PERF_EVENT_IOC_ENABLE)", purpose: "counting \(category):\(name)", errno: .current)
            }
        } catch {
            opened.forEach { _ = Glibc.close($0) }
            throw error
        }
        descriptors = Locked(opened)
    }

    /// Hits counted so far on all CPUs (after ``freeze()``, those before it).
    public var count: UInt64 {
        if let frozen = frozenCount.withLock({ $0 }) { return frozen }
        return descriptors.withLock { Self.sum($0) }
    }

    /// Stops counting; ``count`` keeps what was counted. Safe to call more than once.
    public func freeze() {
        descriptors.withLock { descriptors in
            guard !descriptors.isEmpty else { return }
            descriptors.forEach { _ = ne_perf_event_disable($0) }
            let total = Self.sum(descriptors)
            frozenCount.withLock { $0 = total }
            descriptors.forEach { _ = Glibc.close($0) }
            descriptors = []
        }
    }

    private static func sum(_ descriptors: [Int32]) -> UInt64 {
        var total: UInt64 = 0
        for fd in descriptors {
            var value: UInt64 = 0
            if read(fd, &value, MemoryLayout<UInt64>.size) == MemoryLayout<UInt64>.size { total += value }
        }
        return total
    }

    deinit { freeze() }
}
