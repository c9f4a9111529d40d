import Foundation
import XCTest

/// The command-line tools as users run them: in pipelines, beside hostile processes, with bad options.
final class ToolTests: XCTestCase {
    /// Starts `tool` with `arguments`, its standard output and error on pipes.
    func launch(_ tool: String, _ arguments: [String]) throws -> (Process, output: Pipe, errors: Pipe) {
        try startProcess(builtExecutable(tool), arguments)
    }

    /// Starts `tool` with `arguments`, its output and errors on pipes, and waits for `Tracing`.
    func startTracing(_ tool: String, _ arguments: [String]) throws -> (Process, output: Pipe, errors: Collector<String>) {
        let (process, output, errors) = try launch(tool, arguments)
        let errorLines = Collector<String>(lines: errors.fileHandleForReading)
        XCTAssertNotNil(errorLines.first(timeout: 30) { $0.hasPrefix("Tracing") }, "no Tracing line: \(errorLines.events)")
        return (process, output, errorLines)
    }

    /// One loopback connection of known size; the client names itself `clientName`.
    func connect(port: UInt16, clientName: String? = nil) throws {
        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "5", "--send", "7"])
        _ = try server.nextLine()
        let client = try TrafficProcess(
            ["tcp-client", "--port", "\(port)", "--send", "5", "--receive", "7"] + (clientName.map { ["--name", $0] } ?? []))
        client.waitForSuccess()
        server.waitForSuccess()
    }

    /// `tcp-events --json | head -1`: once the reader is gone, the next write ends the tool with
    /// exit 0 and its summary, as grep or tcpdump would end.
    func testAClosedOutputEndsTheToolWithStatusZero() throws {
        try requireBPF()
        let port = freePort()
        let (tool, output, errors) = try startTracing("tcp-events", ["--json", "--port", "\(port)"])
        defer { if tool.isRunning { tool.interrupt() } }
        try output.fileHandleForReading.close()  // the reader goes away before any event
        try connect(port: port)
        XCTAssertTrue(waitForExit(tool, seconds: 10), "tcp-events still runs after its output closed")
        XCTAssertEqual(tool.terminationStatus, 0)
        XCTAssertNotNil(errors.first(timeout: 2) { $0.hasPrefix("0 events printed; lost 0, missed 0, dropped") }, "\(errors.events)")
    }

    /// A burst of connections at the generator's top speed reaches `tcp-events --json` whole: one
    /// parseable line per connect, accept and connection end, each with the burst's byte counts,
    /// and the closing summary counts exactly the lines printed. The same burst through the table:
    /// one row each. `--events close` leaves only the closes, chosen in the kernel.
    func testABurstIsPrintedWholeAndCounted() throws {
        try requireBPF()
        let connections = 400
        for (json, kinds) in [(true, nil), (false, nil), (true, "close")] as [(Bool, String?)] {
            let port = freePort()
            let perConnection = kinds == nil ? 4 : 2
            let (tool, output, errors) = try startTracing(
                "tcp-events", (json ? ["--json"] : []) + ["--port", "\(port)"] + (kinds.map { ["--events", $0] } ?? []))
            defer { if tool.isRunning { tool.interrupt() } }
            let lines = Collector<String>(lines: output.fileHandleForReading)
            let burst = try TrafficProcess(["tcp-burst", "--count", "\(connections)", "--port", "\(port)"])
            burst.waitForSuccess()
            let expected = perConnection * connections + (json ? 0 : 1)  // the table has its header line
            lines.wait(timeout: 20) { $0.count >= expected }
            tool.interrupt()
            XCTAssertTrue(waitForExit(tool, seconds: 10))
            XCTAssertEqual(tool.terminationStatus, 0)
            let printed = lines.events.count - (json ? 0 : 1)
            XCTAssertEqual(printed, perConnection * connections)
            XCTAssertNotNil(
                errors.first(timeout: 5) { $0.hasPrefix("\(perConnection * connections) events printed; lost 0, missed 0, dropped 0") },
                "\(errors.events)")
            if json {
                var seen: [String: Int] = [:]
                for line in lines.events {
                    let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
                    let server = (object["sport"] as? NSNumber)?.intValue == Int(port)
                    XCTAssertTrue(server || (object["dport"] as? NSNumber)?.intValue == Int(port), line)
                    let event = try XCTUnwrap(object["event"] as? String, line)
                    XCTAssertEqual(object["owner"] as? String, server ? "accept" : "connect", line)
                    XCTAssertEqual(object["pid"] as? NSNumber, NSNumber(value: burst.pid), line)
                    switch event {
                    case "close":
                        // One byte each way. tcp_info counts the FIN received, and on the client
                        // (which closes first) the SYN and FIN it sent; the server closes from LAST_ACK.
                        XCTAssertEqual((object["rx_bytes"] as? NSNumber)?.intValue, 2, line)
                        XCTAssertEqual((object["tx_bytes"] as? NSNumber)?.intValue, server ? 2 : 3, line)
                        XCTAssertEqual(object["prev_state"] as? String, server ? "LAST_ACK" : "FIN_WAIT2", line)
                        XCTAssertNotNil(object["duration_ns"] as? NSNumber, line)
                    case "connect":
                        XCTAssertFalse(server, line)
                        XCTAssertGreaterThan((object["latency_ns"] as? NSNumber)?.intValue ?? 0, 0, line)
                        XCTAssertEqual(object["prev_state"] as? String, "SYN_SENT", line)
                    case "accept":
                        XCTAssertTrue(server, line)
                        XCTAssertNil(object["prev_state"], line)
                    default:
                        XCTFail("unexpected event: \(line)")
                    }
                    for key in ["srtt_us", "rttvar_us", "retransmits"] { XCTAssertNotNil(object[key] as? NSNumber, "\(key): \(line)") }
                    seen["\(event) \(server ? "server" : "client")", default: 0] += 1
                }
                var expected = ["close server": connections, "close client": connections]
                if kinds == nil { expected.merge(["connect client": connections, "accept server": connections]) { $1 } }
                XCTAssertEqual(seen, expected)
            } else {
                XCTAssertTrue(lines.events[0].hasPrefix("TIME"), lines.events[0])
                XCTAssertTrue(lines.events[0].contains("EVENT"), lines.events[0])
                let rows = lines.events.dropFirst().filter { $0.contains(":\(port) ") }
                XCTAssertEqual(rows.count, perConnection * connections)
                for kind in ["connect", "accept", "close"] {
                    let count = rows.filter { $0.split(separator: " ").dropFirst().first == Substring(kind) }.count
                    XCTAssertEqual(count, (kind == "close" ? 2 : 1) * connections, "EVENT column: \(kind)")
                }
            }
        }
    }

    /// A process may name itself anything (prctl PR_SET_NAME): its newline and escape sequence
    /// reach the table escaped, never raw; JSON escapes them as JSON does.
    func testHostileProcessNamesAreEscaped() throws {
        try requireBPF()
        let hostile = "ev\"il\n\u{1b}[31mX"
        for json in [false, true] {
            let port = freePort()
            let (tool, output, _) = try startTracing("tcp-events", (json ? ["--json"] : []) + ["--port", "\(port)"])
            defer { if tool.isRunning { tool.interrupt() } }
            let lines = Collector<String>(lines: output.fileHandleForReading)
            try connect(port: port, clientName: hostile)
            let line = lines.first(timeout: 10) { $0.contains("[31mX") }
            tool.interrupt()
            XCTAssertTrue(waitForExit(tool, seconds: 10))
            let text = try XCTUnwrap(line, "no line for the client in \(lines.events)")
            XCTAssertFalse(text.unicodeScalars.contains { $0.value == 0x1b }, "a raw ESC reached the output: \(text)")
            XCTAssertTrue(text.contains(json ? #"ev\"il\n\u001b[31mX"# : #"ev"il\x0a\x1b[31mX"#), text)
            XCTAssertEqual(lines.events.filter { $0.hasPrefix("[31mX") || $0 == "X" }, [], "the newline split a line")
        }
    }

    /// Bad numbers are refused before anything starts, naming the flag; the tools answer --help.
    func testBadOptionsNameTheFlagAndHelpWorks() throws {
        let cases: [(String, [String], String)] = [
            ("tcp-events", ["--uid", "-5"], "--uid"), ("tcp-events", ["--pid", "-3"], "--pid"),
            ("tcp-events", ["--port", "-1"], "--port"), ("tcp-events", ["--duration", "-3"], "--duration"),
            ("tcp-events", ["--duration", "nan"], "--duration"), ("udp-events", ["--interval", "inf"], "--interval"),
            ("udp-events", ["--port", "0"], "--port"), ("tcp-events", ["--events", "connect,bogus"], "--events"),
            ("tcp-events", ["--interval", "nan"], "--interval"), ("tcp-events", ["--interval", "0.01"], "--interval"),
            ("tcp-events", ["--events", "connect", "--interval", "5"], "interval"), ("tcp-top", ["--rows", "-1"], "--rows"),
            ("tcp-events", ["--port", "80,x"], "--port"), ("udp-events", ["--pid", "1,,2"], "--pid"),
            ("tcp-events", ["--netns", "0"], "--netns"), ("udp-events", ["--container", "3f2x"], "--container"),
            ("tcp-events", ["--port", "70000"], "--port"), ("tcp-top", ["--cgroup", "/no/such/cgroup/here"], "/no/such/cgroup/here"),
            ("tcp-events", ["--container", "fffffffffff0"], "fffffffffff0"),
            ("dns-events", ["--port", "0"], "--port"), ("dns-events", ["--query-timeout", "nan"], "--query-timeout"),
            ("dns-events", ["--query-timeout", "-1"], "--query-timeout"),
        ]
        for (tool, arguments, flag) in cases {
            let (status, errors) = try run(tool, arguments)
            XCTAssertNotEqual(status, 0, "\(tool) \(arguments) was accepted")
            XCTAssertTrue(errors.contains(flag), "\(tool) \(arguments): \(errors)")
        }
        for tool in ["tcp-events", "udp-events", "dns-events", "tcp-top", "netevents-traffic"] {
            XCTAssertEqual(try run(tool, ["--help"]).status, 0, "\(tool) --help")
        }
        // Help after a command: the generator prints it and starts nothing.
        XCTAssertEqual(try run("netevents-traffic", ["tcp-sockets", "--help"]).status, 0, "netevents-traffic tcp-sockets --help")
    }

    func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, errors: String) {
        let (status, errors, _) = try runCapturing(tool, arguments)
        return (status, errors)
    }

    /// Runs `tool` to its end; its status, standard error and standard output.
    func runCapturing(_ tool: String, _ arguments: [String]) throws -> (status: Int32, errors: String, output: String) {
        try IntegrationTests.runCapturing(builtExecutable(tool), arguments)
    }

    /// `dns-events` as users run it, against dnsmasq and dig: a JSON line per query and response
    /// on both sides, with the keys of the README; and in the table, a name made of escape
    /// sequences and control characters reaches the terminal escaped.
    func testDNSEventsPrintsDigsQueriesAndEscapesHostileNames() throws {
        try requireBPF()
        let server = try DNSServer()
        defer { server.stop() }
        let inode = "\(server.namespace.inode)"
        for json in [true, false] {
            let (tool, output, errors) = try startTracing("dns-events", (json ? ["--json"] : []) + ["--netns", inode])
            defer { if tool.isRunning { tool.interrupt() } }
            let lines = Collector<String>(lines: output.fileHandleForReading)
            let answer = try server.dig(["@127.0.0.1", DNSServer.name, "A", "+short"])
            XCTAssertEqual(answer.output, DNSServer.address + "\n")
            // A name with ESC [31m and a newline in its labels (dig's \DDD syntax): dnsmasq answers NXDOMAIN? No:
            // REFUSED or NXDOMAIN, whatever it is, the line must show the name escaped.
            _ = try server.dig(["@127.0.0.1", "\\027[31mev\\010il.test", "A"])
            lines.wait(timeout: 20) { $0.count >= (json ? 8 : 9) }
            tool.interrupt()
            XCTAssertTrue(waitForExit(tool, seconds: 10))
            XCTAssertEqual(tool.terminationStatus, 0)
            XCTAssertNotNil(errors.first(timeout: 5) { $0.hasPrefix("8 events printed; lost 0") }, "\(errors.events)")
            let text = lines.events.joined(separator: "\n")
            XCTAssertFalse(text.unicodeScalars.contains { $0.value == 0x1b }, "a raw ESC: \(text)")
            XCTAssertFalse(lines.events.contains { $0.hasPrefix("il.test") }, "the newline split a line: \(text)")
            if json {
                let objects = try lines.events.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
                XCTAssertEqual(objects.count, 8, text)
                let digLines = objects.filter { ($0["pid"] as? Int) == Int(answer.pid) }
                XCTAssertEqual(digLines.map { $0["event"] as? String }, ["query", "response"], text)
                let response = try XCTUnwrap(digLines.last)
                XCTAssertEqual(response["name"] as? String, DNSServer.name)
                XCTAssertEqual(response["qtype"] as? String, "A")
                XCTAssertEqual(response["rcode"] as? String, "NOERROR")
                XCTAssertEqual(response["answers"] as? [String], [DNSServer.address])
                XCTAssertEqual(response["direction"] as? String, "received")
                XCTAssertEqual(response["comm"] as? String, "dig")
                XCTAssertEqual(response["dport"] as? Int, 53)
                XCTAssertEqual(response["daddr"] as? String, "127.0.0.1")
                XCTAssertGreaterThan(response["latency_ns"] as? Int ?? 0, 0)
                for key in ["time_ns", "uid", "family", "saddr", "sport", "id", "length", "cgroup_id", "netns", "socket_id"] {
                    XCTAssertNotNil(response[key], "\(key) in \(response)")
                }
                XCTAssertTrue(objects.contains { ($0["name"] as? String) == "\\027[31mev\\010il.test" }, text)
            } else {
                // The table doubles the backslashes of dig's escapes, as it does any backslash.
                XCTAssertTrue(text.contains("\\\\027[31mev\\\\010il.test"), text)
            }
        }
    }

    /// A hook forced with `--hook` that this kernel lacks: exit status 1, the kernel's reason and
    /// the way out (leave `--hook` off), and nothing on standard output (no table header before a
    /// start that failed). Tried with every hook and both tools until one fails here.
    func testAForcedHookTheKernelLacksNamesTheWayOut() throws {
        try requireBPF()
        var failed: [String] = []
        for (tool, flag) in [("tcp-events", "--hook"), ("udp-events", "--hook"), ("udp-events", "--close-hook")] {
            for hook in flag == "--hook" ? ["kprobe", "fentry"] : ["kprobe"] {
                let (status, errors, output) = try runCapturing(tool, [flag, hook, "--duration", "1"])
                guard status != 0 else { continue }
                failed.append("\(tool) \(flag) \(hook)")
                XCTAssertEqual(status, 1, "\(tool) \(flag) \(hook): \(errors)")
                XCTAssertTrue(errors.hasPrefix("\(tool): "), errors)
                XCTAssertTrue(errors.contains("hint: \(flag) forced this choice; leave it off"), errors)
                XCTAssertEqual(output, "", "\(tool) \(flag) \(hook) printed before failing")
            }
        }
        if failed.isEmpty { throw XCTSkip("every hook works on this kernel: none to force that fails") }
    }
}
