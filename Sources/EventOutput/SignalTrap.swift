import Dispatch
import Glibc

/// Runs a handler once on SIGINT or SIGTERM instead of dying, so a tracer can drain and exit 0.
public final class SignalTrap: @unchecked Sendable {
    // Written once in init; the sources only run on `queue`.
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "signals")

    public init(_ signals: [Int32] = [SIGINT, SIGTERM], handler: @escaping @Sendable (Int32) -> Void) {
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { handler(number) }
            source.resume()
            sources.append(source)
        }
    }
}
