import BCCRuntime
import Foundation
import TCPEvent
import XCTest

/// Real loopback connections between separate processes, traced by `TCPMonitor` and checked
/// field by field against what each process did.
final class TCPMonitorIntegrationTests: XCTestCase {
    /// `nobody`: the other user some traffic runs as.
    let otherUID: UInt32 = 65_534
    /// What `comm` shows for the traffic generator (15 bytes of its name).
    let command = "netevents-traff"

    struct Exchange {
        /// The close of each end.
        var server: TCPConnectionEvent
        var client: TCPConnectionEvent
        /// The client's connect and the server's accept.
        var connect: TCPConnectionEvent
        var accept: TCPConnectionEvent
        var serverPID: Int32
        var clientPID: Int32
        var serverPort: UInt16
        var clientPort: UInt16
        var startNanoseconds: UInt64
        var endNanoseconds: UInt64
    }

    /// One connection: the client sends `send` bytes, the server answers `reply` bytes, both close.
    /// With `abort`, the client resets the connection once the server has read everything.
    func exchange(
        ipv6: Bool, send: Int, reply: Int, serverUID: UInt32?, clientUID: UInt32?, abort: Bool = false,
        configure: (inout TCPMonitor.Configuration) -> Void = { _ in }
    ) throws -> Exchange {
        try requireBPF()
        let port = freePort()
        var configuration = TCPMonitor.Configuration(filter: .init(ports: [port]))
        configure(&configuration)
        let monitor = try TCPMonitor(configuration: configuration)
        let collector = Collector<TCPConnectionEvent>()
        try monitor.start { collector.add($0) }
        defer { monitor.stop() }
        let start = UInt64(WallClock.now(CLOCK_REALTIME))

        let family = ipv6 ? ["-6"] : []
        var serverArguments = ["tcp-server"] + family + ["--port", "\(port)", "--receive", "\(send)", "--send", "\(reply)"]
        if let serverUID { serverArguments += ["--uid", "\(serverUID)"] }
        if abort { serverArguments.append("--expect-reset") }
        let server = try TrafficProcess(serverArguments)
        _ = try server.nextLine()
        var clientArguments = ["tcp-client"] + family + ["--port", "\(port)", "--send", "\(send)", "--receive", "\(reply)"]
        if let clientUID { clientArguments += ["--uid", "\(clientUID)"] }
        if abort { clientArguments.append("--abort") }
        let client = try TrafficProcess(clientArguments)
        let connected = try client.nextLine()
        let clientPort = try XCTUnwrap(connected["port"].flatMap { UInt16($0) })
        if abort {
            // The server has read everything; now the client resets the connection.
            XCTAssertEqual(try server.nextLine()["received"], "\(send)")
            client.proceed()
        }
        _ = try client.nextLine()
        _ = try server.nextLine()
        client.waitForSuccess()
        server.waitForSuccess()

        let events = collector.wait { $0.count >= 4 }
        let end = UInt64(WallClock.now(CLOCK_REALTIME))
        XCTAssertEqual(events.map(\.kind).sorted { $0.description < $1.description }, [.accept, .close, .close, .connect], "\(events)")
        func only(_ kind: TCPConnectionEvent.Kind, port: UInt16, _ end: String) throws -> TCPConnectionEvent {
            try XCTUnwrap(events.first { $0.kind == kind && $0.sourcePort == port }, "no \(kind) for the \(end) end in \(events)")
        }
        XCTAssertEqual(monitor.statistics.lostSamples, 0)
        XCTAssertEqual(monitor.statistics.malformedSamples, 0)
        // The kernel's own count of TCP closes against the program's runs (the raw tracepoint
        // only): every close of the machine's meanwhile, ours included, seen.
        if Self.stateChangeIsRaw(monitor) {
            XCTAssertEqual(monitor.statistics.unseenEvents, 0, "closes no program run saw (\(monitor.report?.notes ?? []))")
        } else {
            XCTAssertNil(monitor.statistics.unseenEvents, "only the tracepoint hook is cross-checked")
        }
        return Exchange(
            server: try only(.close, port: port, "server"), client: try only(.close, port: clientPort, "client"),
            connect: try only(.connect, port: clientPort, "client"), accept: try only(.accept, port: port, "server"),
            serverPID: server.pid, clientPID: client.pid, serverPort: port, clientPort: clientPort, startNanoseconds: start,
            endNanoseconds: end)
    }

