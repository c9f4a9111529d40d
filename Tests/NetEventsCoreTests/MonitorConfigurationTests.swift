import TCPEvent
import XCTest
@testable import NetEventsCore

final class MonitorConfigurationTests: XCTestCase {
    typealias Configuration = MonitorConfiguration<CountingKind>

    func testDefaults() {
        let configuration = Configuration()
        XCTAssertEqual(configuration.filter, EventFilter())
        XCTAssertEqual(configuration.options, CountingKind.Options())
        XCTAssertNil(configuration.transport)
        XCTAssertNil(configuration.offsetSource)
        XCTAssertEqual(configuration.bufferPages, 64, "the kind's default, EventKind's when it names none")
        XCTAssertEqual(configuration.deliveryCapacity, 65_536)
        XCTAssertEqual(configuration.drainInterval, .milliseconds(2))
        XCTAssertEqual(TCPMonitor.Configuration().bufferPages, TCPKind.defaultBufferPages)
        XCTAssertEqual(TCPKind.defaultBufferPages, 256)
        XCTAssertNoThrow(try configuration.validate())
    }

    /// The kind's options and the filter's fields read and write as the configuration's own.
    func testOptionsAndFilterFieldsAreTheConfigurationsOwn() {
        var configuration = Configuration()
        configuration.limit = 3
        configuration.scanEvery = .seconds(1)
        configuration.pid = 42
        configuration.uid = 0
        configuration.port = 5
        configuration.family = .ipv6
        XCTAssertEqual(configuration.options.limit, 3)
        XCTAssertEqual(configuration.options.scanEvery, .seconds(1))
        XCTAssertEqual(configuration.filter, EventFilter(pids: [42], uid: 0, ports: [5], family: .ipv6))
        XCTAssertEqual(configuration.limit, 3)
        XCTAssertEqual(configuration.pid, 42)
        XCTAssertEqual(configuration.uid, 0)
        XCTAssertEqual(configuration.port, 5)
        XCTAssertEqual(configuration.family, .ipv6)
        configuration.port = nil
        XCTAssertNil(configuration.filter.port)

        // The same through a real kind: its options by name, next to the filter's fields.
        var tcp = TCPMonitor.Configuration(filter: .init(ports: [443]), options: .init(hook: .kprobe))
        XCTAssertEqual(tcp.hook, .kprobe)
        XCTAssertEqual(tcp.port, 443)
        tcp.hook = .tracepoint
        tcp.maxTrackedSockets = 64
        tcp.port = 5
        XCTAssertEqual(tcp.options.hook, .tracepoint)
        XCTAssertEqual(tcp.options.maxTrackedSockets, 64)
        XCTAssertEqual(tcp.filter.port, 5)
    }

    func testEquality() {
        var a = Configuration()
        var b = Configuration()
        XCTAssertEqual(a, b)
        a.port = 1
        XCTAssertNotEqual(a, b)
        b.filter.port = 1
        XCTAssertEqual(a, b)
        a.limit = 2
        XCTAssertNotEqual(a, b)
        b.options.limit = 2
        XCTAssertEqual(a, b)
        a.drainInterval = .zero
        XCTAssertNotEqual(a, b)
    }

    func testValidConfigurationsAtTheEdges() {
        var configuration = Configuration(filter: .init(pids: [1], uid: 0, ports: [65_535], family: .ipv4))
        configuration.bufferPages = 1
        configuration.deliveryCapacity = 1
        configuration.drainInterval = .zero
        configuration.limit = 1
        XCTAssertNoThrow(try configuration.validate())
        configuration.bufferPages = 1 << 20
        configuration.drainInterval = .seconds(1)
        XCTAssertNoThrow(try configuration.validate())
    }

