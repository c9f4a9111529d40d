import BCCRuntime
import Dispatch
import Foundation
import Glibc
import NetEventsTesting
import Synchronization
import XCTest

/// BCCRuntime against the running kernel: compile, load, attach, read, maps, errors, features.
/// Needs root (see ``requireBPF(file:line:)``).
final class RuntimeIntegrationTests: XCTestCase {
    static let probeFunction = "tracepoint__sock__inet_sock_set_state"

    override func setUpWithError() throws {
        try requireBPF()
    }

    // MARK: - Delivery of real events

    func testPerfBufferDeliversLoopbackStateChanges() throws {
        try checkStateChangesOfOneConnection(useRingBuffer: false)
    }

    func testRingBufferDeliversLoopbackStateChanges() throws {
        guard KernelFeatures.shared.ringBuffer == .yes else {
            let reason = "no BPF ring buffer on this kernel: \(KernelFeatures.shared.ringBuffer)"
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
        try checkStateChangesOfOneConnection(useRingBuffer: true)
    }

    /// One real loopback connection (listen, connect, accept, close) seen through the state-change
    /// probe, field by field.
    private func checkStateChangesOfOneConnection(useRingBuffer: Bool) throws {
        let server = try LoopbackServer()
        defer { server.close() }
        var cflags = ["-DFILTER_PORT=\(server.port)"]
        if useRingBuffer { cflags.append("-DUSE_RINGBUF") }
        let module = try BPFModule(source: EmbeddedBPF.stateChangeProbe, cflags: cflags)
        let program = try module.loadProgram(Self.probeFunction, type: .tracepoint)
        defer { program.close() }
        let link = try BPFLink.tracepoint(program, category: "sock", name: "inet_sock_set_state")
        defer { link.close() }
        XCTAssertTrue(link.isAttached)
        XCTAssertEqual(link.target, "tracepoint sock:inet_sock_set_state")

        let source: SampleSource = useRingBuffer
            ? try RingBuffer(table: module.table("events"), lostCounter: module.table("lost"))
            : try PerfBuffer(table: module.table("events"))
        defer { source.close() }
        let samples = Locked<[StateChange]>([])
        let malformed = Locked<[Int]>([])
        try source.start(SampleHandler(onSample: { bytes in
            if let change = StateChange(bytes) {
                samples.withLock { $0.append(change) }
            } else {
                malformed.withLock { $0.append(bytes.count) }
            }
        }))

        let clientPort = try server.connectAcceptClose()
        let serverPort = server.port
        let complete = waitUntil {
            let seen = samples.withLock { $0 }
            // Both ends reached TCP_CLOSE.
            return seen.contains { $0.newState == TCPState.close && $0.sport == clientPort && $0.dport == serverPort }
                && seen.contains { $0.newState == TCPState.close && $0.sport == serverPort && $0.dport == clientPort }
        }
        source.close()
        let seen = samples.withLock { $0 }
        XCTAssertTrue(complete, "both ends did not reach TCP_CLOSE within the deadline; saw \(seen)")
        XCTAssertEqual(malformed.withLock { $0 }, [], "samples of unexpected sizes")
        XCTAssertEqual(source.lostSamples, 0)

        // connect(): CLOSE -> SYN_SENT, in this process's context (before the kernel picks the
        // local port, so sport may still be 0).
        let connect = seen.first { $0.oldState == TCPState.close && $0.newState == TCPState.synSent }
        XCTAssertNotNil(connect, "no CLOSE -> SYN_SENT transition in \(seen)")
        if let connect {
            XCTAssertTrue(connect.sport == 0 || connect.sport == clientPort, "\(connect)")
            XCTAssertEqual(connect.dport, serverPort)
            XCTAssertEqual(connect.pid, UInt32(getpid()))
            XCTAssertEqual(connect.family, UInt16(AF_INET))
            XCTAssertNotEqual(connect.socketAddress, 0)
            // The same socket (same kernel address) is established, closed by close(2) in this
            // process, and reaches TCP_CLOSE.
            let client = seen.filter { $0.socketAddress == connect.socketAddress }
            let established = client.first { $0.newState == TCPState.established }
            XCTAssertEqual(established?.sport, clientPort, "\(client)")
            XCTAssertEqual(established?.dport, serverPort, "\(client)")
            let closing = client.first { $0.oldState == TCPState.established }
            XCTAssertEqual(closing?.newState, TCPState.finWait1, "\(client)")
            XCTAssertEqual(closing?.pid, UInt32(getpid()), "\(client)")
            let closed = client.last { $0.newState == TCPState.close }
            XCTAssertEqual(closed?.sport, clientPort, "the connecting socket never reached TCP_CLOSE: \(client)")
            XCTAssertEqual(closed?.dport, serverPort)
        }
        // The accepted end: ESTABLISHED, with the ports the other way round.
        XCTAssertTrue(
            seen.contains { $0.newState == TCPState.established && $0.sport == serverPort && $0.dport == clientPort },
            "no ESTABLISHED transition for the accepted socket: \(seen)")
        for change in seen {
            XCTAssertEqual(change.family, UInt16(AF_INET), "\(change)")
            XCTAssertTrue(change.sport == serverPort || change.dport == serverPort, "FILTER_PORT let \(change) through")
        }
        if useRingBuffer {
            // One ring for all CPUs: each socket's transitions arrive in the order they happened.
            let client = seen.filter { $0.socketAddress == connect?.socketAddress }
            for (earlier, later) in zip(client, client.dropFirst()) {
                XCTAssertEqual(earlier.newState, later.oldState, "out of order: \(client)")
            }
        }
    }

    // MARK: - Lost samples

    func testTinyPerfBufferReportsLostSamples() throws {
        let server = try LoopbackServer()
        defer { server.close() }
        let module = try BPFModule(source: EmbeddedBPF.stateChangeProbe, cflags: ["-DFILTER_PORT=\(server.port)"])
        let program = try module.loadProgram(Self.probeFunction, type: .tracepoint)
        defer { program.close() }
        let link = try BPFLink.tracepoint(program, category: "sock", name: "inet_sock_set_state")
        defer { link.close() }
        let perf = try PerfBuffer(table: module.table("events"), pageCount: 1)
        defer { perf.close() }

        let consumer = BlockingConsumer()
        defer { consumer.releaseForever() }
        try consumer.fill(perf, from: server)
        consumer.releaseForever()

        // The kernel writes its lost record once there is room again, with the next sample on the
        // same CPU's buffer: keep the traffic going, on every CPU, until the report arrives.
        let reported = waitUntil {
            if perf.lostSamples > 0 && consumer.lostReports > 0 { return true }
            try? CPUAffinity.onEachCPU { _ in _ = try server.connectAcceptClose() }
            return false
        }
        perf.close()
        XCTAssertTrue(reported, "no lost samples reported (lostSamples \(perf.lostSamples), delivered \(consumer.samples))")
        XCTAssertGreaterThan(perf.lostSamples, 0)
        XCTAssertEqual(consumer.lostTotal, perf.lostSamples, "onLost reports add up to lostSamples")
        XCTAssertGreaterThan(consumer.samples, 0)
        print("perf buffer of 1 page: \(consumer.samples) delivered, \(perf.lostSamples) lost")
    }

    func testTinyRingBufferCountsLostSamples() throws {
        guard KernelFeatures.shared.ringBuffer == .yes else {
            let reason = "no BPF ring buffer on this kernel: \(KernelFeatures.shared.ringBuffer)"
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
        // The same probe with a ring of one page.
        let pattern = try NSRegularExpression(pattern: #"BPF_RINGBUF_OUTPUT\(events, *[0-9]+\)"#)
        let original = EmbeddedBPF.stateChangeProbe
        let range = NSRange(original.startIndex..., in: original)
        guard pattern.numberOfMatches(in: original, range: range) == 1 else {
            return XCTFail("bpf/state_change_probe.c no longer declares BPF_RINGBUF_OUTPUT(events, N): update this test")
        }
        let source = pattern.stringByReplacingMatches(in: original, range: range, withTemplate: "BPF_RINGBUF_OUTPUT(events, 1)")

        let server = try LoopbackServer()
        defer { server.close() }
        let module = try BPFModule(source: source, cflags: ["-DUSE_RINGBUF", "-DFILTER_PORT=\(server.port)"])
        XCTAssertEqual(try module.table("events").maxEntries, Int(getpagesize()), "a ring of one page")
        let program = try module.loadProgram(Self.probeFunction, type: .tracepoint)
        defer { program.close() }
        let link = try BPFLink.tracepoint(program, category: "sock", name: "inet_sock_set_state")
        defer { link.close() }
        let ring = try RingBuffer(table: module.table("events"), lostCounter: module.table("lost"))
        defer { ring.close() }

        let consumer = BlockingConsumer()
        defer { consumer.releaseForever() }
        try consumer.fill(ring, from: server)
        // The program counts what the full ring refused, whether or not anyone reads.
        XCTAssertGreaterThan(ring.lostSamples, 0, "the program counted no refused samples")
        consumer.releaseForever()
        let reported = waitUntil { consumer.lostTotal == ring.lostSamples }
        ring.close()
        XCTAssertTrue(reported, "onLost reported \(consumer.lostTotal) of \(ring.lostSamples)")
        XCTAssertGreaterThan(consumer.lostReports, 0)
        print("ring buffer of 1 page: \(consumer.samples) delivered, \(ring.lostSamples) lost")
    }

    // MARK: - Errors

    func testKprobeThatCannotAttachThrowsATypedError() throws {
        let module = try BPFModule(source: "int probe(struct pt_regs *ctx) { return 0; }")
        let program: BPFProgram
        do {
            program = try module.loadProgram("probe", type: .kprobe)
        } catch BPFError.loadFailed(_, let code, let log) {
            // Kernels without CONFIG_BPF_EVENTS have no kprobe programs at all.
            XCTAssertEqual(KernelFeatures.shared.kprobes, .no, "kprobe program refused (\(code)): \(log)")
            return
        }
        defer { program.close() }

        // A function that does not exist never attaches, with or without kprobes.
        XCTAssertThrowsError(try BPFLink.kprobe(program, function: "no_such_kernel_function_xyz")) { error in
            switch error {
            case BPFError.notSupported, BPFError.attachFailed: break
            default: XCTFail("expected .notSupported or .attachFailed, got \(error)")
            }
        }
        XCTAssertThrowsError(try BPFLink.kprobe(program, function: "no_such_kernel_function_xyz", isReturn: true)) { error in
            switch error {
            case BPFError.notSupported, BPFError.attachFailed: break
            default: XCTFail("expected .notSupported or .attachFailed, got \(error)")
            }
        }

        // tcp_set_state attaches exactly when the kernel has kprobes.
        let kprobes = KernelFeatures.shared.kprobes
        XCTAssertTrue(kprobes.isConclusive, "\(kprobes)")
        if kprobes == .yes {
            let link = try BPFLink.kprobe(program, function: "tcp_set_state")
            XCTAssertTrue(link.isAttached)
            XCTAssertEqual(link.target, "kprobe tcp_set_state")
            link.close()
            XCTAssertFalse(link.isAttached)
        } else {
            XCTAssertThrowsError(try BPFLink.kprobe(program, function: "tcp_set_state")) { error in
                guard case BPFError.notSupported(let feature, let minimum, _) = error else {
                    return XCTFail("expected .notSupported, got \(error)")
                }
                XCTAssertEqual(feature, "kprobe tcp_set_state")
                XCTAssertEqual(minimum, "4.1")
            }
        }
    }

    func testTracepointThatDoesNotExistIsNotSupported() throws {
        let module = try BPFModule(source: "int probe(void *ctx) { return 0; }")
        let program = try module.loadProgram("probe", type: .tracepoint)
        defer { program.close() }
        XCTAssertThrowsError(try BPFLink.tracepoint(program, category: "no_such_category", name: "no_such_event")) { error in
            guard case BPFError.notSupported(let feature, _, _) = error else { return XCTFail("expected .notSupported, got \(error)") }
            XCTAssertEqual(feature, "tracepoint no_such_category:no_such_event")
        }
    }

    func testBrokenProgramCarriesClangDiagnostics() throws {
        let source = """
            int probe(void *ctx) {
                return undeclared_variable_xyz + 1;
            }
            """
        XCTAssertThrowsError(try BPFModule(source: source)) { error in
            guard case BPFError.compileFailed(let diagnostics) = error else {
                return XCTFail("expected .compileFailed, got \(error)")
            }
            XCTAssertTrue(diagnostics.contains("undeclared identifier"), diagnostics)
            XCTAssertTrue(diagnostics.contains("undeclared_variable_xyz"), diagnostics)
            XCTAssertTrue((error as! BPFError).description.contains("undeclared identifier"))
        }
    }

    func testVerifierRejectionCarriesTheLog() throws {
        let source = """
            BPF_HASH(values, u32, u64, 1);
            int probe(void *ctx) {
                u32 zero = 0;
                u64 *value = values.lookup(&zero);
                return *value;  /* no NULL check: the verifier refuses */
            }
            """
        let module = try BPFModule(source: source)
        XCTAssertEqual(module.functionNames, ["probe"])
        XCTAssertThrowsError(try module.loadProgram("probe", type: .tracepoint)) { error in
            guard case BPFError.loadFailed(let name, let code, let log) = error else {
                return XCTFail("expected .loadFailed, got \(error)")
            }
            XCTAssertEqual(name, "probe")
            XCTAssertEqual(code, .permissionDenied, "the verifier's refusal is EACCES")
            XCTAssertTrue(log.contains("invalid mem access"), log)
        }
    }

    func testUnknownNamesAreNoSuchObject() throws {
        let module = try BPFModule(source: "BPF_PERF_OUTPUT(events);\nint probe(void *ctx) { return 0; }")
        XCTAssertThrowsError(try module.loadProgram("no_such_function", type: .tracepoint)) { error in
            XCTAssertEqual(error as? BPFError, .noSuchObject(kind: "function", name: "no_such_function"))
        }
        XCTAssertThrowsError(try module.table("no_such_table")) { error in
            XCTAssertEqual(error as? BPFError, .noSuchObject(kind: "table", name: "no_such_table"))
        }
        XCTAssertNoThrow(try module.table("events"))
    }

    // MARK: - Handles: close, deinit, descriptors

    func testTwoHundredAttachCyclesLeaveNoDescriptorsOpen() throws {
        let module = try BPFModule(source: EmbeddedBPF.stateChangeProbe, cflags: [])
        let table = try module.table("events")
        func cycle() throws {
            let program = try module.loadProgram(Self.probeFunction, type: .tracepoint)
            let link = try BPFLink.tracepoint(program, category: "sock", name: "inet_sock_set_state")
            let perf = try PerfBuffer(table: table, pageCount: 1)
            try perf.start(SampleHandler(onSample: { _ in }))
            perf.close()
            link.close()
            program.close()
        }
        let before = openDescriptors()
        for _ in 0..<200 { try cycle() }
        let after = openDescriptors()
        XCTAssertEqual(after.count, before.count, "descriptors left open: \(describe(after.subtracting(before)))")
    }

    func testCloseTwiceIsSafe() throws {
        let module = try BPFModule(source: EmbeddedBPF.stateChangeProbe, cflags: [])
        let attachedBefore = try perfAttachments()  // first, so Process's own descriptors exist before counting
        let before = openDescriptors()
        let program = try module.loadProgram(Self.probeFunction, type: .tracepoint)
        let link = try BPFLink.tracepoint(program, category: "sock", name: "inet_sock_set_state")
        let perf = try PerfBuffer(table: module.table("events"))
        try perf.start(SampleHandler(onSample: { _ in }))
        XCTAssertThrowsError(try perf.start(SampleHandler(onSample: { _ in }))) { error in
            XCTAssertEqual(error as? BPFError, .alreadyStarted("perf buffer events"))
        }
        if let attachedBefore, let attached = try perfAttachments() {
            XCTAssertEqual(attached.subtracting(attachedBefore).count, 1, "bpftool perf show lists the new attachment")
        }

        perf.close()
        perf.close()
        link.close()
        XCTAssertFalse(link.isAttached)
        if let attachedBefore, let attachedAfter = try perfAttachments() {
            XCTAssertEqual(attachedAfter, attachedBefore, "close detached the tracepoint")
        }
        link.close()
        XCTAssertFalse(link.isAttached)
        // The kernel counts a tracepoint program's skipped runs from 6.7 on: none here.
        XCTAssertEqual(program.missedRuns, KernelVersion.running.isAtLeast(6, 7) ? 0 : nil, "a loaded program's skipped runs")
        program.close()
        program.close()
        XCTAssertEqual(program.fd, -1)
        XCTAssertNil(program.missedRuns, "nothing to read once closed")
        let after = openDescriptors()
        XCTAssertEqual(after, before, "left open: \(describe(after.symmetricDifference(before)))")

        // A closed perf buffer can start again.
        let again = try PerfBuffer(table: module.table("events"))
        try again.start(SampleHandler(onSample: { _ in }))
        again.close()
        XCTAssertEqual(openDescriptors(), before)
    }

    func testHandlesDroppedWithoutCloseDetach() throws {
        let module = try BPFModule(source: EmbeddedBPF.stateChangeProbe, cflags: [])
        let ringModule = KernelFeatures.shared.ringBuffer == .yes
            ? try BPFModule(source: EmbeddedBPF.stateChangeProbe, cflags: ["-DUSE_RINGBUF"]) : nil
        if ringModule == nil { print("note: no ring buffers here; only the perf buffer's deinit is checked") }
        let attachedBefore = try perfAttachments()  // first, so Process's own descriptors exist before counting
        let before = openDescriptors()
        do {
            let program = try module.loadProgram(Self.probeFunction, type: .tracepoint)
            let link = try BPFLink.tracepoint(program, category: "sock", name: "inet_sock_set_state")
            let perf = try PerfBuffer(table: module.table("events"))
            try perf.start(SampleHandler(onSample: { _ in }))
            let ring = try ringModule.map { try RingBuffer(table: $0.table("events"), lostCounter: $0.table("lost")) }
            try ring?.start(SampleHandler(onSample: { _ in }))
            XCTAssertTrue(link.isAttached)
            XCTAssertGreaterThan(openDescriptors().count, before.count)
            if let attachedBefore, let attached = try perfAttachments() {
                XCTAssertEqual(attached.subtracting(attachedBefore).count, 1, "bpftool perf show lists the new attachment")
            }
            withExtendedLifetime((program, link, perf, ring)) {}
        }
        // Everything above went out of scope without close().
        let after = openDescriptors()
        XCTAssertEqual(after, before, "deinit left open: \(describe(after.subtracting(before)))")
        if let attachedBefore, let attachedAfter = try perfAttachments() {
            XCTAssertEqual(attachedAfter, attachedBefore, "deinit left the tracepoint attached")
        }
    }

    // MARK: - Maps

    /// The kernel's own count of a tracepoint's hits (perf events, no program): exactly the
    /// TCP closes of one connection's two ends and its listener, and none once frozen.
    func testTracepointCounterCountsTheFilteredHitsUntilFrozen() throws {
        let port = freePort()
        let counter = try TracepointCounter(
            category: "sock", name: "inet_sock_set_state",
            filter: "protocol == 6 && newstate == 7 && (sport == \(port) || dport == \(port))")
        func connectionOnPort() throws {
            let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "100", "--send", "10"])
            _ = try server.nextLine()
            let client = try LoopbackClient(port: port)
            client.send(100)
            XCTAssertEqual(client.receive(10), 10)
            close(client.fd)
            server.waitForSuccess()
        }
        XCTAssertEqual(counter.count, 0, "nothing on the port yet")
        try connectionOnPort()
        let deadline = Date().addingTimeInterval(10)
        while counter.count < 3 && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(counter.count, 3, "the client's end, the server's end and the listener")
        counter.freeze()
        try connectionOnPort()
        usleep(200_000)
        XCTAssertEqual(counter.count, 3, "frozen: the second connection's closes are not counted")
        counter.freeze()
        XCTAssertEqual(counter.count, 3, "a second freeze changes nothing")
    }

    func testTypedMapAccess() throws {
        let source = """
            BPF_HASH(counts, u32, u64, 64);
            BPF_TABLE("lru_hash", u64, u64, recent, 16);
            BPF_ARRAY(slots, u64, 4);
            BPF_PERCPU_ARRAY(percpu, u64, 2);
            BPF_PERF_OUTPUT(events);
            int probe(void *ctx) {
                u32 key = 0;
                u64 zero = 0, *value;
                counts.lookup_or_try_init(&key, &zero);
                recent.lookup(&zero);
                slots.lookup(&key);
                value = percpu.lookup(&key);
                if (value) (*value)++;
                return 0;
            }
            """
        let module = try BPFModule(source: source)

        // Metadata, as declared.
        let countsTable = try module.table("counts")
        XCTAssertEqual(countsTable.type, .hash)
        XCTAssertEqual(countsTable.keySize, 4)
        XCTAssertEqual(countsTable.valueSize, 8)
        XCTAssertEqual(countsTable.maxEntries, 64)
        XCTAssertEqual(try module.table("recent").type, .lruHash)
        XCTAssertEqual(try module.table("slots").type, .array)
        XCTAssertEqual(try module.table("percpu").type, .perCPUArray)
        XCTAssertEqual(try module.table("events").type, .perfEventArray)

        // Hash: update, lookup, delete, iterate, flags.
        let counts = try countsTable.typed(key: UInt32.self, value: UInt64.self)
        XCTAssertEqual(counts.valuesPerKey, 1)
        XCTAssertEqual(try counts.keys(), [])
        try counts.update(1, 10)
        try counts.update(2, 20)
        try counts.update(3, 30)
        XCTAssertEqual(try counts.lookup(2), 20)
        XCTAssertNil(try counts.lookup(99))
        XCTAssertEqual(try counts.keys().sorted(), [1, 2, 3])
        XCTAssertEqual(try counts.entries().map { "\($0.key)=\($0.values)" }.sorted(), ["1=[10]", "2=[20]", "3=[30]"])
        XCTAssertTrue(try counts.delete(2))
        XCTAssertFalse(try counts.delete(2))
        XCTAssertEqual(try counts.keys().sorted(), [1, 3])
        try counts.update(1, 11, flags: .exist)
        XCTAssertEqual(try counts.lookup(1), 11)
        XCTAssertThrowsError(try counts.update(1, 12, flags: .noExist)) { error in
            XCTAssertEqual(error as? BPFError, .mapOperationFailed(map: "counts", operation: "update", errno: .fileExists))
        }
        XCTAssertThrowsError(try counts.update(50, 1, flags: .exist)) { error in
            XCTAssertEqual(error as? BPFError, .mapOperationFailed(map: "counts", operation: "update", errno: .noSuchFileOrDirectory))
        }
        for key in UInt32(100)..<UInt32(161) { try counts.update(key, UInt64(key)) }  // 2 + 61 = 63 of 64
        try counts.update(200, 1)
        XCTAssertThrowsError(try counts.update(201, 1)) { error in
            XCTAssertEqual(error as? BPFError, .mapOperationFailed(map: "counts", operation: "update", errno: .argListTooLong))
        }
        XCTAssertEqual(try counts.keys().count, 64)

        // LRU hash: full is not an error, the least recently used go.
        let recent = try module.table("recent").typed(key: UInt64.self, value: UInt64.self)
        for key in UInt64(0)..<UInt64(200) { try recent.update(key, key * 2) }
        let kept = try recent.keys()
        XCTAssertLessThanOrEqual(kept.count, 16)
        XCTAssertFalse(kept.isEmpty)
        XCTAssertEqual(try recent.lookup(199), 398, "the newest entry survives")
        XCTAssertNil(try recent.lookup(0), "the oldest entry was evicted")

        // Array: every key exists, none can be deleted, out of range is absent.
        let slots = try module.table("slots").typed(key: UInt32.self, value: UInt64.self)
        XCTAssertEqual(try slots.keys(), [0, 1, 2, 3])
        XCTAssertEqual(try slots.lookup(3), 0)
        try slots.update(3, 7)
        XCTAssertEqual(try slots.lookup(3), 7)
        XCTAssertNil(try slots.lookup(4))
        XCTAssertThrowsError(try slots.delete(0)) { error in
            XCTAssertEqual(error as? BPFError, .mapOperationFailed(map: "slots", operation: "delete", errno: .invalidArgument))
        }

        // Per-CPU array: one value per possible CPU.
        let percpu = try module.table("percpu").typed(key: UInt32.self, value: UInt64.self)
        XCTAssertEqual(percpu.valuesPerKey, CPUs.possibleCount)
        XCTAssertEqual(try percpu.lookupPerCPU(0), [UInt64](repeating: 0, count: CPUs.possibleCount))
        try percpu.update(1, 5)
        XCTAssertEqual(try percpu.lookupPerCPU(1), [UInt64](repeating: 5, count: CPUs.possibleCount))
        XCTAssertEqual(try percpu.lookup(1), 5)
        XCTAssertNil(try percpu.lookupPerCPU(2))

        // Swift types whose sizes differ from the C declaration are refused up front.
        for attempt in [
            { _ = try countsTable.typed(key: UInt64.self, value: UInt64.self) },
            { _ = try countsTable.typed(key: UInt32.self, value: UInt32.self) },
            { _ = try module.table("slots").typed(key: UInt16.self, value: UInt64.self) },
            { _ = try module.table("percpu").typed(key: UInt32.self, value: UInt32.self) },
        ] as [() throws -> Void] {
            XCTAssertThrowsError(try attempt()) { error in
                guard case BPFError.invalidArgument(let message) = error else {
                    return XCTFail("expected .invalidArgument, got \(error)")
                }
                XCTAssertTrue(message.contains("bytes in C"), message)
            }
        }

        // Readers refuse the wrong kind of map and bad sizes.
        XCTAssertThrowsError(try PerfBuffer(table: module.table("slots"))) { error in
            guard case BPFError.invalidArgument = error else { return XCTFail("expected .invalidArgument, got \(error)") }
        }
        XCTAssertThrowsError(try PerfBuffer(table: module.table("events"), pageCount: 3)) { error in
            guard case BPFError.invalidArgument = error else { return XCTFail("expected .invalidArgument, got \(error)") }
        }
        XCTAssertThrowsError(try RingBuffer(table: module.table("events"))) { error in
            guard case BPFError.invalidArgument = error else { return XCTFail("expected .invalidArgument, got \(error)") }
        }
    }

    // MARK: - Kernel features

    func testKernelFeaturesAreConclusiveAndConsistent() throws {
        let features = KernelFeatures()
        print("kernel features: \(features.summary)")

        XCTAssertEqual(features.btf, access("/sys/kernel/btf/vmlinux", R_OK) == 0 ? .yes : .no)

        let tracefs = try XCTUnwrap(SystemChecks.tracefsPath)
        let setState = features.tracepoint("sock", "inet_sock_set_state")
        XCTAssertEqual(setState, access("\(tracefs)/events/sock/inet_sock_set_state", F_OK) == 0 ? .yes : .no)
        if KernelVersion.running.isAtLeast(4, 16) { XCTAssertEqual(setState, .yes) }
        XCTAssertEqual(features.tracepoint("no_such_category", "no_such_event"), .no)

        // kprobes: conclusive as root with tracefs, and in line with the kernel's configuration.
        let kprobes = features.kprobes
        XCTAssertTrue(kprobes.isConclusive, "\(kprobes)")
        let pmu = access("/sys/bus/event_source/devices/kprobe", F_OK) == 0
        if pmu { XCTAssertEqual(kprobes, .yes) }
        if let config = kernelConfig() {
            let enabled = config.contains("\nCONFIG_KPROBE_EVENTS=y")
            XCTAssertEqual(kprobes, enabled ? .yes : .no, "CONFIG_KPROBE_EVENTS is \(enabled ? "" : "not ")set")
        } else {
            print("note: no /proc/config.gz; kprobes checked against the kprobe PMU only")
        }

        // Ring buffers: conclusive, and present on every kernel since 5.8.
        let ringBuffer = features.ringBuffer
        XCTAssertTrue(ringBuffer.isConclusive, "\(ringBuffer)")
        if KernelVersion.running.isAtLeast(5, 8) { XCTAssertEqual(ringBuffer, .yes) }

        // fentry: conclusive as root, and in agreement with loading and attaching a real
        // KFUNC_PROBE through BCC, errno included (EPERM on the reference host).
        let fentry = features.fentry("tcp_set_state")
        XCTAssertTrue(fentry.isConclusive, "\(fentry)")
        if !KernelVersion.running.isAtLeast(5, 5) { XCTAssertEqual(fentry, .no) }
        XCTAssertEqual(features.fentry("no_such_kernel_function_xyz"), .no)
        let module = try BPFModule(source: """
            struct sock;
            KFUNC_PROBE(tcp_set_state, struct sock *sk, int state) { return 0; }
            """)
        let name = try XCTUnwrap(module.functionNames.first { $0.hasPrefix("kfunc__") }, "\(module.functionNames)")
        do {
            let program = try module.loadProgram(name, type: .tracing)
            defer { program.close() }
            let link = try BPFLink.kfunc(program)
            link.close()
            XCTAssertEqual(fentry, .yes, "an fentry program loaded and attached, but the probe said \(fentry)")
        } catch {
            let code: Int32
            switch error {
            case .loadFailed(_, let errno, _), .attachFailed(_, let errno): code = errno.rawValue
            default: throw error
            }
            guard case .no(let reason) = fentry else {
                return XCTFail("BCC's fentry program failed (\(error)), but the probe said \(fentry)")
            }
            XCTAssertTrue(reason.contains("(errno \(code))"), "BCC got errno \(code); the probe said \(reason)")
            print("fentry: BCC's KFUNC_PROBE failed as the probe said: \(error)")
        }

        // cgroup sock_release: as the probe says, a real program loads and attaches at the root of
        // the cgroup v2 hierarchy (detached at once).
        let release = features.cgroupSocketRelease
        XCTAssertTrue(release.isConclusive, "\(release)")
        if let cgroup = SystemChecks.cgroup2Path {
            if KernelVersion.running.isAtLeast(5, 9) { XCTAssertEqual(release, .yes) }
            let releaseModule = try BPFModule(source: "int on_release(struct bpf_sock *sk) { return 1; }")
            do {
                let program = try releaseModule.loadProgram(
                    "on_release", type: .cgroupSock, expectedAttachType: CgroupAttachType.socketRelease.rawValue)
                defer { program.close() }
                let link = try BPFLink.cgroup(program, path: cgroup, type: .socketRelease)
                XCTAssertTrue(link.isAttached)
                link.close()
                XCTAssertEqual(release, .yes, "a sock_release program loaded and attached, but the probe said \(release)")
            } catch {
                XCTAssertEqual(release, .no, "a sock_release program failed (\(error)), but the probe said \(release)")
            }
        } else {
            XCTAssertEqual(release, .no, "no cgroup v2 hierarchy")
        }

        // Answers are cached: asking again gives the same.
        XCTAssertEqual(features.kprobes, kprobes)
        XCTAssertEqual(features.fentry("tcp_set_state"), fentry)
        XCTAssertEqual(features.cgroupSocketRelease, release)
    }

    // MARK: - Helpers

    /// The open descriptors of this process (names in /proc/self/fd, without the one listing it).
    private func openDescriptors() -> Set<Int32> {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        let own = dirfd(directory)
        var result = Set<Int32>()
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if let fd = Int32(name), fd != own { result.insert(fd) }
        }
        return result
    }