    /// Checks what both ends have in common with the process that owned them.
    func checkEnds(_ exchange: Exchange, ipv6: Bool, serverUID: UInt32, clientUID: UInt32, file: StaticString = #filePath, line: UInt = #line) {
        let loopback = IPAddress(ipv6 ? "::1" : "127.0.0.1")!
        let namespace = networkNamespaceInode()
        for (event, pid, uid, source, local, remote) in [
            (exchange.server, exchange.serverPID, serverUID, TCPConnectionEvent.OwnerSource.accept, exchange.serverPort, exchange.clientPort),
            (exchange.client, exchange.clientPID, clientUID, .connect, exchange.clientPort, exchange.serverPort),
        ] {
            XCTAssertEqual(event.pid, pid, "pid of the \(source) end", file: file, line: line)
            XCTAssertEqual(event.uid, uid, "uid of the \(source) end", file: file, line: line)
            XCTAssertEqual(event.command, command, file: file, line: line)
            XCTAssertEqual(event.executable, "netevents-traffic", "read in the kernel", file: file, line: line)
            XCTAssertEqual(event.cgroup, ownCgroup(), "the cgroup of cgroup_id, named", file: file, line: line)
            XCTAssertEqual(event.ownerSource, source, file: file, line: line)
            XCTAssertEqual(event.family, ipv6 ? .ipv6 : .ipv4, file: file, line: line)
            XCTAssertEqual(event.sourceAddress, loopback, file: file, line: line)
            XCTAssertEqual(event.destinationAddress, loopback, file: file, line: line)
            XCTAssertEqual(event.sourcePort, local, file: file, line: line)
            XCTAssertEqual(event.destinationPort, remote, file: file, line: line)
            XCTAssertGreaterThanOrEqual(event.timeNanoseconds, exchange.startNanoseconds, file: file, line: line)
            XCTAssertLessThanOrEqual(event.timeNanoseconds, exchange.endNanoseconds, file: file, line: line)
            let duration = try? XCTUnwrap(event.durationNanoseconds, file: file, line: line)
            XCTAssertLessThanOrEqual(duration ?? .max, exchange.endNanoseconds - exchange.startNanoseconds, file: file, line: line)
            XCTAssertGreaterThan(duration ?? 0, 0, file: file, line: line)
            XCTAssertNotEqual(event.cgroupID, 0, file: file, line: line)
            XCTAssertEqual(event.networkNamespace, namespace, file: file, line: line)
            XCTAssertGreaterThanOrEqual(event.segmentsIn, event.dataSegmentsIn, file: file, line: line)
            XCTAssertGreaterThanOrEqual(event.segmentsOut, event.dataSegmentsOut, file: file, line: line)
            XCTAssertEqual(event.kind, .close, file: file, line: line)
            XCTAssertNil(event.latencyNanoseconds, file: file, line: line)
            XCTAssertGreaterThan(event.health.smoothedRTTMicroseconds, 0, "an RTT was measured", file: file, line: line)
            XCTAssertNotNil(event.health.minimumRTTMicroseconds, file: file, line: line)
            XCTAssertLessThanOrEqual(event.health.minimumRTTMicroseconds ?? .max, event.health.smoothedRTTMicroseconds * 8 + 1, file: file, line: line)
            XCTAssertEqual(event.health.retransmits, 0, "loopback loses nothing", file: file, line: line)
        }
        // The opens: the same owners and endpoints, before the closes.
        for (open, close) in [(exchange.connect, exchange.client), (exchange.accept, exchange.server)] {
            XCTAssertEqual(open.process, close.process, "\(open.kind)", file: file, line: line)
            XCTAssertEqual(open.ownerSource, close.ownerSource, file: file, line: line)
            XCTAssertEqual(open.endpoints, close.endpoints, file: file, line: line)
            XCTAssertEqual(open.cgroupID, close.cgroupID, file: file, line: line)
            XCTAssertEqual(open.networkNamespace, namespace, file: file, line: line)
            XCTAssertGreaterThanOrEqual(open.timeNanoseconds, exchange.startNanoseconds, file: file, line: line)
            XCTAssertLessThanOrEqual(open.timeNanoseconds, close.timeNanoseconds, file: file, line: line)
            XCTAssertNil(open.durationNanoseconds, file: file, line: line)
            XCTAssertNil(open.error, file: file, line: line)
            XCTAssertEqual(open.dataSegmentsOut, 0, "nothing sent before the open is reported", file: file, line: line)
            XCTAssertEqual(open.socketID, close.socketID, "one socket id per end", file: file, line: line)
            if KernelFeatures.shared.socketCookies.isYes {
                XCTAssertNotNil(close.socketID, "the kernel gives sockets cookies here", file: file, line: line)
            }
        }
        XCTAssertNotEqual(exchange.client.socketID ?? 1, exchange.server.socketID ?? 2, "the ends are two sockets", file: file, line: line)
        let latency = try? XCTUnwrap(exchange.connect.latencyNanoseconds, "a connect carries its latency", file: file, line: line)
        XCTAssertGreaterThan(latency ?? 0, 0, file: file, line: line)
        XCTAssertLessThan(latency ?? .max, exchange.client.durationNanoseconds ?? 0, "SYN to established, within the lifetime", file: file, line: line)
        XCTAssertEqual(exchange.connect.previousState, .synSent, file: file, line: line)
        XCTAssertEqual(exchange.connect.sentBytes, 1, "the SYN, acknowledged", file: file, line: line)
        XCTAssertNil(exchange.accept.latencyNanoseconds, file: file, line: line)
        XCTAssertNil(exchange.accept.previousState, "an accept is no state change", file: file, line: line)
        // Every data segment one end sent, the other received.
        XCTAssertEqual(exchange.client.dataSegmentsOut, exchange.server.dataSegmentsIn, file: file, line: line)
        XCTAssertEqual(exchange.server.dataSegmentsOut, exchange.client.dataSegmentsIn, file: file, line: line)
    }

