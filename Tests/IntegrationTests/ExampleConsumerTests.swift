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
        let errorLines = LineCollector(errors.fileHandleForReading)
        let outputLines = LineCollector(output.fileHandleForReading)
        XCTAssertNotNil(errorLines.wait(timeout: 30) { $0.hasPrefix("Tracing") }, "no Tracing line: \(errorLines.lines)")

        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "12345", "--send", "777"])
        _ = try server.nextLine()
        let client = try TrafficProcess(["tcp-client", "--port", "\(port)", "--send", "12345", "--receive", "777"])
        _ = try client.nextLine()
        _ = try client.nextLine()
        _ = try server.nextLine()
        client.waitForSuccess()
        server.waitForSuccess()
        XCTAssertTrue(outputLines.wait(timeout: 10, count: 2), "events: \(outputLines.lines)")

        kill(example.processIdentifier, SIGINT)
        let deadline = Date().addingTimeInterval(10)
        while example.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(example.isRunning, "SIGINT did not stop the example")
        XCTAssertEqual(example.terminationStatus, 0)
        XCTAssertNotNil(errorLines.wait(timeout: 2) { $0.hasPrefix("signal 2: stopped") }, "\(errorLines.lines)")

        // Its JSON decodes back into events (the same keys the tools print), field by field.
        let events = try outputLines.lines.map { try JSONDecoder().decode(TCPConnectionEvent.self, from: Data($0.utf8)) }
        XCTAssertEqual(events.count, 2, "\(outputLines.lines)")
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

/// Lines read from a pipe on a background thread.
final class LineCollector: @unchecked Sendable {
    private let condition = NSCondition()
    private var collected: [String] = []
    private var partial = Data()

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                condition.lock()
                if chunk.isEmpty {
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                partial.append(chunk)
                while let newline = partial.firstIndex(of: 10) {
                    collected.append(String(decoding: partial[partial.startIndex..<newline], as: UTF8.self))
                    partial.removeSubrange(partial.startIndex...newline)
                }
                condition.broadcast()
                condition.unlock()
            }
        }
    }

    /// The lines so far.
    var lines: [String] {
        condition.lock()
        defer { condition.unlock() }
        return collected
    }

    /// Waits until `count` lines have arrived; false after `timeout` seconds.
    func wait(timeout: TimeInterval, count: Int) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while collected.count < count {
            guard condition.wait(until: deadline) else { return collected.count >= count }
        }
        return true
    }

    /// Waits until some line satisfies `match`; returns it, or nil after `timeout` seconds.
    func wait(timeout: TimeInterval, for match: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let line = collected.first(where: match) { return line }
            guard condition.wait(until: deadline) else { return collected.first(where: match) }
        }
    }
}
