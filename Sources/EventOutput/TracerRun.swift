import Dispatch
import Foundation
import ArgumentParser
import Glibc
import NetEventsCore

/// The life of a tool: trap SIGINT and SIGTERM (before the slow start, so a signal during the
/// compile still ends in a clean stop), start the monitor, say `Tracing ...` on standard error,
/// wait for a signal or the duration, stop (which drains), print how many events were printed and
/// what was missed, exit 0. A start error is one line on standard error and exit status 1.
///
/// The tools link `CEarlySignals`, which blocks SIGINT and SIGTERM before `main`: a signal sent
/// while the arguments are parsed stays pending (also one inherited as ignored) and is taken here
/// as soon as the handlers are in place. A signal before or during the start ends the run right
/// after the start, with the same drain, summary and status 0.
public enum TracerRun {
    /// Runs a monitor of `Kind`, printing its events, until a signal or `options.duration`.
    /// - Parameters:
    ///   - name: the executable's name, prefixed to errors.
    ///   - what: completes "Tracing ...", e.g. "TCP connections".
    ///   - table: the human table of the events (JSON lines come from the keys they list).
    ///   - summary: the kind's counters of what was missed, for the line printed at the end.
    ///   - forced: the flags the user gave that force a kernel hook (e.g. `--hook`): a start that
    ///     fails for want of a kernel feature then says to leave them off.
    @inlinable public static func run<Kind: EventKind>(
        name: String, what: String, options: TracerOptions, configuration: MonitorConfiguration<Kind>,
        table: EventTable<Kind.Event>, summary: @escaping (Kind.Counters) -> String, forced: [String] = []
    ) -> Never where Kind.Event: EventFields {
        signal(SIGPIPE, SIG_IGN)
        let signals = TerminationSignals()
        // Ends on SIGINT/SIGTERM (one pending from before counts), at the end of --duration, or
        // when the output is closed.
        let done = DispatchSemaphore(value: 0)
        signals.onSignal { _ in done.signal() }
        let printer = EventPrinter(json: options.json, table: table)
        let monitor: EventMonitor<Kind>
        do {
            monitor = try EventMonitor<Kind>(configuration: configuration)
            // The header goes out with the first batch or just after the start, whichever comes
            // first: never before a start that fails, never after a row.
            try monitor.startBatched(printer.print)
            printer.printHeader()
        } catch {
            fail(name, error, hint: hookHint(for: error, forced: forced + (options.transport == nil ? [] : ["--transport"])))
        }
        let only = configuration.filter.isEmpty ? "" : "; only \(configuration.filter)"
        writeError("Tracing \(what) (\(monitor.report.map(String.init(describing:)) ?? ""))\(only). Ctrl-C to end.")
        StandardOutput.onClosed { done.signal() }
        if let duration = options.duration {
            _ = done.wait(timeout: .now() + min(duration, 1e9))
        } else {
            done.wait()
        }
        monitor.stop()
        let statistics = monitor.statistics
        writeError(
            "\(printer.printed) events printed; lost \(statistics.lostSamples), missed \(statistics.missedProgramRuns.map(String.init) ?? "uncounted"), dropped \(statistics.droppedEvents), "
                + (statistics.unseenEvents.map { "unseen \($0), " } ?? "")
                + "malformed \(statistics.malformedSamples), filtered \(statistics.filteredEvents), " + summary(statistics.kind))
        exit(0)
    }

    /// Prints `name: error` (and `hint`, if any) on standard error and exits 1.
    public static func fail(_ name: String, _ error: any Error, hint: String? = nil) -> Never {
        writeError("\(name): \(error)" + (hint.map { "\n" + $0 } ?? ""))
        exit(1)
    }

    /// For a start that failed for want of a kernel feature while the user forced a choice (a
    /// hook, the transport): how to let the tool choose instead.
    public static func hookHint(for error: any Error, forced: [String]) -> String? {
        guard !forced.isEmpty, let error = error as? BPFError else { return nil }
        switch error {
        case .notSupported, .loadFailed, .attachFailed, .bufferFailed:
            let flags = forced.joined(separator: ", ")
            let (choice, pronoun) = forced.count == 1 ? ("this choice", "it") : ("these choices", "them")
            return "hint: \(flags) forced \(choice); leave \(pronoun) off and the tool picks what this kernel supports "
                + "(the Tracing line then says which)"
        default:
            return nil
        }
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
    /// The flags given that force a kernel hook (e.g. `["--hook"]`), named in the hint when the
    /// start fails for want of a kernel feature. None by default.
    var forcedHookFlags: [String] { get }
}

extension TracerCommand {
    public var forcedHookFlags: [String] { [] }

    /// Runs the monitor until a signal or `--duration`, printing its events. (`@inlinable`: each
    /// tool's build specializes the printing for its event type.)
    @inlinable public func run() throws {
        TracerRun.run(
            name: Self.configuration.commandName ?? "tracer", what: Self.what, options: options,
            configuration: try options.configuration(of: Kind.self, kindOptions), table: Self.table, summary: Self.summary,
            forced: forcedHookFlags)
    }
}