    /// Byte counts of a graceful close: `tcp_info` counts the SYN (active side) and FIN.
    func checkGracefulBytes(_ exchange: Exchange, send: Int, reply: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(exchange.client.sentBytes, UInt64(send + 2), "client tx: data + SYN + FIN", file: file, line: line)
        XCTAssertEqual(exchange.client.receivedBytes, UInt64(reply + 1), "client rx: data + FIN", file: file, line: line)
        XCTAssertEqual(exchange.server.receivedBytes, UInt64(send + 1), "server rx: data + FIN", file: file, line: line)
        XCTAssertEqual(exchange.server.sentBytes, UInt64(reply + 1), "server tx: data + FIN", file: file, line: line)
        XCTAssertGreaterThanOrEqual(exchange.client.dataSegmentsOut, 1, file: file, line: line)
    }

    func testIPv4ExchangeWithServerUnderAnotherUser() throws {
        let result = try exchange(ipv6: false, send: 12_345, reply: 777, serverUID: otherUID, clientUID: nil)
        checkEnds(result, ipv6: false, serverUID: otherUID, clientUID: 0)
        checkGracefulBytes(result, send: 12_345, reply: 777)
    }

    func testIPv6ExchangeWithClientUnderAnotherUser() throws {
        let result = try exchange(ipv6: true, send: 300_000, reply: 4_321, serverUID: nil, clientUID: otherUID)
        checkEnds(result, ipv6: true, serverUID: 0, clientUID: otherUID)
        checkGracefulBytes(result, send: 300_000, reply: 4_321)
        XCTAssertGreaterThan(result.client.dataSegmentsOut, 1, "300 kB takes more than one segment")
    }

    func testPerfBufferTransport() throws {
        let result = try exchange(ipv6: false, send: 1_000, reply: 2_000, serverUID: otherUID, clientUID: nil) {
            $0.transport = .perfBuffer
        }
        checkEnds(result, ipv6: false, serverUID: otherUID, clientUID: 0)
        checkGracefulBytes(result, send: 1_000, reply: 2_000)
    }

    /// SO_LINGER 0: the client resets; the server's socket closes in whichever context processes the
    /// RST (on loopback, the client's), and must still belong to the server.
    func testAbortiveCloseIsAttributedToEachEndsOwner() throws {
        let result = try exchange(ipv6: false, send: 5_000, reply: 0, serverUID: otherUID, clientUID: nil, abort: true)
        checkEnds(result, ipv6: false, serverUID: otherUID, clientUID: 0)
        XCTAssertEqual(result.client.sentBytes, 5_001, "client tx: data + SYN, no FIN")
        XCTAssertEqual(result.client.receivedBytes, 0)
        XCTAssertEqual(result.server.receivedBytes, 5_000, "server rx: data, no FIN")
        XCTAssertEqual(result.server.sentBytes, 0)
        XCTAssertEqual(result.server.previousState, .established, "the server's socket was reset while established")
        XCTAssertEqual(result.client.previousState, .established)
    }

