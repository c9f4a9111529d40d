import Foundation
import NetEventsCore
import XCTest

/// `netevents serve` as operators run it: scraped by a real Prometheus server, whose query API
/// must give exactly the traffic that real processes made, while connections live and after they
/// close; stopped by SIGTERM; refusing bad addresses and ports in use.
final class AgentIntegrationTests: XCTestCase {
    /// Known traffic of named processes (TCP both ways, UDP, a container's connection) reaches
    /// Prometheus exactly: connections by kind, the kernel's byte counters, datagrams and payload,
    /// per comm and container; the monitors lost nothing; SIGTERM ends the agent with status 0.
    func testPrometheusSeesExactlyTheTrafficOfEachProcess() throws {
        try requireBPF()
        let agent = try RunningAgent()
        let prometheus = try PrometheusServer(scraping: agent.address)
        defer { prometheus.stop() }
        let tag = String(getpid() % 10_000)
        let (client, server, receiver) = ("pc\(tag)", "ps\(tag)", "ur\(tag)")
        // The sender names itself with a quote, a backslash, a newline and an escape sequence, as
        // any process may: the exposition must stay one Prometheus can parse (it drops a whole
        // scrape it cannot), with the name intact. `senderQuery` is the name as PromQL writes it.
        let (sender, senderQuery) = ("\"\\\n\u{1b}[1m\(tag)", #"\"\\\n\x1b[1m"# + tag)

        // TCP: 12,345 bytes one way, 777 back; SYN and FIN count one each in the kernel's counters.
        let port = freePort()
        let tcpServer = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "12345", "--send", "777", "--name", server])
        _ = try tcpServer.nextLine()
        try TrafficProcess(["tcp-client", "--port", "\(port)", "--send", "12345", "--receive", "777", "--name", client]).waitForSuccess()
        tcpServer.waitForSuccess()
        // UDP: three datagrams of 100, 200 and 300 bytes, from the sender with the hostile name.
        let udpPort = freePort(udp: true)
        let udpReceiver = try TrafficProcess(["udp-receiver", "--port", "\(udpPort)", "--packets", "3", "--name", receiver])
        _ = try udpReceiver.nextLine()
        try TrafficProcess(["udp-sender", "--port", "\(udpPort)", "--packets", "3", "--sizes", "100,200,300", "--name", sender]).waitForSuccess()
        udpReceiver.waitForSuccess()
        // A container's connection: busybox nc sends "hello\n" and waits for the server's close.
        let containerPort = freePort()
        let containerServer = try TrafficProcess(["tcp-server", "--port", "\(containerPort)", "--receive", "6", "--send", "0"])
        _ = try containerServer.nextLine()
        let container = try TestContainer(script: "echo hello | nc 127.0.0.1 \(containerPort)")
        defer { container.remove() }
        try container.proceed()
        containerServer.waitForSuccess()
        let short = String(container.id.prefix(12))

