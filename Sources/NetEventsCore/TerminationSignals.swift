import Dispatch
import Foundation
import Glibc
import Synchronization

/// Waits for SIGINT or SIGTERM, so a program can stop its monitors (which drains what is
/// buffered) and exit cleanly instead of dying with events still in the kernel.
///
/// ```swift
/// let signals = TerminationSignals()          // before the (slow) start: a signal then is kept
/// let monitor = try TCPMonitor()
/// try monitor.start { event in print(event) }
/// let number = await signals.next()            // or signals.wait() outside async code
/// monitor.stop()
/// ```
///
/// Making one replaces the signals' default action (ending the process) with a handler that only
/// notes the signal, on whichever thread the kernel picks: signals sent to the process (Ctrl-C,
/// `kill(1)`, a supervisor's SIGTERM, `kill(getpid(), ...)`) are seen. (A `raise(3)` on a thread
/// that blocks the signal, as Swift concurrency's threads do, stays pending there.) Handlers given
/// to ``onSignal(_:)`` run on a private thread, never on the main actor, so they must be
/// `@Sendable` and must not touch main-actor state directly. The corresponding C function is
/// `sigaction`; the handler writes the signal's number to a pipe (the self-pipe pattern), the only
/// work a signal handler may safely do.
///
/// A signal that came before any instance existed is not lost if the process blocked it from its
/// start, as the package's tools do (their `CEarlySignals` target blocks SIGINT and SIGTERM before
/// `main`, so every thread inherits the block): the kernel keeps a blocked signal pending, even
/// one whose action is to be ignored, and once the handlers are in place the instance's private
/// thread unblocks the watched signals for itself and so receives it, once. That thread is then
/// the one that takes them; the others keep the mask they had.
public final class TerminationSignals: Sendable {
    /// The signals watched.
    public let signals: [Int32]
    private let state = Locked(State())

    private struct State {
        var received: [Int32] = []
        /// How many of `received` ``next()`` has returned.
        var returned = 0
        var waiters: [CheckedContinuation<Int32, Never>] = []
        var handlers: [@Sendable (Int32) -> Void] = []
        /// Threads blocked in ``wait(timeout:)``, woken by the next signal.
        var sleepers: [DispatchSemaphore] = []
    }

    /// Starts watching `signals` (SIGINT and SIGTERM by default).
    public init(_ signals: [Int32] = [SIGINT, SIGTERM]) {
        self.signals = signals
        SignalRelay.shared.watch(signals, for: self)
    }

    /// Stops watching: signals no other instance watches get their default action back (so a
    /// later Ctrl-C ends the process again).
    deinit { SignalRelay.shared.release(signals) }

    fileprivate func deliver(_ number: Int32) {
        let (waiters, handlers) = state.withLock { state in
            state.received.append(number)
            if !state.waiters.isEmpty { state.returned = state.received.count }
            state.sleepers.forEach { $0.signal() }
            state.sleepers = []
            defer { state.waiters = [] }
            return (state.waiters, state.handlers)
        }
        waiters.forEach { $0.resume(returning: number) }
        handlers.forEach { $0(number) }
    }

    /// Whether a watched signal has arrived.
    public var received: Bool { state.withLock { !$0.received.isEmpty } }

    /// Calls `handler` with each watched signal that arrives (and with one that already has), on
    /// a private thread.
    public func onSignal(_ handler: @escaping @Sendable (Int32) -> Void) {
        let already = state.withLock { state in
            state.handlers.append(handler)
            return state.received
        }
        if !already.isEmpty { DispatchQueue.global().async { already.forEach(handler) } }
    }

    /// The next watched signal: one that arrived since the last call returned (at once), or the
    /// next to arrive. A second call after Ctrl-C waits for another Ctrl-C.
    /// - Returns: the signal's number.
    public func next() async -> Int32 {
        await withCheckedContinuation { continuation in
            let pending = state.withLock { state -> Int32? in
                if state.returned < state.received.count {
                    defer { state.returned += 1 }
                    return state.received[state.returned]
                }
                state.waiters.append(continuation)
                return nil
            }
            if let pending { continuation.resume(returning: pending) }
        }
    }

