import Foundation
import NetEventsTesting
import Synchronization
import TCPEvent
import XCTest
@testable import BCCRuntime
@testable import NetEventsCore

/// An event kind for the core's own tests, with no program: each sample is a little-endian
/// `UInt32` that becomes `.sample`, and each scan reports how many samples the kind had decoded
/// when it ran (`.scan` every interval, `.final` at stop).
final class CountingKind: EventKind {
    enum Event: Sendable, Equatable {
        case sample(UInt32)
        case scan(decoded: Int)
        case final(decoded: Int)
    }

    struct Options: EventKindOptions {
        /// How often the kind scans; nil: never.
        var scanEvery: Duration?
        /// An option to validate.
        var limit = 10
        /// Holds each start inside the kind's initializer, as a compile would (see ``StartGate``).
        var startGate: StartGate?
        /// Holds each start in ``begin(into:)``: its session is being made, past every check of
        /// a stop before it.
        var beginGate: StartGate?
        /// Records the offset of each run's clock.
        var clocks: ClockLog?

        init() {}

        func validate() throws(BPFError) {
            guard limit >= 1 else { throw .invalidArgument("limit must be at least 1, got \(limit)") }
        }
    }

    struct Hooks: Sendable, Equatable, CustomStringConvertible {
        var name = "test hook"
        var description: String { "hook: \(name)" }
    }

    struct Counters: EventKindCounters {
        var decoded: UInt64 = 0
        init() {}
    }

    static let activity = "testing the monitor core"
    static let filteredCounter: UInt32 = 1

    static func plan(_ configuration: MonitorConfiguration<CountingKind>, features: KernelFeatures, into program: inout ProgramPlan)
        throws(BPFError) -> Hooks
    {
        throw .notSupported(feature: activity, minimumKernel: nil, reason: "a test kind has no program")
    }

    static func attach(_ hooks: Hooks, module: BPFModule, links: inout [BPFLink]) throws(BPFError) {}

    let scanInterval: Duration?
    private let beginGate: StartGate?
    private let decoded = Locked<Int>(0)

    init(configuration: MonitorConfiguration<CountingKind>, module: BPFModule?, clock: WallClock) throws(BPFError) {
        scanInterval = configuration.options.scanEvery
        beginGate = configuration.options.beginGate
        configuration.options.clocks?.record(clock)
        configuration.options.startGate?.pass()
    }

    func begin(into events: inout [Event]) { beginGate?.pass() }

    func decode(_ raw: UnsafeRawBufferPointer, into events: inout [Event]) throws(BPFError) {
        guard raw.count == 4 else { throw .malformedSample(expectedSize: 4, actualSize: raw.count, detail: "not a counting sample") }
        decoded.withLock { $0 += 1 }
        events.append(.sample(UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self))))
    }

    func scan(into events: inout [Event], final: Bool) {
        let count = decoded.withLock { $0 }
        events.append(final ? .final(decoded: count) : .scan(decoded: count))
    }

    func counters(_ kernel: KernelCounters) -> Counters {
        var counters = Counters()
        counters.decoded = UInt64(decoded.withLock { $0 })
        return counters
    }

    /// The raw sample of `value`.
    static func sample(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}

/// Holds a start where a compile would be: ``pass()`` says it is there (``entered``) and waits
/// for ``open()``.
final class StartGate: Sendable, Equatable {
    let entered = DispatchSemaphore(value: 0)
    private let opened = DispatchSemaphore(value: 0)

    func pass() {
        entered.signal()
        opened.wait()
        opened.signal()  // open for every later start
    }

    func open() { opened.signal() }

    static func == (lhs: StartGate, rhs: StartGate) -> Bool { lhs === rhs }
}

/// The offsets of the clocks each start of a monitor gave its kind.
final class ClockLog: Sendable, Equatable {
    private let offsets = Locked<[Int64]>([])
    func record(_ clock: WallClock) { offsets.withLock { $0.append(clock.offsetNanoseconds) } }
    var all: [Int64] { offsets.withLock { $0 } }
    static func == (lhs: ClockLog, rhs: ClockLog) -> Bool { lhs === rhs }
}

/// Collects a monitor's events on its delivery thread.
final class EventBox<Event: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Event] = []
    func add(_ event: Event) { lock.withLock { items.append(event) } }
    var all: [Event] { lock.withLock { items } }
}

final class EventMonitorTests: XCTestCase {
    typealias Monitor = EventMonitor<CountingKind>

