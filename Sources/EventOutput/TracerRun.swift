import Dispatch
import Foundation
import Glibc

/// The life of an example tracer: start, say `Tracing ...` on standard error, wait for SIGINT,
/// SIGTERM or the duration, stop (which drains), print what was missed, exit 0. Any start error
/// is one line on standard error and exit status 1.
public enum TracerRun {
    /// - Parameters:
    ///   - name: the executable's name, prefixed to errors.
    ///   - what: completes "Tracing ...", e.g. "TCP connections".
    ///   - start: compiles and attaches, returning the attach report to print.
    ///   - stop: detaches and drains.
    ///   - summary: the counters of what was lost, printed to standard error at the end.
    public static func run(
        name: String, what: String, duration: Double?, start: () throws -> String, stop: () -> Void, summary: () -> String
    ) -> Never {
        signal(SIGPIPE, SIG_IGN)
        // Trap the signals before the (slow) start, so one that arrives while compiling still
        // ends in a clean stop and exit 0.
        let done = DispatchSemaphore(value: 0)
        let trap = SignalTrap { _ in done.signal() }
        let report: String
        do {
            report = try start()
        } catch {
            fail(name, error)
        }
        writeError("Tracing \(what) (\(report)). Ctrl-C to end.")
        if let duration {
            DispatchQueue.global().asyncAfter(deadline: .now() + duration) { done.signal() }
        }
        done.wait()
        withExtendedLifetime(trap) {}
        stop()
        writeError(summary())
        exit(0)
    }

    /// Prints `name: error` on standard error and exits 1.
    public static func fail(_ name: String, _ error: any Error) -> Never {
        writeError("\(name): \(error)")
        exit(1)
    }

    /// Writes a line to standard error.
    public static func writeError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
