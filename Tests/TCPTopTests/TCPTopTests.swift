import NetEventsCore
import TCPEvent
import XCTest
@testable import tcp_top

/// tcp-top's arithmetic and layout, from made-up events: what a window holds, how rows group and
/// sort, and that a frame fits 80 columns whatever the names and addresses.
final class TCPTopTests: XCTestCase {
    func event(
        _ kind: TCPConnectionEvent.Kind, socket: UInt64, pid: Int32 = 100, command: String = "curl", sent: UInt64, received: UInt64,
        srtt: UInt32 = 50, retransmits: UInt32 = 0, remote: IPAddress = .v4(10, 0, 0, 1)
    ) -> TCPConnectionEvent {
        TCPConnectionEvent(
            kind: kind, timeNanoseconds: 0, process: EventProcess(pid: pid, uid: 1000, command: command), ownerSource: .connect,
            endpoints: SocketEndpoints(
                family: remote.family, sourceAddress: remote.family == .ipv4 ? .v4(127, 0, 0, 1) : IPAddress("::1")!,
                sourcePort: UInt16(40_000 + socket), destinationAddress: remote, destinationPort: 443),
            receivedBytes: received, sentBytes: sent, segmentsIn: 0, segmentsOut: 0, dataSegmentsIn: 0, dataSegmentsOut: 0,
            durationNanoseconds: nil, cgroupID: 1, networkNamespace: 1, previousState: nil,
            health: TCPHealth(smoothedRTTMicroseconds: srtt, retransmits: retransmits), socketID: socket)
    }

    /// Records add what they hold; a close adds what its totals hold beyond the records; a closed
    /// connection is in the window it closed in, and gone from the next.
    func testAWindowHoldsRecordsAndTheRemainderOfACloseOnce() {
        let ledger = ThroughputLedger(start: 0)
        ledger.add([event(.interval, socket: 1, sent: 1_000, received: 10), event(.interval, socket: 2, sent: 5, received: 0)])
        var window = ledger.closeWindow()
        XCTAssertEqual(window.first { $0.socketID == 1 }.map { [$0.sent, $0.received] }, [1_000, 10])
        ledger.add([event(.interval, socket: 1, sent: 500, received: 0), event(.close, socket: 1, sent: 1_700, received: 11)])
        ledger.add([event(.connect, socket: 3, sent: 1, received: 0)])  // not what tcp-top asks for: ignored
        window = ledger.closeWindow()
        XCTAssertEqual(window.first { $0.socketID == 1 }.map { [$0.sent, $0.received] }, [700, 1], "500 in a record, 200 + 1 left at close")
        XCTAssertEqual(window.first { $0.socketID == 2 }.map { [$0.sent, $0.received] }, [0, 0], "still open, idle")
        XCTAssertNil(window.first { $0.socketID == 3 })
        window = ledger.closeWindow()
        XCTAssertEqual(window.map(\.socketID), [2], "the closed connection has left")
    }

    /// A close no record listed: its totals count if it opened after the ledger began (they all
    /// moved since), and not otherwise (how much fell in this window is unknown).
    func testACloseNoRecordListedCountsOnlyIfItOpenedSinceTheStart() {
        let ledger = ThroughputLedger(start: 1_000)
        var young = event(.close, socket: 1, sent: 500, received: 5)
        young.timeNanoseconds = 5_000
        young.durationNanoseconds = 3_000
        var old = event(.close, socket: 2, sent: 9_999_999, received: 5)
        old.timeNanoseconds = 5_000
        old.durationNanoseconds = 4_500
        var unknown = event(.close, socket: 3, sent: 9_999_999, received: 5)
        unknown.durationNanoseconds = nil
        ledger.add([young, old, unknown])
        let window = ledger.closeWindow()
        XCTAssertEqual(window.first { $0.socketID == 1 }.map { [$0.sent, $0.received] }, [500, 5])
        XCTAssertEqual(window.first { $0.socketID == 2 }.map { [$0.sent, $0.received] }, [0, 0])
        XCTAssertEqual(window.first { $0.socketID == 3 }.map { [$0.sent, $0.received] }, [0, 0])
        XCTAssertEqual(ledger.closeWindow().count, 0, "all three closed")
    }