    private func describe(_ fds: Set<Int32>) -> String {
        fds.sorted().map { fd in
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? "?"
            return "\(fd) -> \(target)"
        }.joined(separator: ", ")
    }

    /// This process's perf-event attachments as `bpftool perf show` lists them (the descriptors
    /// holding them), or nil when bpftool is not installed.
    private func perfAttachments() throws -> Set<Int32>? {
        let candidates = ["/usr/sbin/bpftool", "/sbin/bpftool", "/usr/bin/bpftool", "/usr/local/sbin/bpftool"]
        guard let bpftool = candidates.first(where: { access($0, X_OK) == 0 }) else {
            print("note: bpftool not installed; attachments checked by descriptors only")
            return nil
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bpftool)
        process.arguments = ["--json", "perf", "show"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        waitUntilExit(process)
        guard process.terminationStatus == 0 else { return nil }
        let entries = try JSONSerialization.jsonObject(with: data.isEmpty ? Data("[]".utf8) : data) as? [[String: Any]] ?? []
        return Set(entries.compactMap { entry -> Int32? in
            guard (entry["pid"] as? Int).map({ Int32($0) }) == getpid() else { return nil }
            return (entry["fd"] as? Int).map { Int32($0) }
        })
    }

    /// The kernel's build configuration, when it exposes one.
    private func kernelConfig() -> String? {
        guard access("/proc/config.gz", R_OK) == 0 else { return nil }
        guard let (status, data) = runToEnd("/bin/gzip", ["-dc", "/proc/config.gz"]), status == 0 else { return nil }
        return "\n" + String(decoding: data, as: UTF8.self)
    }
}

// MARK: - Test support

/// Polls `condition` every 10 ms until it holds or `seconds` pass; returns whether it held.
fileprivate func waitUntil(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = DispatchTime.now() + seconds
    while DispatchTime.now() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// `TCP_*` states from `include/net/tcp_states.h`.
fileprivate enum TCPState {
    static let established: Int32 = 1
    static let synSent: Int32 = 2
    static let finWait1: Int32 = 4
    static let close: Int32 = 7
}

/// `struct state_change_t` of `bpf/state_change_probe.c`.
fileprivate struct StateChange: CustomStringConvertible {
    var socketAddress: UInt64
    var pid: UInt32
    var oldState: Int32
    var newState: Int32
    var sport: UInt16
    var dport: UInt16
    var family: UInt16

    static let size = 32

    /// Decodes a sample; perf samples may carry padding after the struct.
    init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        socketAddress = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        pid = bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        oldState = bytes.loadUnaligned(fromByteOffset: 12, as: Int32.self)
        newState = bytes.loadUnaligned(fromByteOffset: 16, as: Int32.self)
        sport = bytes.loadUnaligned(fromByteOffset: 20, as: UInt16.self)
        dport = bytes.loadUnaligned(fromByteOffset: 22, as: UInt16.self)
        family = bytes.loadUnaligned(fromByteOffset: 24, as: UInt16.self)
    }

    var description: String { "[\(sport)->\(dport) \(oldState)->\(newState) pid \(pid) af \(family)]" }
}

/// A sample handler that blocks inside its first sample until released, so the buffer behind it
/// fills up; it counts samples and lost reports.
fileprivate final class BlockingConsumer: Sendable {
    private let entered = DispatchSemaphore(value: 0)
    private let release = DispatchSemaphore(value: 0)
    private let state = Locked<(samples: Int, lostReports: Int, lostTotal: UInt64, released: Bool)>((0, 0, 0, false))

    var samples: Int { state.withLock { $0.samples } }
    var lostReports: Int { state.withLock { $0.lostReports } }
    var lostTotal: UInt64 { state.withLock { $0.lostTotal } }

    var handler: SampleHandler {
        SampleHandler(
            onSample: { [self] _ in
                let first = state.withLock { state -> Bool in
                    state.samples += 1
                    return state.samples == 1
                }
                if first {
                    entered.signal()
                    release.wait()
                }
            },
            onLost: { [self] count in
                state.withLock {
                    $0.lostReports += 1
                    $0.lostTotal += count
                }
            })
    }

    /// Waits (up to 5 s) until the handler is stuck in its first sample.
    func waitUntilBlocked() -> Bool { entered.wait(timeout: .now() + 5) == .success }

    /// Starts `source` with this handler, makes a connection to `server` and, once the handler is
    /// stuck in its first sample, `connections` more: far more samples than the buffer holds.
    func fill(_ source: SampleSource, from server: LoopbackServer, connections: Int = 2000, file: StaticString = #filePath, line: UInt = #line) throws {
        try source.start(handler)
        _ = try server.connectAcceptClose()
        XCTAssertTrue(waitUntilBlocked(), "the first sample never arrived", file: file, line: line)
        for _ in 0..<connections { _ = try server.connectAcceptClose() }
    }

    /// Lets the handler go; safe to call more than once.
    func releaseForever() {
        let already = state.withLock { state -> Bool in
            defer { state.released = true }
            return state.released
        }
        if !already { release.signal() }
    }
}

/// A TCP listener on 127.0.0.1 at a port the kernel picks.
fileprivate final class LoopbackServer {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(errno, "socket") }
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 4096) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else {
            let code = errno
            Glibc.close(fd)
            throw POSIXError(code, "bind/listen")
        }
        self.fd = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    /// Connects to the listener, accepts, closes both ends (the client first); returns the client's port.
    func connectAcceptClose() throws -> UInt16 {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard client >= 0 else { throw POSIXError(errno, "socket") }
        var address = Self.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            Glibc.close(client)
            throw POSIXError(code, "connect")
        }
        let accepted = accept(fd, nil, nil)
        guard accepted >= 0 else {
            let code = errno
            Glibc.close(client)
            throw POSIXError(code, "accept")
        }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(client, $0, &length) }
        }
        Glibc.close(client)
        Glibc.close(accepted)
        return UInt16(bigEndian: local.sin_port)
    }

    func close() { Glibc.close(fd) }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }
}

extension POSIXError {
    fileprivate init(_ code: Int32, _ call: String) {
        self.init(POSIXErrorCode(rawValue: code) ?? .EIO, userInfo: [NSLocalizedDescriptionKey: "\(call) failed"])
    }
}