    /// Blocks the calling thread until a watched signal arrives, or until `timeout` has passed.
    /// - Returns: the signal's number, or nil after the timeout.
    public func wait(timeout: Duration? = nil) -> Int32? {
        let semaphore = DispatchSemaphore(value: 0)
        let first = state.withLock { state -> Int32? in
            if let first = state.received.first { return first }
            state.sleepers.append(semaphore)
            return nil
        }
        if let first { return first }
        if let timeout {
            guard semaphore.wait(timeout: .now() + timeout.seconds) == .success else {
                return state.withLock { state in
                    state.sleepers.removeAll { $0 === semaphore }
                    return state.received.first  // nil, unless one arrived just now
                }
            }
        } else {
            semaphore.wait()
        }
        return state.withLock { $0.received.first }
    }
}

/// The write end of the relay's pipe, for the signal handler (which may touch nothing else).
/// Written once, before the first handler is installed.
private nonisolated(unsafe) var relayWriteDescriptor: Int32 = -1

/// One pipe and one thread for the process: the handler writes each signal's number, the thread
/// reads it and tells every ``TerminationSignals`` that watches it.
private final class SignalRelay: Sendable {
    static let shared = SignalRelay()

    private struct Watcher {
        weak var signals: TerminationSignals?
        var numbers: [Int32]
    }
    private let watchers = Locked<[Watcher]>([])
    private let installed = Locked<Set<Int32>>([])

    private init() {
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else { fatalError("TerminationSignals: pipe failed: errno \(errno)") }
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        // The handler may run on the relay thread itself, which must never block in it: with
        // 64 KB of unread numbers the write fails instead (the numbers are already known).
        _ = fcntl(descriptors[1], F_SETFL, fcntl(descriptors[1], F_GETFL) | O_NONBLOCK)
        relayWriteDescriptor = descriptors[1]
        let readDescriptor = descriptors[0]
        let thread = Thread { [self] in
            var byte: UInt8 = 0
            while true {
                let count = read(readDescriptor, &byte, 1)
                if count == 1 && byte == Self.unblockRequest {
                    unblockInstalled()
                } else if count == 1 {
                    relay(Int32(byte))
                } else if count < 0 && errno != EINTR {
                    return
                }
            }
        }
        thread.name = "termination signals"
        thread.start()
    }

    func watch(_ numbers: [Int32], for signals: TerminationSignals) {
        watchers.withLock { watchers in
            watchers.removeAll { $0.signals == nil }
            watchers.append(Watcher(signals: signals, numbers: numbers))
        }
        let fresh = installed.withLock { installed in numbers.filter { installed.insert($0).inserted } }
        for number in fresh {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(relayWriteDescriptor, &byte, 1)
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
        if !fresh.isEmpty {
            // Only now that the handlers are in place: a signal pending since the process blocked
            // it at its start is then handled, not acted on by default or dropped.
            var request = Self.unblockRequest
            _ = write(relayWriteDescriptor, &request, 1)
        }
    }

    /// The byte that asks the relay thread to unblock the installed signals for itself (no signal
    /// is numbered 0).
    private static let unblockRequest: UInt8 = 0

    /// Unblocks every installed signal on the calling thread (the relay thread).
    private func unblockInstalled() {
        var set = sigset_t()
        sigemptyset(&set)
        for number in installed.withLock({ $0 }) { sigaddset(&set, number) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Gives the default action back to each of `numbers` that no live instance still watches.
    func release(_ numbers: [Int32]) {
        let stillWatched = watchers.withLock { watchers -> Set<Int32> in
            watchers.removeAll { $0.signals == nil }
            return Set(watchers.flatMap(\.numbers))
        }
        let released = installed.withLock { installed in
            numbers.filter { !stillWatched.contains($0) && installed.remove($0) != nil }
        }
        for number in released { signal(number, SIG_DFL) }
    }

    private func relay(_ number: Int32) {
        let targets = watchers.withLock { watchers in
            watchers.filter { $0.numbers.contains(number) }.compactMap(\.signals)
        }
        targets.forEach { $0.deliver(number) }
    }
}
