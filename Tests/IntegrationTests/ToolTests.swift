import Foundation
import XCTest

/// The command-line tools as users run them: in pipelines, beside hostile processes, with bad options.
final class ToolTests: XCTestCase {
    /// Starts `tool` with `arguments`, its output and errors on pipes, and waits for `Tracing`.
    func startTracing(_ tool: String, _ arguments: [String]) throws -> (Process, output: Pipe, errors: Collector<String>) {
        let process = Process()
        process.executableURL = try builtExecutable(tool)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
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

    func waitForExit(_ process: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return !process.isRunning
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
        XCTAssertNotNil(errors.first(timeout: 2) { $0.hasPrefix("lost 0, dropped") }, "\(errors.events)")
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
            ("udp-events", ["--port", "0"], "--port"),
        ]
        for (tool, arguments, flag) in cases {
            let (status, errors) = try run(tool, arguments)
            XCTAssertNotEqual(status, 0, "\(tool) \(arguments) was accepted")
            XCTAssertTrue(errors.contains(flag), "\(tool) \(arguments): \(errors)")
        }
        for tool in ["tcp-events", "udp-events", "netevents-traffic"] {
            XCTAssertEqual(try run(tool, ["--help"]).status, 0, "\(tool) --help")
        }
    }

    func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, errors: String) {
        let process = Process()
        process.executableURL = try builtExecutable(tool)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
