internal import CPerfEvents
import Glibc

/// The kernel's own count of a tracepoint's hits that pass a filter, on every CPU: perf events in
/// counting mode, which keep no record and run no program. Held against the runs a program counts
/// itself, it tells the hits the program never ran for, whether the kernel counted the skip
/// (``BPFProgram/missedRuns``) or not.
///
/// Counts from its creation (each event enabled once its filter is set) until ``freeze()``. The
/// CPUs are those online at creation: a CPU brought online later, or taken offline and back, is
/// not counted. A tracepoint program that returns 0 on the same tracepoint (BCC's tools do) keeps
/// its hits from every perf event there, this count's included.
public final class TracepointCounter: Sendable {
    private enum State {
        case counting([Int32])
        /// Disabled, with what it counted; the descriptors stay open until deinit (closing the
        /// last perf event of a tracepoint waits for an RCU grace period).
        case frozen(UInt64, [Int32])
    }
    private let state: Locked<State>

    /// Opens a counting perf event on each online CPU, sets its filter, then enables them all.
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
        attributes.disabled = 1  // until its filter is set: unfiltered, it would count every hit
        var opened: [Int32] = []
        do throws(BPFError) {
            for cpu in CPUs.online {
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
        state = Locked(.counting(opened))
    }

    /// Hits counted so far on all CPUs (after ``freeze()``, those before it).
    public var count: UInt64 {
        state.withLock { state in
            switch state {
            case .counting(let descriptors): Self.sum(descriptors)
            case .frozen(let total, _): total
            }
        }
    }

    /// Stops counting and returns the count, which ``count`` then keeps. Safe to call more than once.
    @discardableResult
    public func freeze() -> UInt64 {
        state.withLock { state in
            switch state {
            case .frozen(let total, _):
                return total
            case .counting(let descriptors):
                descriptors.forEach { _ = ne_perf_event_disable($0) }
                let total = Self.sum(descriptors)
                state = .frozen(total, descriptors)
                return total
            }
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

    deinit {
        state.withLock { state in
            switch state {
            case .counting(let descriptors), .frozen(_, let descriptors): descriptors.forEach { _ = Glibc.close($0) }
            }
        }
    }
}