    func testEventsArriveInEmissionOrderAndMalformedSamplesAreSkipped() throws {
        let source = MockSampleSource()
        let monitor = try Monitor(source: source)
        let box = EventBox<CountingKind.Event>()
        for value in 0..<10 { source.emit(CountingKind.sample(UInt32(value))) }  // queued until start
        try monitor.start { box.add($0) }
        for value in 10..<5_000 {
            source.emit(CountingKind.sample(UInt32(value)))
            if value % 1_000 == 0 { source.emit([1, 2, 3]) }
        }
        source.emit(CountingKind.sample(5_000), count: 3)  // one batch
        source.reportLost(2)
        monitor.stop()
        let expected = (0..<5_000).map { CountingKind.Event.sample(UInt32($0)) } + Array(repeating: .sample(5_000), count: 3)
        XCTAssertEqual(box.all, expected + [.final(decoded: 5_003)], "samples in emission order, then the final scan")
        let statistics = monitor.statistics
        XCTAssertEqual(statistics.malformedSamples, 4)
        XCTAssertEqual(statistics.lostSamples, 2)
        XCTAssertEqual(statistics.droppedEvents, 0)
        XCTAssertEqual(statistics.filteredEvents, 0, "no kernel counters over a mock source")
        XCTAssertEqual(statistics.decoded, 5_003, "the kind's counter, as the statistics' own member")
        XCTAssertEqual(statistics.kind.decoded, 5_003)
        guard case .malformedSample(let expectedSize, let actualSize, _)? = monitor.lastDecodingError else {
            return XCTFail("lastDecodingError: \(String(describing: monitor.lastDecodingError))")
        }
        XCTAssertEqual(expectedSize, 4)
        XCTAssertEqual(actualSize, 3)
        XCTAssertNil(monitor.report, "no report over an injected source")
        XCTAssertFalse(source.isRunning, "stop closes the source")
    }

    /// `startBatched` hands over whole batches (one drain is one batch here), every event once,
    /// in emission order, on one thread that is not the emitting one.
    func testBatchedDeliveryGivesEveryEventInOrderInBatches() throws {
        let source = MockSampleSource()
        let monitor = try Monitor(source: source)
        let batches = Locked<[[CountingKind.Event]]>([])
        let threads = Locked<Set<UInt>>([])
        try monitor.startBatched { batch in
            batches.withLock { $0.append(batch) }
            threads.withLock { _ = $0.insert(UInt(pthread_self())) }
        }
        for value in 0..<100 { source.emit(CountingKind.sample(UInt32(value)), count: 1) }
        source.emit(CountingKind.sample(100), count: 500)  // one drain of 500 samples
        monitor.stop()
        let all = batches.withLock { $0 }
        let expected = (0..<100).map { CountingKind.Event.sample(UInt32($0)) } + Array(repeating: .sample(100), count: 500)
        XCTAssertEqual(all.flatMap { $0 }, expected + [.final(decoded: 600)])
        XCTAssertTrue(all.contains { $0.count >= 500 }, "the drain of 500 came as one batch: \(all.map(\.count))")
        XCTAssertLessThan(all.count, 602, "batches, not one call per event")
        XCTAssertEqual(threads.withLock { $0.count }, 1, "one delivery thread")
        XCTAssertFalse(threads.withLock { $0 }.contains(UInt(pthread_self())), "never the emitting thread")
    }

    /// Decoding, periodic scans and the final scan share one producer path: a scan's event comes
    /// after exactly the samples decoded before it ran, never before one of them or after a later one.
    func testScansAndSamplesShareOneOrderedProducerPath() throws {
        var configuration = Monitor.Configuration()
        configuration.scanEvery = .milliseconds(1)
        let (monitor, source, box) = try startedMonitor(configuration: configuration)
        let total = 20_000
        let threads = 2
        let done = DispatchGroup()
        for thread in 0..<threads {
            done.enter()
            Thread {
                for index in 0..<total / threads {
                    source.emit(CountingKind.sample(UInt32(thread << 24 | index)))
                    if index % 500 == 0 { usleep(200) }  // let scans run in between
                }
                done.leave()
            }.start()
        }
        done.wait()
        monitor.stop()
        let events = box.all
        var samples = 0
        var scans = 0
        var perThread = Array(repeating: -1, count: threads)
        for (position, event) in events.enumerated() {
            switch event {
            case .sample(let value):
                samples += 1
                let thread = Int(value >> 24)
                let index = Int(value & 0xff_ffff)
                XCTAssertEqual(index, perThread[thread] + 1, "thread \(thread)'s samples in the order it emitted them")
                perThread[thread] = index
            case .scan(let decoded):
                scans += 1
                XCTAssertEqual(decoded, samples, "scan at \(position) saw \(decoded) samples, \(samples) were delivered before it")
            case .final(let decoded):
                XCTAssertEqual(position, events.count - 1, "the final scan comes last")
                XCTAssertEqual(decoded, total)
            }
        }
        XCTAssertEqual(samples, total)
        XCTAssertGreaterThan(scans, 0, "periodic scans ran")
        XCTAssertEqual(events.last, .final(decoded: total))
        XCTAssertEqual(monitor.statistics.droppedEvents, 0)
    }