    func testBurstOfTenThousandConnectionsDeliversEveryEnd() throws {
        try requireBPF()
        let port = freePort()
        let (monitor, collector) = try collectingTCPMonitor(.init(filter: .init(ports: [port])))
        defer { monitor.stop() }
        let count = 10_000
        let burst = try TrafficProcess(["tcp-burst", "--port", "\(port)", "--count", "\(count)"])
        _ = try burst.nextLine()
        let done = try burst.nextLine(timeout: 120)
        burst.waitForSuccess()
        let events = collector.wait(timeout: 60) { $0.count >= 4 * count }.filter { $0.kind == .close }
        monitor.stop()
        let statistics = monitor.statistics
        print("burst: \(done["rate"] ?? "?") connections/s, \(collector.events.count) events, \(statistics)")
        XCTAssertEqual(collector.events.count, 4 * count, "the connect, accept and closes of every connection")
        for kind in [TCPConnectionEvent.Kind.connect, .accept] {
            XCTAssertEqual(collector.events.filter { $0.kind == kind }.count, count, "\(kind)")
        }
        XCTAssertEqual(events.count, 2 * count, "every end's close")
        // Each end has its own socket id, the same in its open event and its close.
        XCTAssertEqual(Set(events.compactMap(\.socketID)).count, 2 * count, "a distinct socket id per end")
        let opened = Set(collector.events.filter { $0.kind != .close }.compactMap(\.socketID))
        XCTAssertEqual(opened, Set(events.compactMap(\.socketID)), "the opens and closes carry the same ids")
        XCTAssertEqual(statistics.lostSamples, 0)
        XCTAssertEqual(statistics.droppedEvents, 0)
        XCTAssertEqual(statistics.evictedSockets, 0)
        // The kernel's own count of TCP closes (every socket of the machine's) against the
        // program's runs: none unseen. Only the raw tracepoint has that count.
        if Self.stateChangeIsRaw(monitor) {
            XCTAssertEqual(statistics.unseenEvents, 0, "every close the kernel counted, a program run saw: \(monitor.report?.notes ?? [])")
        } else {
            XCTAssertNil(statistics.unseenEvents)
        }
        XCTAssertEqual(events.filter { $0.ownerSource == .connect }.count, count)
        XCTAssertEqual(events.filter { $0.ownerSource == .accept }.count, count)
        XCTAssertTrue(events.allSatisfy { $0.pid == burst.pid }, "every end belongs to the generator")
        // One byte each way: the client's tx is SYN + 1 + FIN, the server's rx is 1 + FIN.
        XCTAssertTrue(events.filter { $0.ownerSource == .connect }.allSatisfy { $0.sentBytes == 3 && $0.receivedBytes == 2 })
        XCTAssertTrue(events.filter { $0.ownerSource == .accept }.allSatisfy { $0.sentBytes == 2 && $0.receivedBytes == 2 })
    }

