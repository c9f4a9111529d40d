import ArgumentParser
import NetEventsCore
import XCTest
@testable import EventOutput

/// The filter flags every tool shares: comma-separated lists, repeated flags, and a clear refusal
/// of anything that is no value of the flag.
final class TracerOptionsTests: XCTestCase {
    func parse(_ arguments: [String]) throws -> TracerOptions { try TracerOptions.parse(arguments) }

    func testListsAndRepeatedFlagsMakeOneFilter() throws {
        let options = try parse([
            "--pid", "10,20", "--pid", "30", "--port", " 80 ,443", "--netns", "4026531840", "--cgroup", "/system.slice/a.service",
            "--container", "3F2A", "--uid", "0", "-6",
        ])
        XCTAssertEqual(
            try options.filter,
            EventFilter(
                pids: [10, 20, 30], uid: 0, ports: [80, 443], family: .ipv6, cgroups: ["/system.slice/a.service"], containers: ["3f2a"],
                networkNamespaces: [4_026_531_840]))
        XCTAssertEqual(try parse([]).filter, EventFilter(), "no flag, no filter")
        XCTAssertEqual(
            "\(try options.filter)", "pid 10,20,30, uid 0, port 80,443, ipv6, cgroup /system.slice/a.service, container 3f2a, netns 4026531840",
            "the Tracing line's words; container ids as docker writes them, in lowercase")
    }

    func testBadListItemsNameTheFlag() throws {
        for (arguments, flag) in [
            (["--pid", "1,,2"], "--pid"), (["--pid", "0"], "--pid"), (["--pid", "-4"], "--pid"), (["--port", "65536"], "--port"),
            (["--port", "0"], "--port"), (["--port", "http"], "--port"), (["--netns", "0"], "--netns"),
            (["--container", "xyz"], "--container"), (["--container", String(repeating: "a", count: 65)], "--container"),
            (["--cgroup", ""], "--cgroup"),
        ] {
            XCTAssertThrowsError(try parse(arguments), "\(arguments)") { error in
                XCTAssertTrue(TracerOptions.message(for: error).contains(flag), "\(arguments): \(TracerOptions.message(for: error))")
            }
        }
        let tooMany = (1...1_025).map(String.init).joined(separator: ",")
        XCTAssertThrowsError(try parse(["--port", tooMany])) { error in
            XCTAssertTrue(TracerOptions.message(for: error).contains("at most 1024"), TracerOptions.message(for: error))
        }
    }
}