    func testTheSequenceDeliversEverythingThenTheFinalScanThenEnds() async throws {
        let source = MockSampleSource()
        let monitor = try Monitor(source: source)
        let sequence = try monitor.events()
        for value in 0..<100 { source.emit(CountingKind.sample(UInt32(value))) }
        monitor.stop()
        var events: [CountingKind.Event] = []
        for await event in sequence { events.append(event) }
        XCTAssertEqual(events, (0..<100).map { .sample(UInt32($0)) } + [.final(decoded: 100)])
    }

    /// Every caller of stop() returns only once everything is delivered: a second caller waits
    /// for the first one's drain instead of returning early.
    func testASecondStopWaitsForTheFirstOnesDrain() throws {
        // Holds the first event until the second stop is waiting.
        let blocker = BlockingConsumer<CountingKind.Event>(holdingOn: .sample(0))
        let (monitor, source) = try startedMonitor { blocker.consume($0) }
        for value in 0..<200 { source.emit(CountingKind.sample(UInt32(value))) }
        blocker.entered.wait()
        let firstStop = Thread { monitor.stop() }
        firstStop.start()
        usleep(50_000)  // the first stop is draining, blocked behind the held callback
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { blocker.release() }
        monitor.stop()  // the second caller
        XCTAssertEqual(blocker.received.count, 201, "200 samples and the final scan, all delivered before stop() returned")
    }

    /// The sequence keeps its monitor alive: a monitor made in the expression itself still traces.
    func testTheSequenceKeepsItsMonitorAlive() async throws {
        let source = MockSampleSource()
        do {
            let sequence = try Monitor(source: source).events()  // no other reference to the monitor
            for value in 0..<3 { source.emit(CountingKind.sample(UInt32(value))) }
            var events: [CountingKind.Event] = []
            for await event in sequence {
                events.append(event)
                if events.count == 3 { break }
            }
            XCTAssertEqual(events, [.sample(0), .sample(1), .sample(2)])
            XCTAssertTrue(source.isRunning, "the monitor traces while its sequence lives")
        }
        XCTAssertFalse(source.isRunning, "releasing the sequence released and stopped the monitor")
    }

    /// Starting a monitor that runs is refused (stop it first); a stopped one starts again
    /// (StoppingTests), and a stop before any start does not keep it from starting.
    func testASecondStartThrowsAlreadyStarted() throws {
        let (monitor, source) = try startedMonitor { _ in }
        for start in [{ try monitor.start { _ in } }, { _ = try monitor.events() }] as [() throws -> Void] {
            XCTAssertThrowsError(try start()) { error in
                guard case BPFError.alreadyStarted(let what) = error else { return XCTFail("expected .alreadyStarted, got \(error)") }
                XCTAssertTrue(what.contains("stop()"), what)
            }
        }
        XCTAssertTrue(source.isRunning, "the failed start left the running monitor alone")
        XCTAssertTrue(monitor.isRunning)
        monitor.stop()
        monitor.stop()
        XCTAssertFalse(monitor.isRunning)
        XCTAssertNoThrow(try monitor.start { _ in }, "a stopped monitor starts again")
        monitor.stop()
        // Stopped before it ever started: the stop does nothing, the start works.
        let never = try Monitor(source: MockSampleSource())
        never.stop()
        XCTAssertNoThrow(try never.start { _ in })
        XCTAssertTrue(never.isRunning)
        never.stop()
    }