        var expected: [String: Double] = [
            #"sum(netevents_tcp_connections_total{comm="\#(client)",event="connect",container=""})"#: 1,
            #"sum(netevents_tcp_connections_total{comm="\#(client)",event="close"})"#: 1,
            #"sum(netevents_tcp_connections_total{comm="\#(server)",event="accept"})"#: 1,
            #"sum(netevents_tcp_connections_total{comm="\#(server)",event="close"})"#: 1,
            #"sum(netevents_tcp_bytes_total{comm="\#(client)",direction="sent"})"#: 12_347,
            #"sum(netevents_tcp_bytes_total{comm="\#(client)",direction="received"})"#: 778,
            #"sum(netevents_tcp_bytes_total{comm="\#(server)",direction="sent"})"#: 778,
            #"sum(netevents_tcp_bytes_total{comm="\#(server)",direction="received"})"#: 12_346,
            #"sum(netevents_udp_bytes_total{comm="\#(senderQuery)",direction="sent"})"#: 600,
            #"sum(netevents_udp_packets_total{comm="\#(senderQuery)",direction="sent"})"#: 3,
            #"sum(up{job="netevents"})"#: 1,
            #"sum(netevents_udp_bytes_total{comm="\#(receiver)",direction="received"})"#: 600,
            #"sum(netevents_udp_packets_total{comm="\#(receiver)",direction="received"})"#: 3,
            #"sum(netevents_tcp_connections_total{comm="nc",container="\#(short)",event="connect"})"#: 1,
            #"sum(netevents_tcp_bytes_total{comm="nc",container="\#(short)",direction="sent"})"#: 8,
            #"sum(netevents_tcp_bytes_total{comm="nc",container="\#(short)",direction="received"})"#: 1,
            #"sum(netevents_monitor_up)"#: 2,
            #"count(netevents_build_info{version!="",hook!="",transport!="",offsets="btf"})"#: 2,
            #"sum(netevents_lost_events_total) + sum(netevents_dropped_events_total)"#: 0,
        ]
        // Skipped runs have a series where the kernel counts them (the tracepoint hooks: 6.7+).
        if KernelVersion.running.isAtLeast(6, 7) { expected[#"count(netevents_missed_program_runs_total)"#] = 2 }
        // TCP closes no program run saw, by the kernel's own count: a series (of 0) where the TCP
        // state change is a raw tracepoint (the tracepoint, with BTF, from Linux 5.6).
        let features = KernelFeatures.shared
        if features.tracepoint("sock", "inet_sock_set_state").isYes && features.btf.isYes && KernelVersion.running.isAtLeast(5, 6) {
            expected[#"sum(netevents_unseen_events_total{monitor="tcp"})"#] = 0
        }
        let seen = prometheus.waitFor(expected)
        for (query, value) in expected.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(seen[query] ?? nil, value, query)
        }
        // The series of a process that made no UDP traffic do not exist.
        XCTAssertNil(prometheus.value(of: #"sum(netevents_udp_bytes_total{comm="\#(client)"})"#))
        agent.stop()
    }

    /// A connection that stays open moves the counters at every interval, not only at its close:
    /// what it sent is in Prometheus while it lives, and its close adds only the rest.
    func testCountersMoveWhileAConnectionLives() throws {
        try requireBPF()
        let agent = try RunningAgent()
        let prometheus = try PrometheusServer(scraping: agent.address)
        defer { prometheus.stop() }
        let name = "pl\(getpid() % 10_000)"
        let port = freePort()
        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "30000", "--send", "0", "--name", name])
        _ = try server.nextLine()
        let client = try LoopbackClient(port: port)
        let received = #"sum(netevents_tcp_bytes_total{comm="\#(name)",direction="received"})"#
        let accepted = #"sum(netevents_tcp_connections_total{comm="\#(name)",event="accept"})"#
        let closed = #"sum(netevents_tcp_connections_total{comm="\#(name)",event="close"})"#
        client.send(10_000)
        var seen = prometheus.waitFor([received: 10_000, accepted: 1])
        XCTAssertEqual(seen[received] ?? nil, 10_000, "the live connection's bytes, from its interval record")
        XCTAssertNil(prometheus.value(of: closed), "no close yet")
        client.send(20_000)
        seen = prometheus.waitFor([received: 30_000])
        XCTAssertEqual(seen[received] ?? nil, 30_000, "the second interval record adds what moved since the first")
        client.reset()  // a reset: no FIN, so the close totals are the data alone
        server.waitForSuccess()
        seen = prometheus.waitFor([received: 30_000, closed: 1])
        XCTAssertEqual(seen[closed] ?? nil, 1)
        XCTAssertEqual(seen[received] ?? nil, 30_000, "the close adds nothing its interval records counted")
        agent.stop()
    }

    /// Scrapes while the agent starts (it listens once both monitors are attached) and while it
    /// stops get a whole answer or a refused connection, never a broken one; the agent exits 0. A port in use and a bad address are refused with
    /// the flag named, before anything is loaded.
    func testScrapesDuringStartAndStopAndBadAddresses() throws {
        try requireBPF()
        let port = freePort()
        let (process, _, errors) = try startProcess(builtExecutable("netevents"), ["serve", "--listen", "127.0.0.1:\(port)"])
        let lines = Collector<String>(lines: errors.fileHandleForReading)
        var answers: [Int] = []
        // From launch until an answer: each one complete, with both monitors up.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            guard let (status, body) = httpGet("http://127.0.0.1:\(port)/metrics", timeout: 2) else {
                usleep(20_000)
                continue
            }
            answers.append(status)
            XCTAssertEqual(status, 200)
            XCTAssertTrue(body.isEmpty || body.hasSuffix("\n"), "a cut exposition: \(body.suffix(80))")
            if body.contains(#"netevents_monitor_up{monitor="tcp"} 1.0"#) && body.contains(#"netevents_monitor_up{monitor="udp"} 1.0"#) {
                break
            }
        }
        XCTAssertFalse(answers.isEmpty, "no scrape answered: \(lines.events)")
        // Scrapes in a loop while SIGTERM stops it: each answer whole, or none (refused).
        let broken = Collector<String>()
        let scraping = Thread {
            while process.isRunning {
                guard let (status, body) = httpGet("http://127.0.0.1:\(port)/metrics", timeout: 2) else { continue }
                if status != 200 || !body.hasSuffix("\n") { broken.add("\(status): \(body.suffix(80))") }
            }
        }
        scraping.start()
        usleep(200_000)
        process.terminate()
        XCTAssertTrue(waitForExit(process, seconds: 15), "SIGTERM did not stop the agent")
        XCTAssertEqual(broken.events, [], "scrapes cut by the stop")
        XCTAssertEqual(process.terminationStatus, 0, "\(lines.events)")
        XCTAssertEqual(process.terminationReason, .exit)

