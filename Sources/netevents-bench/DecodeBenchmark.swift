import NetEventsTesting
import Dispatch
import Glibc
import Synchronization
import EventOutput
import NetEventsCore
import TCPEvent

/// `decode`: how many raw TCP samples per second one core turns into delivered events.
///
/// Every configuration feeds the same close sample (`TCPSample`, `kind` 1: the kind of half of a
/// loopback connection's 4 events; connect and accept samples are the same struct, decoded by the
/// same code) `count` times from the main thread through
/// ``MockSampleSource``, in batches of `batch` samples (`emit(_:count:)`: one handler call per
/// sample, then one `onBatchEnd`, as a reader draining its ring buffer does), and counts what the
/// consumer receives. A batch of 1 is a reader woken for every sample. The producer keeps at most
/// `window` events in flight (less than the monitor's delivery capacity), as a real reader would be
/// paced by the kernel, so the figures are for events delivered, never for events dropped (drops
/// are reported and must be 0).
/// The process is pinned to one CPU by default, so producer, delivery thread and consumer share a
/// core and events per wall-clock second are events per second per core.
enum DecodeBenchmark {
    struct Options {
        var count = 2_000_000
        var runs = 3
        var pinned = true
        var window = 16_384
        /// Samples per drain; each size gets its own callback and `events()` rows.
        var batches = [1, 256]
        /// Run only the configurations with these keys (for profiling), e.g. `callback_mock`.
        var only: [String] = []
    }

    struct Measurement {
        var name: String
        var events: Int
        var seconds: Double
        var cpuSeconds: Double
        var dropped: UInt64

        var rate: Double { Double(events) / seconds }
        var nanosecondsPerEvent: Double { seconds * 1e9 / Double(events) }
        var cpuNanosecondsPerEvent: Double { cpuSeconds * 1e9 / Double(events) }
    }

