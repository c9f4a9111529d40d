import Dispatch
import Foundation
import ArgumentParser
import Glibc
import NetEventsCore

/// The life of a tool: trap SIGINT and SIGTERM (before the slow start, so a signal during the
/// compile still ends in a clean stop), start the monitor, say `Tracing ...` on standard error,
/// wait for a signal or the duration, stop (which drains), print how many events were printed and
/// what was missed, exit 0. A start
/// error is one line on standard error and exit status 1.
public enum TracerRun {
    /// Runs a monitor of `Kind`, printing its events, until a signal or `options.duration`.
    /// - Parameters:
    ///   - name: the executable's name, prefixed to errors.
    ///   - what: completes "Tracing ...", e.g. "TCP connections".
    ///   - table: the human table of the events (JSON lines come from the keys they list).
    ///   - summary: the kind's counters of what was missed, for the line printed at the end.
    @inlinable public static func run<Kind: EventKind>(
        name: String, what: String, options: TracerOptions, configuration: MonitorConfiguration<Kind>,
        table: EventTable<Kind.Event>, summary: @escaping (Kind.Counters) -> String
    ) -> Never where Kind.Event: EventFields {
        signal(SIGPIPE, SIG_IGN)
        let signals = TerminationSignals()
        let printer = EventPrinter(json: options.json, table: table)
        let monitor: EventMonitor<Kind>
        do {
            monitor = try EventMonitor<Kind>(configuration: configuration)
            // The header first: rows can follow as soon as the monitor starts.
            if let header = printer.header { StandardOutput.writeLine(header) }
            try monitor.startBatched(printer.print)
        } catch {
            fail(name, error)
        }
        writeError("Tracing \(what) (\(monitor.report.map(String.init(describing:)) ?? "")). Ctrl-C to end.")
        // Ends on SIGINT/SIGTERM, at the end of --duration, or when the output is closed.
        let done = DispatchSemaphore(value: 0)
        signals.onSignal { _ in done.signal() }
        StandardOutput.onClosed { done.signal() }
        if let duration = options.duration {
            _ = done.wait(timeout: .now() + min(duration, 1e9))
        } else {
            done.wait()
        }
        monitor.stop()
        let statistics = monitor.statistics
        writeError(
            "\(printer.printed) events printed; lost \(statistics.lostSamples), dropped \(statistics.droppedEvents), malformed \(statistics.malformedSamples), "
                + "filtered \(statistics.filteredEvents), " + summary(statistics.kind))
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

/// A tool that traces one event kind: it names the kind's options, its table and its summary, and
/// ``TracerRun`` does the rest (`run()` is provided).
public protocol TracerCommand: ParsableCommand {
    /// The kind traced.
    associatedtype Kind: EventKind where Kind.Event: EventFields
    /// Completes "Tracing ...", e.g. "TCP connections".
    static var what: String { get }
    /// The human table of the events.
    static var table: EventTable<Kind.Event> { get }
    /// The kind's counters of what was missed, for the line printed at the end.
    static func summary(_ counters: Kind.Counters) -> String
    /// The options every tool takes.
    var options: TracerOptions { get }
    /// The kind's own options, from the command line.
    var kindOptions: Kind.Options { get }
}

extension TracerCommand {
    /// Runs the monitor until a signal or `--duration`, printing its events. (`@inlinable`: each
    /// tool's build specializes the printing for its event type.)
    @inlinable public func run() throws {
        TracerRun.run(
            name: Self.configuration.commandName ?? "tracer", what: Self.what, options: options,
            configuration: options.configuration(of: Kind.self, kindOptions), table: Self.table, summary: Self.summary)
    }
}
