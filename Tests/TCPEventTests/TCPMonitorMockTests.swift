import BCCRuntime
import XCTest
@testable import TCPEvent

/// Delivery through `TCPMonitor` with a mock perf source: no privileges needed.
final class TCPMonitorMockTests: XCTestCase {
    final class Box: @unchecked Sendable {
        let lock = NSLock()
        var events: [TCPConnectionEvent] = []
        func add(_ event: TCPConnectionEvent) { lock.withLock { events.append(event) } }
    }

    func testCallbackDeliversInOrderAndSkipsMalformedSamples() throws {
        let source = MockSampleSource()
        let monitor = try TCPMonitor(source: source, clock: WallClock(offsetNanoseconds: 0))
        let box = Box()
        try monitor.start { box.add($0) }
        for pid in 1...500 {
            var sample = TCPSample()
            sample.pid = UInt32(pid)
            source.emit(sample.bytes)
            if pid % 100 == 0 { source.emit([1, 2, 3]) }  // short: counted, skipped
        }
        source.reportLost(7)
        monitor.stop()
        XCTAssertEqual(box.events.map(\.pid), Array(1...500))
        let statistics = monitor.statistics
        XCTAssertEqual(statistics.malformedSamples, 5)
        XCTAssertEqual(statistics.lostSamples, 7)
        XCTAssertEqual(statistics.droppedEvents, 0)
        XCTAssertFalse(source.isRunning, "stop closes the source")
    }

    func testAsyncSequenceYieldsEverythingThenEnds() async throws {
        let source = MockSampleSource()
        let monitor = try TCPMonitor(source: source)
        let stream = try monitor.events()
        for port in 1...50 {
            var sample = TCPSample()
            sample.sport = UInt16(port)
            source.emit(sample.bytes)
        }
        monitor.stop()
        var ports: [UInt16] = []
        for await event in stream { ports.append(event.sourcePort) }
        XCTAssertEqual(ports, (1...50).map(UInt16.init))
    }

    func testSlowConsumerDropsAreCounted() throws {
        var configuration = TCPMonitor.Configuration()
        configuration.deliveryCapacity = 4
        let source = MockSampleSource()
        let monitor = try TCPMonitor(source: source, configuration: configuration)
        let release = DispatchSemaphore(value: 0)
        let first = DispatchSemaphore(value: 0)
        let box = Box()
        try monitor.start { event in
            if box.lock.withLock({ box.events.isEmpty }) {
                first.signal()
                release.wait()
            }
            box.add(event)
        }
        source.emit(TCPSample().bytes)
        first.wait()  // the consumer holds the first event
        for _ in 0..<20 { source.emit(TCPSample().bytes) }
        release.signal()
        monitor.stop()
        XCTAssertEqual(box.events.count, 5, "the held event and a full queue of 4")
        XCTAssertEqual(monitor.statistics.droppedEvents, 16)
    }

    func testStartingTwiceIsAnError() throws {
        let monitor = try TCPMonitor(source: MockSampleSource())
        try monitor.start { _ in }
        XCTAssertThrowsError(try monitor.start { _ in })
        monitor.stop()
        monitor.stop()
    }
}

final class TCPConfigurationTests: XCTestCase {
    func testValidConfigurations() throws {
        XCTAssertNoThrow(try TCPMonitor.Configuration().validate())
        XCTAssertNoThrow(try TCPMonitor.Configuration(pid: 1, uid: 0, port: 65_535, family: .ipv6).validate())
    }

    func testInvalidOptionsAreNamed() {
        var cases: [(TCPMonitor.Configuration, String)] = [
            (.init(pid: 0), "pid"), (.init(pid: -5), "pid"), (.init(port: 0), "port"),
        ]
        var pages = TCPMonitor.Configuration()
        pages.bufferPages = 3
        cases.append((pages, "bufferPages"))
        var sockets = TCPMonitor.Configuration()
        sockets.maxTrackedSockets = 1
        cases.append((sockets, "maxTrackedSockets"))
        var capacity = TCPMonitor.Configuration()
        capacity.deliveryCapacity = 0
        cases.append((capacity, "deliveryCapacity"))
        for (configuration, name) in cases {
            XCTAssertThrowsError(try configuration.validate(), name) { error in
                guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains(name), "\(message) names \(name)")
            }
            XCTAssertThrowsError(try TCPMonitor(configuration: configuration), "the initializer validates \(name)")
        }
    }

    func testFiltersBecomeCompilerFlags() {
        let configuration = TCPMonitor.Configuration(pid: 42, uid: 1000, port: 8080, family: .ipv6)
        let flags = TCPProgram.flags(configuration, hook: .kprobe, transport: .perfBuffer, tracksAccept: true, tracksIO: false)
        for flag in ["-DFILTER_PID=42", "-DFILTER_UID=1000", "-DFILTER_PORT=8080", "-DFILTER_FAMILY=10", "-DHOOK_KPROBE", "-DTRACK_ACCEPT"] {
            XCTAssertTrue(flags.contains(flag), "\(flag) in \(flags)")
        }
        XCTAssertFalse(flags.contains("-DUSE_RINGBUF"))
        XCTAssertFalse(flags.contains("-DTRACK_IO"))
    }

    func testEveryOffsetTheProgramReadsResolvesFromThisKernelsBTF() throws {
        guard KernelFeatures.shared.btf.isYes else { throw XCTSkip("this kernel has no BTF") }
        let btf = try KernelBTF.vmlinux()
        let defines = try btf.defines(for: TCPProgram.offsets + TCPProgram.acceptOffsets)
        XCTAssertEqual(defines.count, TCPProgram.offsets.count + TCPProgram.acceptOffsets.count)
        // Every macro the C program uses is passed.
        for entry in TCPProgram.offsets + TCPProgram.acceptOffsets {
            XCTAssertTrue(EmbeddedBPF.tcpEvents.contains(entry.macro), "\(entry.macro) is used by tcp_events.c")
        }
    }
}
