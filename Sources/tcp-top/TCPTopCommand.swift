import ArgumentParser
import EventOutput
import Foundation
import Glibc
import NetEventsCore
import Synchronization
import TCPEvent

@main
struct TCPTopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcp-top",
        abstract: "A live view of the busiest TCP connections or processes: throughput over the last interval, RTT, retransmits.",
        discussion: """
            \(CapabilityNeed.helpText(ptrace: true)) In a terminal it refreshes in place: p switches between connections and \
            processes, s steps through the sort orders, q (or Ctrl-C) quits and leaves the terminal \
            as it was. With --json, or when the output is not a terminal, it prints the busiest \
            rows every interval instead (JSON lines, or plain frames). Throughput is what each \
            connection moved since the previous refresh, from the kernel's own counters; the first \
            refresh only lists what is open (connections opened before start carry all they moved).
            """)

    @OptionGroup var options: TracerOptions

    @Option(name: .long, parsing: .unconditional, help: "Seconds between refreshes.")
    var interval: Double = 1

    @Flag(name: .long, help: "One row per process instead of per connection (the p key switches).")
    var processes = false

    @Option(name: .long, help: "Sort by total, sent, received, rtt or retransmits (the s key steps through them).")
    var sort: TopRow.Order = .total

    @Option(name: .long, parsing: .unconditional, help: "Rows per refresh with --json or plain output; 0: all.")
    var rows: Int = 20

    @Option(name: .long, help: "Force the kernel hook: tracepoint, fentry or kprobe.")
    var hook: TCPMonitor.Hook?

    func validate() throws {
        guard TCPKind.Options.intervals.contains(interval) else {
            throw ValidationError("--interval must be \(TCPKind.Options.intervalsText) seconds")
        }
        guard (0...1_000_000).contains(rows) else { throw ValidationError("--rows must be 0 (all) to 1000000") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let signals = TerminationSignals([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        let ledger = ThroughputLedger(start: UInt64(WallClock.now(CLOCK_REALTIME)))
        let monitor: TCPMonitor
        do {
            let kind = TCPKind.Options(hook: hook, events: [.interval, .close], interval: interval)
            monitor = try TCPMonitor(configuration: options.configuration(of: TCPKind.self, kind))
            try monitor.startBatched { ledger.add($0) }
        } catch {
            TracerRun.fail("tcp-top", error, hint: TracerRun.hookHint(for: error, forced: hook == nil ? [] : ["--hook"]))
        }
        let interactive = !options.json && Terminal.isInteractive
        let terminal = Terminal()
        if interactive {
            // Suspending would leave the terminal in full-screen mode under the shell: not offered.
            signal(SIGTSTP, SIG_IGN)
            terminal.enter()
        } else {
            TracerRun.writeError("Tracing TCP connections (\(monitor.report.map(String.init(describing:)) ?? "")). Ctrl-C to end.")
        }
        var closed = false
        let outputClosed = Atomic<Bool>(false)
        StandardOutput.onClosed { outputClosed.store(true, ordering: .relaxed) }
        var screen = TopScreen(byProcess: processes, order: sort, interval: interval)
        let start = Self.now
        let deadline = options.duration.map { start + $0 } ?? .infinity
        // Frames fall half an interval after the monitor's polls, so each window holds one poll.
        var nextFrame = start + interval / 2
        var windowStart = start
        var frames = 0
        var shown: (window: [ThroughputLedger.Connection], seconds: Double, measured: Bool) = ([], 0, false)

        func draw() {
            let time = UInt64(Date().timeIntervalSince1970 * 1e9)
            let ordered = TopRow.rows(shown.window, seconds: shown.seconds, time: time, byProcess: screen.byProcess, order: screen.order)
            if interactive {
                let size = terminal.size
                terminal.draw(screen.lines(ordered, measured: shown.measured, connections: shown.window.count, width: size.columns, height: size.rows))
            } else if options.json {
                guard shown.measured else { return }
                let writer = JSONLineWriter()
                for row in ordered.prefix(rows == 0 ? .max : rows) { writer.append(row) }
                if !StandardOutput.write(writer.buffer) { closed = true }
            } else {
                let lines = screen.lines(ordered, measured: shown.measured, connections: shown.window.count, width: .max, height: rows == 0 ? .max : rows + 3)
                if !StandardOutput.write(Array((lines.joined(separator: "\n") + "\n\n").utf8)) { closed = true }
            }
        }

        while !signals.received && !closed && !outputClosed.load(ordering: .relaxed) {
            let now = Self.now
            if now >= deadline { break }
            if now >= nextFrame {
                shown = (ledger.closeWindow(), now - windowStart, frames > 0)
                windowStart = now
                frames += 1
                nextFrame = max(nextFrame + interval, now)
                draw()
                continue
            }
            // Short waits: a signal, a key, the deadline and the next frame are all seen promptly.
            let wait = min(nextFrame, deadline) - now
            if interactive && !terminal.inputEnded {
                guard let key = terminal.key(within: Int32(min(wait, 0.1) * 1000) + 1) else { continue }
                switch key {
                case UInt8(ascii: "q"), UInt8(ascii: "Q"): closed = true
                case UInt8(ascii: "p"), UInt8(ascii: "P"): screen.byProcess.toggle(); draw()
                case UInt8(ascii: "s"), UInt8(ascii: "S"): screen.order = screen.order.next; draw()
                default: break
                }
            } else if signals.wait(timeout: .milliseconds(Int(min(wait, 0.1) * 1000) + 1)) != nil {
                break
            }
        }
        monitor.stop()
        terminal.leave()
        let statistics = monitor.statistics
        TracerRun.writeError(
            "\(frames) refreshes; lost \(statistics.lostSamples), missed \(statistics.missedProgramRuns.map(String.init) ?? "uncounted"), dropped \(statistics.droppedEvents), malformed \(statistics.malformedSamples), "
                + "unowned open connections \(statistics.kind.unownedConnections), failed polls \(statistics.kind.failedPolls)")
        Glibc.exit(0)
    }

    /// Seconds on the monotonic clock.
    static var now: Double { Double(WallClock.now(CLOCK_MONOTONIC)) / 1e9 }
}

extension TopRow.Order: ExpressibleByArgument {}
