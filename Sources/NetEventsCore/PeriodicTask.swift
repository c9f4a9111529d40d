import Foundation

/// Runs a closure every `interval` on its own thread until stopped; `stop()` waits for a run in
/// progress and returns promptly otherwise.
final class PeriodicTask: @unchecked Sendable {
    // Guarded by `condition`.
    private var stopping = false
    private var finished = false
    private let condition = NSCondition()

    init(interval duration: Duration, name: String, _ body: @escaping @Sendable () -> Void) {
        let interval = duration.seconds
        let thread = Thread { [self] in
            var next = Date().addingTimeInterval(interval)
            while true {
                condition.lock()
                while !stopping && Date() < next { _ = condition.wait(until: next) }
                let stop = stopping
                condition.unlock()
                if stop { break }
                body()
                next = next.addingTimeInterval(interval)
                if next < Date() { next = Date().addingTimeInterval(interval) }  // fell behind: skip, do not burst
            }
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = name
        thread.start()
    }

    /// Stops the task and waits for its thread to end. Safe to call twice.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
