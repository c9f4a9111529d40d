import Logging
import NetEventsCore
import ServiceLifecycle

/// Ends the service group gracefully at SIGTERM or SIGINT: it returns, and the group (which runs
/// it with `successTerminationBehavior: .gracefullyShutdownGroup`) shuts the other services down
/// in reverse order.
///
/// The signals are watched by `TerminationSignals`, made first thing in `main`, rather than by
/// the group's own `gracefulShutdownSignals`: on Linux those are Dispatch sources, whose handler is
/// in place only once the group's signal task has started, and a SIGTERM before that (during the
/// monitors' compile, or even just after the server listens) ended the agent with the signal's
/// default action, status 143, nothing drained.
struct SignalService: Service {
    let signals: TerminationSignals
    let logger: Logger

    func run() async throws {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        signals.onSignal { continuation.yield($0) }  // one that came already is delivered too
        // Returns at the first signal, or when the group is cancelled (the server failed).
        for await number in stream {
            logger.info("signal \(number): shutting down")
            return
        }
    }
}