    /// Every bad option is refused with a message that names it and shows the bad value.
    func testValidationMessagesNameTheOptionAndTheValue() {
        func with(_ change: (inout Configuration) -> Void) -> Configuration {
            var configuration = Configuration()
            change(&configuration)
            return configuration
        }
        let cases: [(Configuration, String, String)] = [
            (with { $0.pid = 0 }, "pid", "0"),
            (with { $0.pid = -5 }, "pid", "-5"),
            (with { $0.pid = Int32.min }, "pid", "\(Int32.min)"),
            (with { $0.port = 0 }, "port", "0"),
            (with { $0.bufferPages = 3 }, "bufferPages", "3"),
            (with { $0.bufferPages = 0 }, "bufferPages", "0"),
            (with { $0.bufferPages = -4 }, "bufferPages", "-4"),
            (with { $0.bufferPages = 96 }, "bufferPages", "96"),
            (with { $0.deliveryCapacity = 0 }, "deliveryCapacity", "0"),
            (with { $0.deliveryCapacity = -1 }, "deliveryCapacity", "-1"),
            (with { $0.drainInterval = .milliseconds(-1) }, "drainInterval", "-0.001"),
            (with { $0.drainInterval = .milliseconds(1_500) }, "drainInterval", "1.5"),
            (with { $0.limit = 0 }, "limit", "0"),
        ]
        for (configuration, name, value) in cases {
            XCTAssertThrowsError(try configuration.validate(), name) { error in
                guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(name): \(error)") }
                XCTAssertTrue(message.hasPrefix(name), "\(message) names \(name)")
                XCTAssertTrue(message.contains(value), "\(message) shows \(value)")
            }
        }
        // The exact wording of the common ones.
        XCTAssertThrowsError(try with { $0.pid = -5 }.validate()) { error in
            XCTAssertEqual(error as? BPFError, .invalidArgument("pid filter must be a positive process id, got -5"))
        }
        XCTAssertThrowsError(try with { $0.port = 0 }.validate()) { error in
            XCTAssertEqual(error as? BPFError, .invalidArgument("port filter must be 1-65535, got 0"))
        }
        XCTAssertThrowsError(try with { $0.bufferPages = 3 }.validate()) { error in
            XCTAssertEqual(error as? BPFError, .invalidArgument("bufferPages must be a power of two, got 3"))
        }
        XCTAssertThrowsError(try with { $0.deliveryCapacity = 0 }.validate()) { error in
            XCTAssertEqual(error as? BPFError, .invalidArgument("deliveryCapacity must be at least 1, got 0"))
        }
    }

    /// The filter is checked first, then the common options, then the kind's.
    func testTheFirstBadOptionIsNamed() {
        var configuration = Configuration()
        configuration.limit = 0
        configuration.bufferPages = 3
        configuration.port = 0
        XCTAssertThrowsError(try configuration.validate()) { error in
            guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.hasPrefix("port"), message)
        }
        configuration.port = nil
        XCTAssertThrowsError(try configuration.validate()) { error in
            guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.hasPrefix("bufferPages"), message)
        }
        configuration.bufferPages = 4
        XCTAssertThrowsError(try configuration.validate()) { error in
            guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.hasPrefix("limit"), message)
        }
    }

    func testAFilterValueCostsNoCompileOfItsOwn() {
        // The program text depends on whether a filter is set, never on its values (they go to maps).
        XCTAssertEqual(EventFilter().compilerFlags, [], "no filter, no flag")
        for filter in [
            EventFilter(pids: [42]), EventFilter(pids: [1, 2, 3]), EventFilter(uid: 0), EventFilter(ports: [65_535, 80]),
            EventFilter(family: .ipv4), EventFilter(cgroups: ["/a"]), EventFilter(containers: ["3f2a"]),
            EventFilter(networkNamespaces: [4_026_531_840]), EventFilter(pids: [42], uid: 1000, ports: [8080], family: .ipv6),
        ] {
            XCTAssertEqual(filter.compilerFlags, ["-DFILTERS"], "\(filter)")
        }
    }

    func testSingleValueAccessorsReadAndReplaceTheLists() {
        var filter = EventFilter(pids: [1, 2], ports: [80])
        XCTAssertNil(filter.pid, "two pids are no single one")
        XCTAssertEqual(filter.port, 80)
        filter.pid = 7
        XCTAssertEqual(filter.pids, [7])
        filter.port = nil
        XCTAssertEqual(filter.ports, [])
    }

    func testFilterValidationNamesTheBadValue() {
        let bad: [(EventFilter, String)] = [
            (EventFilter(pids: [5, -1]), "pid filter must be a positive process id, got -1"),
            (EventFilter(ports: [0]), "port filter must be 1-65535, got 0"),
            (EventFilter(networkNamespaces: [0]), "netns filter must be a namespace's inode number, got 0"),
            (EventFilter(containers: ["3F2A"]), "container filter must be a container id or its prefix"),
            (EventFilter(containers: [""]), "container filter must be a container id or its prefix"),
            (EventFilter(cgroups: [""]), "cgroup filter must be a path"),
            (EventFilter(pids: Set(1...1025)), "a pid filter holds at most 1024 values, got 1025"),
            (EventFilter(cgroups: (0..<17).map { "/c\($0)" }), "a filter names at most 16 cgroups and containers, got 17"),
        ]
        for (filter, expected) in bad {
            XCTAssertThrowsError(try filter.validate()) { error in
                guard case BPFError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.hasPrefix(expected), "\(message) starts with \(expected)")
            }
        }
        XCTAssertNoThrow(try EventFilter(pids: [1], ports: [1, 65_535], containers: [String(repeating: "ab", count: 32)]).validate())
    }
}
