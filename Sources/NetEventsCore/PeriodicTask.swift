import Dispatch
import Foundation
import Synchronization

/// Runs a closure every `interval` on its own thread until stopped; `stop()` waits for a run in
/// progress and returns promptly otherwise. Scheduled on the monotonic clock, so a step of the
/// wall clock (NTP, `date -s`) neither stalls nor bursts the runs.
final class PeriodicTask: Sendable {
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)

    init(interval duration: Duration, name: String, _ body: @escaping @Sendable () -> Void) {
        let nanoseconds = UInt64(max(1_000_000, duration.seconds * 1e9))
        let thread = Thread { [self] in
            var next = DispatchTime.now().uptimeNanoseconds + nanoseconds
            while true {
                let woken = wake.wait(timeout: DispatchTime(uptimeNanoseconds: next)) == .success
                if woken || stopping.load(ordering: .acquiring) { break }
                body()
                next += nanoseconds
                let now = DispatchTime.now().uptimeNanoseconds
                if next < now { next = now + nanoseconds }  // fell behind: skip, do not burst
            }
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Stops the task and waits for its thread to end. Safe to call twice.
    func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.signal()
        finished.wait()
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