    /// Each start takes its clock anew (the wall-clock offset of that start), unless a test
    /// injected one, which every start uses.
    func testEachStartTakesItsClockAnewUnlessOneWasInjected() throws {
        let made = Locked<Int64>(0)
        var configuration = Monitor.Configuration()
        configuration.clocks = ClockLog()
        // As the kernel's monitor makes its clocks, numbered: the n-th clock made has offset n.
        let fresh = try Monitor(source: MockSampleSource(), configuration: configuration) {
            WallClock(offsetNanoseconds: made.withLock { $0 += 1; return $0 })
        }
        XCTAssertEqual(made.current, 0, "no clock before the first start")
        for _ in 0..<3 {
            try fresh.start { _ in }
            fresh.stop()
        }
        XCTAssertEqual(configuration.clocks?.all, [1, 2, 3], "a clock of its own for each start")

        configuration.clocks = ClockLog()
        let injected = try Monitor(source: MockSampleSource(), configuration: configuration, clock: WallClock(offsetNanoseconds: 42))
        for _ in 0..<2 {
            try injected.start { _ in }
            injected.stop()
        }
        XCTAssertEqual(configuration.clocks?.all, [42, 42], "the injected clock in every start")
    }

    /// A start that fails (here the source is taken) throws and leaves nothing running.
    func testAFailedStartThrowsAndLeavesNothingRunning() throws {
        let source = MockSampleSource()
        let monitor = try Monitor(source: source)
        try source.start(SampleHandler(onSample: { _ in }))
        XCTAssertThrowsError(try monitor.start { _ in }) { error in
            guard case BPFError.alreadyStarted(let what) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(what.contains("mock"), what)
        }
        XCTAssertNil(monitor.report)
        XCTAssertEqual(monitor.statistics, Monitor.Statistics())
    }

    func testBothInitializersValidate() {
        var configuration = Monitor.Configuration()
        configuration.limit = 0
        XCTAssertThrowsError(try Monitor(configuration: configuration)) { error in
            guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("limit"), message)
        }
        XCTAssertThrowsError(try Monitor(source: MockSampleSource(), configuration: configuration))
    }

    /// The same over the TCP kind, with samples built from the contract struct.
    func testTCPMonitorOverAMockSourceKeepsEmissionOrder() throws {
        let source = MockSampleSource()
        let monitor = try TCPMonitor(source: source, clock: WallClock(offsetNanoseconds: 0))
        let box = EventBox<TCPConnectionEvent>()
        try monitor.start { box.add($0) }
        for pid in 1...1_000 {
            var sample = TCPSample()
            sample.pid = UInt32(pid)
            source.emit(sample.bytes)
        }
        monitor.stop()
        XCTAssertEqual(box.all.map(\.pid), Array(1...1_000))
        XCTAssertEqual(monitor.statistics.trackedSockets, 0, "no kernel counters over a mock source")
    }
}

/// Reports and statistics read the kind's hooks and counters as their own members.
final class ReportAndStatisticsTests: XCTestCase {
    func testStatisticsReadTheKindsCounters() {
        var statistics = TCPMonitor.Statistics()
        XCTAssertEqual(statistics.trackedSockets, 0)
        statistics.kind.trackedSockets = 7
        statistics.kind.evictedSockets = 2
        statistics.kind.untrackedCloses = 1
        statistics.filteredEvents = 3
        XCTAssertEqual(statistics.trackedSockets, 7)
        XCTAssertEqual(statistics.evictedSockets, 2)
        XCTAssertEqual(statistics.untrackedCloses, 1)
        XCTAssertEqual(statistics.filteredEvents, 3)
        XCTAssertNotEqual(statistics, TCPMonitor.Statistics())
    }

    func testReportReadsTheHooksAndDescribesTheChoices() {
        let report = EventMonitor<CountingKind>.Report(
            hooks: .init(name: "probe"), transport: .ringBuffer, offsetSource: .btf,
            headers: KernelHeaders(path: nil, source: .runningKernel),
            attachments: ["tracepoint a:b", "kprobe c"], notes: ["fentry: no"])
        XCTAssertEqual(report.name, "probe")
        XCTAssertEqual(report.hooks, .init(name: "probe"))
        XCTAssertFalse(report.offsetsUntrusted)
        XCTAssertEqual(
            report.description,
            "hook: probe, transport: ringBuffer, offsets: btf, headers: running kernel; attached: tracepoint a:b, kprobe c; fentry: no")

        var foreign = report
        foreign.offsetSource = .headers
        foreign.headers = KernelHeaders(path: "/x", source: .distribution(release: "2.6.32-5-amd64"))
        foreign.notes = []
        XCTAssertTrue(foreign.offsetsUntrusted)
        XCTAssertTrue(foreign.description.contains("headers: 2.6.32-5-amd64 (WARNING"), foreign.description)
        XCTAssertTrue(foreign.description.hasSuffix("; attached: tracepoint a:b, kprobe c"), foreign.description)
    }
}
