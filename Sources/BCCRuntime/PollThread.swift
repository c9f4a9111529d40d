import Glibc
import Synchronization
import SystemPackage

/// A thread that waits on file descriptors with `poll(2)`, runs a handler for the readable ones,
/// and stops promptly when asked: `stop()` writes to a pipe the loop also waits on.
final class PollThread: Sendable {
    private let wakeFD: Int32
    private let wakeWriteFD: Int32
    private let thread: Locked<pthread_t?>
    private let stopping = Atomic<Bool>(false)

    private final class Body: @unchecked Sendable {
        // Immutable after init; read only by the thread.
        let fds: [Int32]
        let timeoutMilliseconds: Int32
        let minimumDrainNanoseconds: Int64
        let onReadable: ([Int]) -> Void
        let onStop: () -> Void
        unowned(unsafe) let owner: PollThread
        init(
            fds: [Int32], timeout: Int32, minimumDrain: Int64, owner: PollThread, onReadable: @escaping ([Int]) -> Void,
            onStop: @escaping () -> Void
        ) {
            self.fds = fds
            self.timeoutMilliseconds = timeout
            self.minimumDrainNanoseconds = minimumDrain
            self.owner = owner
            self.onReadable = onReadable
            self.onStop = onStop
        }
    }

    /// Starts the thread.
    /// - Parameters:
    ///   - purpose: what the thread is for, for errors (`the poll thread of perf buffer events`).
    ///   - fds: descriptors to wait on.
    ///   - timeoutMilliseconds: after this long without activity, `onReadable` runs with every index
    ///     (so buffers with a wakeup threshold are still drained).
    ///   - minimumDrainInterval: after a drain, wait this long before the next, so a burst is read
    ///     in one batch instead of one wakeup per sample (the kernel keeps buffering meanwhile).
    ///     It bounds the added latency; zero drains as soon as anything is readable.
    ///   - onReadable: called with the indices into `fds` that are readable.
    ///   - onStop: called once on the thread after `stop()`, to drain what is left.
    /// - Throws: `BPFError.systemCallFailed` when `pipe` or `pthread_create` fails; nothing stays
    ///   open then.
    init(
        purpose: String, fds: [Int32], timeoutMilliseconds: Int32, minimumDrainInterval: Duration = .zero,
        onReadable: @escaping ([Int]) -> Void, onStop: @escaping () -> Void
    ) throws(BPFError) {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else {
            throw BPFError.systemCallFailed(call: "pipe", purpose: "waking \(purpose)", errno: .current)
        }
        for fd in pipeFDs {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        }
        wakeFD = pipeFDs[0]
        wakeWriteFD = pipeFDs[1]
        thread = Locked(nil)
        let (seconds, attoseconds) = minimumDrainInterval.components
        let minimumDrain = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        let body = Body(
            fds: fds, timeout: timeoutMilliseconds, minimumDrain: minimumDrain, owner: self, onReadable: onReadable,
            onStop: onStop)
        var handle = pthread_t()
        let context = Unmanaged.passRetained(body).toOpaque()
        let result = pthread_create(&handle, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            body.owner.run(body)
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            close(wakeFD)
            close(wakeWriteFD)
            // pthread_create returns its error number rather than setting errno.
            throw BPFError.systemCallFailed(call: "pthread_create", purpose: purpose, errno: Errno(rawValue: result))
        }
        thread.withLock { $0 = handle }
    }

    private func run(_ body: Body) {
        var pollFDs = (body.fds + [wakeFD]).map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let all = Array(body.fds.indices)
        var wakeOnly = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        var lastDrain: Int64 = 0
        while !stopping.load(ordering: .acquiring) {
            if body.minimumDrainNanoseconds > 0 {
                // Let samples gather until the interval since the last drain has passed; a stop
                // still wakes this wait at once.
                let wait = lastDrain + body.minimumDrainNanoseconds - monotonicNanoseconds()
                if wait > 0 && poll(&wakeOnly, 1, Int32((wait + 999_999) / 1_000_000)) > 0 { break }
            }
            let ready = poll(&pollFDs, nfds_t(pollFDs.count), body.timeoutMilliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 {
                body.onReadable(all)
                continue
            }
            if pollFDs[pollFDs.count - 1].revents != 0 { break }
            let readable = all.filter { pollFDs[$0].revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 }
            if body.minimumDrainNanoseconds > 0 { lastDrain = monotonicNanoseconds() }
            body.onReadable(readable)
        }
        body.onStop()
    }

    /// Wakes the thread, lets it drain, and waits for it to end. Safe to call more than once.
    func stop() {
        guard let handle = thread.withLock({ handle -> pthread_t? in
            defer { handle = nil }
            return handle
        }) else { return }
        stopping.store(true, ordering: .releasing)
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)
        pthread_join(handle, nil)
        close(wakeFD)
        close(wakeWriteFD)
    }

    deinit { stop() }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds.
private func monotonicNanoseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
}