        // The same port, now taken by another process's listener.
        let holder = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "0", "--send", "0"])
        defer { holder.process.terminate() }
        _ = try holder.nextLine()
        for (arguments, status, message) in [
            (["serve", "--listen", "127.0.0.1:\(port)"], 1, "the port is in use; pick another with --listen"),
            (["serve", "--listen", "localhost:9750"], 64, "The value 'localhost:9750' is invalid for '--listen <address>'"),
            (["serve", "--listen", "127.0.0.1:70000"], 64, "is invalid for '--listen <address>'"),
            (["serve", "--interval", "nan"], 64, "--interval must be"),
            (["serve", "--max-comms", "-1"], 64, "--max-comms must be 0 to"),
        ] {
            let (refused, _, refusal) = try startProcess(builtExecutable("netevents"), arguments)
            let text = String(decoding: refusal.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            waitUntilExit(refused)
            XCTAssertEqual(refused.terminationStatus, Int32(status), "\(arguments): \(text)")
            XCTAssertTrue(text.contains(message), "\(arguments): \(text)")
        }
    }
}

extension AgentIntegrationTests {
    /// SIGTERM at any moment ends the agent with status 0 and both monitors stopped: while the
    /// monitors compile (the signal is kept until they can be stopped), just after it listens,
    /// and under traffic. (Once, a module destroyed by a task that outlived `main` raced LLVM's
    /// exit-time destructors: a double free in about one run in six; another time a SIGTERM
    /// just after the server listened ended it with the default action, status 143.)
    func testSIGTERMAtAnyMomentStopsItCleanly() throws {
        try requireBPF()
        for (index, delay) in [0.3, -1, -1, -1, -1, -1].enumerated() {
            let port = freePort()
            let (process, _, errors) = try startProcess(builtExecutable("netevents"), ["serve", "--listen", "127.0.0.1:\(port)", "--interval", "1"])
            let lines = Collector<String>(lines: errors.fileHandleForReading)
            if delay > 0 {
                // Once its .preinit_array has blocked SIGTERM (before that, the dynamic loader is
                // still mapping its libraries: under load that can take longer than the delay).
                let blocked = Date().addingTimeInterval(10)
                while (ToolProcess.statusMask("SigBlk", of: process.processIdentifier) ?? 0) & signalBit(SIGTERM) == 0 && Date() < blocked { usleep(1_000) }
                usleep(useconds_t(delay * 1_000_000))  // during the compile
                XCTAssertFalse(lines.events.contains { $0.contains("serving") }, "run \(index): not during the compile")
            } else {
                XCTAssertNotNil(lines.first(timeout: 30) { $0.contains("serving http://") }, "\(lines.events)")
                if index % 2 == 0 {
                    try TrafficProcess(["tcp-burst", "--count", "200"]).waitForSuccess()
                }
            }
            process.terminate()
            XCTAssertTrue(waitForExit(process, seconds: 15), "run \(index): SIGTERM did not stop the agent")
            if process.isRunning { process.interrupt(); continue }
            XCTAssertEqual(process.terminationReason, .exit, "run \(index): \(lines.events)")
            XCTAssertEqual(process.terminationStatus, 0, "run \(index): \(lines.events)")
            let stopped = lines.wait(timeout: 2) { $0.filter { $0.contains("monitor stopped: lost") }.count == 2 }
            XCTAssertEqual(stopped.filter { $0.contains("monitor stopped: lost") }.count, 2, "run \(index): \(stopped)")
        }
    }
}

/// A running `netevents serve --interval 1` on a free loopback port, up once both monitors are.
final class RunningAgent {
    let process: Process
    let errors: Collector<String>
    let address: String

    init() throws {
        address = "127.0.0.1:\(freePort())"
        let (process, _, errors) = try startProcess(builtExecutable("netevents"), ["serve", "--listen", address, "--interval", "1"])
        self.process = process
        self.errors = Collector(lines: errors.fileHandleForReading)
        guard self.errors.first(timeout: 30, where: { $0.contains("serving http://\(address)/metrics") }) != nil else {
            process.terminate()
            throw TrafficError.timeout(["netevents serve", "(not serving: \(self.errors.events))"])
        }
    }

    /// SIGTERM, then checks the agent stopped the monitors and exited 0 within 15 seconds.
    func stop(file: StaticString = #filePath, line: UInt = #line) {
        process.terminate()
        XCTAssertTrue(waitForExit(process, seconds: 15), "SIGTERM did not stop the agent", file: file, line: line)
        guard !process.isRunning else { return process.interrupt() }
        XCTAssertEqual(process.terminationStatus, 0, "\(errors.events)", file: file, line: line)
        XCTAssertNotNil(errors.first(timeout: 1) { $0.contains("stopping the monitors") }, "\(errors.events)", file: file, line: line)
    }

    deinit { if process.isRunning { process.terminate() } }
}