    func testInKernelUIDFilterKeepsOnlyThatUsersEnd() throws {
        try requireBPF()
        let port = freePort()
        let monitor = try TCPMonitor(configuration: .init(filter: .init(uid: otherUID, ports: [port])))
        let collector = Collector<TCPConnectionEvent>()
        try monitor.start { collector.add($0) }
        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "10", "--send", "10", "--uid", "\(otherUID)"])
        _ = try server.nextLine()
        let client = try TrafficProcess(["tcp-client", "--port", "\(port)", "--send", "10", "--receive", "10"])
        _ = try client.nextLine()
        _ = try client.nextLine()
        _ = try server.nextLine()
        collector.wait { $0.count >= 2 }
        // Both ends have closed (the processes are done); the root-owned end's connect and close
        // must have been filtered.
        let filtered = (0..<200).lazy.map { _ -> UInt64 in
            usleep(10_000)
            return monitor.statistics.filteredEvents
        }.first { $0 >= 2 }
        monitor.stop()
        XCTAssertEqual(collector.events.map(\.kind), [.accept, .close])
        XCTAssertEqual(collector.events.map(\.uid), [otherUID, otherUID])
        XCTAssertEqual(collector.events.map(\.pid), [server.pid, server.pid])
        XCTAssertEqual(filtered, 2, "the client's connect and close were filtered in the kernel")
    }

    func testAsyncSequenceDeliversAndEndsAtStop() async throws {
        try requireBPF()
        let port = freePort()
        let monitor = try TCPMonitor(configuration: .init(filter: .init(ports: [port])))
        let stream = try monitor.events()
        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "100", "--send", "200"])
        _ = try server.nextLine()
        let client = try TrafficProcess(["tcp-client", "--port", "\(port)", "--send", "100", "--receive", "200"])
        var received: [TCPConnectionEvent] = []
        for await event in stream {
            received.append(event)
            if received.count == 4 { monitor.stop() }
        }
        client.waitForSuccess()
        server.waitForSuccess()
        XCTAssertEqual(received.count, 4, "the stream ended after stop with both ends' opens and closes")
        XCTAssertEqual(Set(received.map(\.pid)), [server.pid, client.pid])
    }

    /// A stopped monitor starts again (compiled and attached anew) and traces each connection of
    /// its new run, and only those: nothing of the connection made while it was stopped.
    func testAStoppedMonitorStartsAgainAndTracesAgain() throws {
        try requireBPF()
        let port = freePort()
        let monitor = try TCPMonitor(configuration: .init(filter: .init(ports: [port])))
        func connection() throws -> Int32 {
            let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "10", "--send", "20"])
            _ = try server.nextLine()
            let client = try TrafficProcess(["tcp-client", "--port", "\(port)", "--send", "10", "--receive", "20"])
            client.waitForSuccess()
            server.waitForSuccess()
            return client.pid
        }
        for round in 0..<2 {
            let collector = Collector<TCPConnectionEvent>()
            try monitor.start { collector.add($0) }
            XCTAssertTrue(monitor.isRunning)
            XCTAssertNotNil(monitor.report, "round \(round)")
            let client = try connection()
            let events = collector.wait { $0.count >= 4 }
            monitor.stop()
            XCTAssertFalse(monitor.isRunning)
            XCTAssertEqual(events.map(\.kind).sorted { $0.description < $1.description }, [.accept, .close, .close, .connect], "round \(round): \(events)")
            XCTAssertEqual(events.filter { $0.kind == .connect }.map(\.pid), [client], "round \(round)")
            XCTAssertEqual(collector.events.count, 4, "round \(round): nothing more by the end of stop")
            XCTAssertEqual(monitor.statistics.droppedEvents, 0)
            if round == 0 { _ = try connection() }  // while stopped: not traced by the next run
        }
    }

    /// The kprobe and fentry programs compile on every kernel; they attach where the kernel has the
    /// hook, and otherwise fail with a typed error, not a crash.
    func testEveryHookCompilesAndAttachesOrFailsTyped() throws {
        try requireBPF()
        for hook in TCPKind.Hook.allCases {
            let monitor = try TCPMonitor(configuration: .init(filter: .init(ports: [freePort()]), options: .init(hook: hook)))
            let available = Self.availability(of: hook)
            do throws(BPFError) {
                try monitor.start { _ in }
                monitor.stop()
                XCTAssertTrue(available.isYes, "\(hook) attached though the probe said \(available)")
                XCTAssertEqual(monitor.report?.hook, hook)
                XCTAssertEqual(monitor.report?.hooks.hook, hook)
                XCTAssertTrue(monitor.report?.description.contains(hook.description) ?? false, "\(monitor.report.map(String.init(describing:)) ?? "no report")")
            } catch {
                XCTAssertFalse(available.isYes, "\(hook) failed though the probe said yes: \(error)")
                switch error {
                case .notSupported, .attachFailed, .loadFailed: print("\(hook): \(error)")
                default: XCTFail("\(hook): unexpected error \(error)")
                }
            }
        }
    }

    /// A tiny LRU map: sockets pushed out before they close are counted as evicted, not lost silently.
    func testEvictionsFromAFullSocketMapAreCounted() throws {
        try requireBPF()
        let port = freePort()
        var configuration = TCPMonitor.Configuration(filter: .init(ports: [port]))
        configuration.maxTrackedSockets = 64
        let monitor = try TCPMonitor(configuration: configuration)
        try monitor.start { _ in }
        defer { monitor.stop() }
        // 300 connections held open at once: far more sockets than the map holds.
        var clients: [Int32] = []
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                XCTAssertEqual(bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)), 0)
                XCTAssertEqual(listen(listener, 512), 0)
                for _ in 0..<300 {
                    let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                    XCTAssertEqual(connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)), 0)
                    clients.append(client)
                }
            }
        }
        let statistics = monitor.statistics
        clients.forEach { close($0) }
        close(listener)
        XCTAssertGreaterThanOrEqual(statistics.trackedSockets, 600, "both ends of 300 connections")
        XCTAssertGreaterThan(statistics.evictedSockets, 0, "\(statistics)")
        XCTAssertLessThanOrEqual(statistics.trackedSockets - statistics.evictedSockets, 64)
    }

    /// Where the kernel has kprobes or fentry, the same exchange is checked through them.
    /// `NETEVENTS_TCP_HOOK=tracepoint|fentry|kprobe` checks one hook only (the kernel matrix does),
    /// and skips as not applicable where the kernel lacks it.
    func testExchangeThroughEachAvailableHook() throws {
        try requireBPF()
        let forced = ProcessInfo.processInfo.environment["NETEVENTS_TCP_HOOK"].flatMap(TCPKind.Hook.init(rawValue:))
        var ran: [TCPKind.Hook] = []
        for hook in forced.map({ [$0] }) ?? TCPKind.Hook.allCases {
            let available = Self.availability(of: hook)
            guard available.isYes else {
                print("not applicable here: \(hook) (\(available))")
                if forced != nil { throw XCTSkip("not applicable: \(hook): \(available)") }
                continue
            }
            for ipv6 in [false, true] {
                let result = try exchange(ipv6: ipv6, send: 7_000, reply: 3_000, serverUID: otherUID, clientUID: nil) {
                    $0.hook = hook
                }
                checkEnds(result, ipv6: ipv6, serverUID: otherUID, clientUID: 0)
                checkGracefulBytes(result, send: 7_000, reply: 3_000)
            }
            try checkRefusedConnect(hook: hook)
            ran.append(hook)
        }
        print("hooks exercised: \(ran); socket cookies: \(KernelFeatures.shared.socketCookies)")
        XCTAssertFalse(ran.isEmpty, "no TCP hook is available on this kernel")
    }

    /// A connect to a closed port through `hook`: one `fail` with ECONNREFUSED, of the connecting
    /// process, and no close.
    func checkRefusedConnect(hook: TCPKind.Hook) throws {
        let port = freePort()
        let (monitor, collector) = try collectingTCPMonitor(.init(filter: .init(ports: [port]), options: .init(hook: hook)))
        defer { monitor.stop() }
        let client = try TrafficProcess(["tcp-connect", "--port", "\(port)"])
        XCTAssertEqual(try client.nextLine()["errno"], "\(ECONNREFUSED)")
        client.waitForSuccess()
        collector.wait { !$0.isEmpty }
        monitor.stop()
        let events = collector.events
        XCTAssertEqual(events.map(\.kind), [.fail], "\(hook): \(events)")
        XCTAssertEqual(events.first?.error?.name, "ECONNREFUSED", "\(hook)")
        XCTAssertEqual(events.first?.pid, client.pid, "\(hook)")
        XCTAssertEqual(events.first?.destinationPort, port, "\(hook)")
        XCTAssertEqual(events.first?.previousState, .synSent, "\(hook)")
    }

    /// Offsets from the kernel headers (the path for kernels without BTF) give the same events as
    /// offsets from BTF, where the headers are the running kernel's own.
    func testHeaderOffsetsWhereHeadersMatchTheKernel() throws {
        try checkHeaderOffsets(of: TCPKind.self) {
            for ipv6 in [false, true] {
                let result = try exchange(ipv6: ipv6, send: 4_096, reply: 1_000, serverUID: otherUID, clientUID: nil) {
                    $0.offsetSource = .headers
                }
                checkEnds(result, ipv6: ipv6, serverUID: otherUID, clientUID: 0)
                checkGracefulBytes(result, send: 4_096, reply: 1_000)
            }
        }
    }

    /// Whether the monitor's state change is a raw tracepoint (the attach report names it): the
    /// hook whose closes are held against the kernel's own count.
    static func stateChangeIsRaw(_ monitor: TCPMonitor) -> Bool {
        monitor.report?.attachments.contains("raw tracepoint inet_sock_set_state") ?? false
    }

    static func availability(of hook: TCPKind.Hook) -> KernelFeatures.Answer {
        switch hook {
        case .tracepoint: KernelFeatures.shared.tracepoint("sock", "inet_sock_set_state")
        case .kprobe: KernelFeatures.shared.kprobes
        case .fentry: KernelFeatures.shared.fentry("tcp_set_state")
        }
    }

    private func networkNamespaceInode() -> UInt32 {
        var info = stat()
        stat("/proc/self/ns/net", &info)
        return UInt32(truncatingIfNeeded: info.st_ino)
    }
}