    func testProcessRowsSumTheirConnectionsAndSortBusiestFirst() {
        let ledger = ThroughputLedger(start: 0)
        ledger.add([
            event(.interval, socket: 1, pid: 7, command: "nginx", sent: 100, received: 0, srtt: 30, retransmits: 2),
            event(.interval, socket: 2, pid: 7, command: "nginx", sent: 300, received: 50, srtt: 90, retransmits: 1),
            event(.interval, socket: 3, pid: 9, command: "curl", sent: 0, received: 1_000, srtt: 10),
        ])
        let window = ledger.closeWindow()
        let processes = TopRow.rows(window, seconds: 2, time: 0, byProcess: true, order: .total)
        XCTAssertEqual(processes.map(\.process.pid), [9, 7])
        let nginx = processes[1]
        XCTAssertEqual([nginx.sent, nginx.received, nginx.retransmits], [400, 50, 3])
        XCTAssertEqual(nginx.connections, 2)
        XCTAssertEqual(nginx.smoothedRTTMicroseconds, 90, "the slowest connection's")
        XCTAssertEqual(nginx.sentPerSecond, 200)
        XCTAssertEqual(TopRow.rows(window, seconds: 2, time: 0, byProcess: false, order: .sent).map(\.socketID), [2, 1, 3])
        XCTAssertEqual(TopRow.rows(window, seconds: 2, time: 0, byProcess: false, order: .rtt).map(\.socketID), [2, 1, 3])
        XCTAssertEqual(TopRow.rows(window, seconds: 2, time: 0, byProcess: false, order: .retransmits).map(\.socketID), [1, 2, 3])
        XCTAssertEqual(TopRow.Order.allCases.map(\.next), [.sent, .received, .rtt, .retransmits, .total])
    }

    /// 80 columns hold every field; nothing a process names itself reaches the terminal raw.
    func testFramesFitTheTerminalAndEscapeNames() {
        let ledger = ThroughputLedger(start: 0)
        ledger.add([
            event(.interval, socket: 1, command: "ev\"il\n\u{1b}[31mX\u{202e}-and-a-long-name", sent: 123_456_789, received: 0),
            event(.interval, socket: 2, sent: 1, received: 0, remote: IPAddress("2001:db8:1234:5678:9abc:def0:1234:5678")!),
        ])
        let window = ledger.closeWindow()
        for byProcess in [false, true] {
            let screen = TopScreen(byProcess: byProcess, order: .total, interval: 1)
            for width in [80, 120] {
                let lines = screen.lines(
                    TopRow.rows(window, seconds: 1, time: 0, byProcess: byProcess, order: .total), measured: true,
                    connections: window.count, width: width, height: 24)
                XCTAssertEqual(lines.count, 3 + (byProcess ? 1 : 2))
                for line in lines {
                    XCTAssertLessThanOrEqual(line.count, width, line)
                    XCTAssertFalse(
                        line.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) || $0 == "\u{202e}" },
                        "a control or format character reached the screen: \(line)")
                }
                XCTAssertTrue(lines[2].contains("TX/s") && lines[2].contains("RETR"), lines[2])
                if !byProcess {
                    XCTAssertTrue(lines[2].contains("SRTT_MS"))
                    XCTAssertEqual(lines[2].contains("LOCAL"), width >= 118)
                }
            }
        }
        let small = TopScreen(byProcess: false, order: .total, interval: 1).lines(
            TopRow.rows(window, seconds: 1, time: 0, byProcess: false, order: .total), measured: false, connections: 2, width: 80, height: 4)
        XCTAssertEqual(small.count, 4, "as many rows as fit")
        XCTAssertTrue(small[3].contains(" - "), "rates of the first window are not shown: \(small[3])")
    }

    func testRatesFitSixCharacters() {
        XCTAssertEqual(TopScreen.rate(0), "0")
        XCTAssertEqual(TopScreen.rate(999), "999")
        XCTAssertEqual(TopScreen.rate(12_345), "12.3K")
        XCTAssertEqual(TopScreen.rate(456_789), "456K")
        XCTAssertEqual(TopScreen.rate(7_800_000), "7.8M")
        XCTAssertEqual(TopScreen.rate(1.2e9), "1.2G")
        XCTAssertEqual(TopScreen.rate(-5), "0")
    }

    /// --json rows: a connection's and a process's keys.
    func testJSONRows() throws {
        let ledger = ThroughputLedger(start: 0)
        ledger.add([event(.interval, socket: 1, sent: 2_000, received: 10)])
        let window = ledger.closeWindow()
        for byProcess in [false, true] {
            let row = try XCTUnwrap(TopRow.rows(window, seconds: 2, time: 5, byProcess: byProcess, order: .total).first)
            let line = try EventJSONEncoder().encode(row)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(object["event"] as? String, byProcess ? "process" : "connection")
            XCTAssertEqual((object["tx_bytes"] as? NSNumber)?.intValue, 2_000)
            XCTAssertEqual((object["tx_bytes_per_s"] as? NSNumber)?.intValue, 1_000)
            XCTAssertEqual((object["srtt_us"] as? NSNumber)?.intValue, 50)
            XCTAssertEqual(object["connections"] != nil, byProcess)
            XCTAssertEqual(object["sport"] != nil, !byProcess)
        }
    }
}
