import Foundation
import TCPEvent
import XCTest

/// `Examples/ConnectionLog`, a package of its own that depends on this one as a user's would:
/// it runs, logs real connections as JSON through `JSONEncoder`, and stops cleanly on SIGINT.
final class ExampleConsumerTests: XCTestCase {
    func testTheExampleLogsConnectionsAndStopsOnSIGINT() throws {
        try requireBPF()
        guard let path = ProcessInfo.processInfo.environment["NETEVENTS_EXAMPLE_BIN"],
            FileManager.default.isExecutableFile(atPath: path)
        else {
            // scripts/test builds the example and sets the variable; a bare `swift test` does not.
            let reason = "NETEVENTS_EXAMPLE_BIN is not set to the built Examples/ConnectionLog (run ./scripts/test)"
            if ProcessInfo.processInfo.environment["REQUIRE_BPF"] == "1" { return XCTFail(reason) }
            throw XCTSkip(reason)
        }
        let port = freePort()
        let example = Process()
        example.executableURL = URL(fileURLWithPath: path)
        example.arguments = ["\(port)"]
        let output = Pipe()
        let errors = Pipe()
        example.standardOutput = output
        example.standardError = errors
        try example.run()
        defer { if example.isRunning { example.terminate() } }
        let errorLines = Collector(lines: errors.fileHandleForReading)
        let outputLines = Collector(lines: output.fileHandleForReading)
        XCTAssertNotNil(errorLines.first(timeout: 30) { $0.hasPrefix("Tracing") }, "no Tracing line: \(errorLines.events)")

        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "12345", "--send", "777"])
        _ = try server.nextLine()
        let client = try TrafficProcess(["tcp-client", "--port", "\(port)", "--send", "12345", "--receive", "777"])
        _ = try client.nextLine()
        _ = try client.nextLine()
        _ = try server.nextLine()
        client.waitForSuccess()
        server.waitForSuccess()
        XCTAssertTrue(outputLines.wait(timeout: 10) { $0.count >= 2 }.count >= 2, "events: \(outputLines.events)")

        kill(example.processIdentifier, SIGINT)
        let deadline = Date().addingTimeInterval(10)
        while example.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(example.isRunning, "SIGINT did not stop the example")
        XCTAssertEqual(example.terminationStatus, 0)
        XCTAssertNotNil(errorLines.first(timeout: 2) { $0.hasPrefix("signal 2: stopped") }, "\(errorLines.events)")

        // Its JSON decodes back into events (the same keys the tools print), field by field.
        let events = try outputLines.events.map { try JSONDecoder().decode(TCPConnectionEvent.self, from: Data($0.utf8)) }
        XCTAssertEqual(events.count, 2, "\(outputLines.events)")
        let serverEnd = try XCTUnwrap(events.first { $0.sourcePort == port })
        let clientEnd = try XCTUnwrap(events.first { $0.destinationPort == port })
        XCTAssertEqual(serverEnd.pid, server.pid)
        XCTAssertEqual(clientEnd.pid, client.pid)
        XCTAssertEqual(clientEnd.sentBytes, 12_347)
        XCTAssertEqual(clientEnd.receivedBytes, 778)
        XCTAssertEqual(serverEnd.receivedBytes, 12_346)
        XCTAssertEqual(serverEnd.sentBytes, 778)
        XCTAssertEqual(clientEnd.ownerSource, .connect)
        XCTAssertEqual(serverEnd.ownerSource, .accept)
    }
}