    /// A close sample as the kernel writes it, built from the contract header's struct; `other`:
    /// of another process, with other names.
    static func sample(ipv6: Bool, other: Bool = false) -> [UInt8] {
        var sample = TCPSample()
        if other {
            (sample.pid, sample.comm, sample.thread, sample.exe) = (4321, "nginx", "nginx: worker", "/usr/sbin/nginx")
        }
        sample.kind = 1  // close
        sample.uid = 1000
        if ipv6 {
            sample.family = UInt16(AF_INET6)
            sample.saddr = Array(repeating: 0, count: 15) + [1]  // ::1
            sample.daddr = sample.saddr
        }
        return sample.bytes
    }

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Emits `count` samples in batches of `batch` (each one `emit` call, ended by one
    /// `onBatchEnd`, as a reader's drain of the kernel buffer), waiting whenever more than `window`
    /// are undelivered; returns when all are delivered (or after 120 s).
    static func produce(count: Int, batch: Int, window: Int, delivered: Counter, emit: (Int) -> Void) {
        var emitted = 0
        while emitted < count {
            let size = min(batch, count - emitted)
            emit(size)
            emitted += size
            var waits = 0
            while emitted - delivered.value.load(ordering: .relaxed) > window {
                waits += 1
                if waits < 64 { sched_yield() } else { usleep(20) }
            }
        }
        let deadline = Clock.now() + 120
        while delivered.value.load(ordering: .relaxed) < count && Clock.now() < deadline { sched_yield() }
    }

    /// `callbackWithoutNames`: the callback with `resolvesNames` off, so the difference to
    /// `callback` is what naming each event's cgroup and namespace costs. `callbackTwoProcesses`:
    /// the callback fed samples of two processes in turn, so no sample's names are those of the
    /// sample before (``ProcessNames`` decodes every name: the worst case).
    enum Path { case decodeOnly, callback, callbackWithoutNames, callbackTwoProcesses, stream, jsonLine, tableRow }

    /// The tools' table layout: the common columns (with the event's kind) and a few of the kind's,
    /// as `tcp-events` has.
    static let table = EventTable<TCPConnectionEvent>.network(
        event: \.kind.description,
        columns: [TextColumn("TX_BYTES", width: 10, rightAligned: true), TextColumn("MS", width: 9, rightAligned: true)],
        cells: { event, row in
            row.number(event.sentBytes)
            row.milliseconds(event.durationNanoseconds)
        })

    /// Decodes and formats `count` samples as the tools do, `batch` lines to a buffer that is then
    /// cleared (no write); returns the bytes formatted, as a check.
    static func formatLines(_ path: Path, _ raw: UnsafeRawBufferPointer, count: Int, batch: Int) throws -> Int {
        let clock = WallClock()
        let json = JSONLineWriter(capacity: 1 << 16)
        var rows = TableRow(columns: table.columns)
        var names = ProcessNames()
        var total = 0
        for index in 0..<count {
            let event = try TCPEventDecoder.decode(raw, clock: clock, names: &names)
            if path == .jsonLine { json.append(event) } else { table.row(event, &rows); rows.endRow() }
            if index % batch == batch - 1 {
                total += json.buffer.count + rows.buffer.count
                json.removeAll()
                rows.removeAll()
            }
        }
        return total + json.buffer.count + rows.buffer.count
    }

    static func measure(_ path: Path, batch: Int, ipv6: Bool, options: Options) throws -> Measurement {
        let bytes = sample(ipv6: ipv6)
        let otherBytes = sample(ipv6: ipv6, other: true)
        let name =
            switch path {
            case .decodeOnly: "decode only (`TCPEventDecoder.decode` in a loop, names kept as the monitor keeps them)"
            case .callback: "decode + deliver, `start(callback)`, batches of \(batch)"
            case .callbackWithoutNames: "decode + deliver, `start(callback)`, names off (`resolvesNames`), batches of \(batch)"
            case .callbackTwoProcesses: "decode + deliver, `start(callback)`, two processes in turn, batches of \(batch)"
            case .stream: "decode + deliver, `events()`, batches of \(batch)"
            case .jsonLine: "decode + JSON line (`JSONLineWriter`, the tools' `--json`), batches of \(batch)"
            case .tableRow: "decode + table row (`TableRow`, the tools' table), batches of \(batch)"
            }
        let label = name + (ipv6 ? ", IPv6" : "")
        let count = options.count

        if path == .decodeOnly {
            let clock = WallClock()
            var checksum: UInt64 = 0
            var names = ProcessNames()
            let cpu0 = Clock.processCPU()
            let t0 = Clock.now()
            try bytes.withUnsafeBytes { raw in
                for _ in 0..<count {
                    let event = try TCPEventDecoder.decode(raw, clock: clock, names: &names)
                    checksum &+= event.sentBytes &+ UInt64(event.command.utf8.count)
                }
            }
            let seconds = Clock.now() - t0
            let cpu = Clock.processCPU() - cpu0
            guard checksum == UInt64(count) * (12_347 + 4) else { throw BenchError("decode produced wrong values") }
            return Measurement(name: label, events: count, seconds: seconds, cpuSeconds: cpu, dropped: 0)
        }

        if path == .jsonLine || path == .tableRow {
            let cpu0 = Clock.processCPU()
            let t0 = Clock.now()
            let bytesFormatted = try bytes.withUnsafeBytes { try formatLines(path, $0, count: count, batch: batch) }
            let seconds = Clock.now() - t0
            let cpu = Clock.processCPU() - cpu0
            guard bytesFormatted > count * 100 else { throw BenchError("\(label): formatted only \(bytesFormatted) bytes") }
            return Measurement(name: label, events: count, seconds: seconds, cpuSeconds: cpu, dropped: 0)
        }

        let mock = MockSampleSource()
        var configuration = TCPMonitor.Configuration()
        configuration.resolvesNames = path != .callbackWithoutNames
        let monitor = try TCPMonitor(source: mock, configuration: configuration)
        let delivered = Counter()
        let finished = DispatchSemaphore(value: 0)
        switch path {
        case .callback, .callbackWithoutNames, .callbackTwoProcesses:
            try monitor.start { _ in delivered.value.add(1, ordering: .relaxed) }
        case .stream:
            let stream = try monitor.events()
            Task.detached {
                for await _ in stream { delivered.value.add(1, ordering: .relaxed) }
                finished.signal()
            }
        case .decodeOnly, .jsonLine, .tableRow:
            break
        }
        let cpu0 = Clock.processCPU()
        let t0 = Clock.now()
        produce(count: count, batch: batch, window: options.window, delivered: delivered) { size in
            // A batch of one is the single-sample `emit`, as a reader woken for every sample.
            if path == .callbackTwoProcesses {
                mock.emit(cycling: [bytes, otherBytes], count: size)
            } else if size == 1 {
                mock.emit(bytes)
            } else {
                mock.emit(bytes, count: size)
            }
        }
        let seconds = Clock.now() - t0
        let cpu = Clock.processCPU() - cpu0
        let statistics = monitor.statistics
        monitor.stop()
        if path == .stream { _ = finished.wait(timeout: .now() + 10) }
        let got = delivered.value.load(ordering: .relaxed)
        guard got == count else {
            throw BenchError("\(label): delivered \(got) of \(count) (dropped \(statistics.droppedEvents), malformed \(statistics.malformedSamples))")
        }
        return Measurement(name: label, events: count, seconds: seconds, cpuSeconds: cpu, dropped: statistics.droppedEvents)
    }

    static func run(_ options: Options) throws {
        say("## decode")
        say("")
        say("\(options.count) close samples (kind 1) of \(TCPEventDecoder.sampleSize) bytes per run, median of \(options.runs) runs; "
            + (options.pinned ? "process pinned to CPU 0 (all threads share one core)" : "not pinned") + "; in flight ≤ \(options.window); "
            + "MockSampleSource batches of \(options.batches.map(String.init).joined(separator: ", "))")
        guard let largest = options.batches.max(), options.batches.allSatisfy({ $0 >= 1 }), largest <= options.window else {
            throw BenchError("--batch sizes must be between 1 and the in-flight window (\(options.window))")
        }
        say("")
        say("| path | events/s | ns/event (wall) | CPU ns/event | dropped |")
        say("| --- | ---: | ---: | ---: | ---: |")
        var configurations: [(Path, Int, Bool, String)] = [(.decodeOnly, 1, false, "decode_only")]
        for batch in options.batches {
            configurations += [(.callback, batch, false, "callback_b\(batch)"), (.stream, batch, false, "stream_b\(batch)")]
        }
        configurations += [(.callbackWithoutNames, largest, false, "callback_no_names_b\(largest)")]
        configurations += [(.callbackTwoProcesses, largest, false, "callback_two_processes_b\(largest)")]
        configurations += [(.decodeOnly, 1, true, "decode_only_v6"), (.callback, largest, true, "callback_v6_b\(largest)")]
        configurations += [
            (.jsonLine, largest, false, "json_line"), (.jsonLine, largest, true, "json_line_v6"), (.tableRow, largest, false, "table_row"),
        ]
        var results: [(String, Double)] = []
        for (path, batch, ipv6, key) in configurations where options.only.isEmpty || options.only.contains(key) {
            var runs: [Measurement] = []
            for _ in 0..<options.runs { runs.append(try measure(path, batch: batch, ipv6: ipv6, options: options)) }
            let rate = median(runs.map(\.rate))
            let cpuPerEvent = median(runs.map(\.cpuNanosecondsPerEvent))
            let dropped = runs.map(\.dropped).reduce(0, +)
            say("| \(runs[0].name) | \(format(rate / 1e6, 2)) M | \(format(1e9 / rate, 0)) | \(format(cpuPerEvent, 0)) | \(dropped) |")
            results.append((key, rate))
        }
        say("")
        var line = "RESULT section=decode pinned=\(options.pinned) count=\(options.count) batches=\(options.batches.map(String.init).joined(separator: ","))"
        for (key, rate) in results { line += " \(key)=\(Int(rate))" }
        say(line)
    }
}
