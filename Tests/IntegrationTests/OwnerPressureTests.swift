import Foundation
import Glibc
import TCPEvent
import XCTest

/// Owners that cannot be forged or flushed: processes holding tens of thousands of live TCP
/// sockets (every one an entry in the kernel's map of owners) must not make any connection's end
/// carry a pid other than its owner's. Pushed out of a full map, an owner becomes "unknown" (pid
/// 0), never whichever task ran the close; a connection no entry knows is owned again by the
/// process that uses it (adopted at its first send or receive, Linux 6.3+).
final class OwnerPressureTests: XCTestCase {
    /// At the default size (the kernel's table of established sockets: 262,144 here), six
    /// processes holding 102,000 sockets push no owner out: each of their 102,000 ends and both
    /// ends of a connection made beside them name their own process.
    func testAHundredThousandSocketsPushNoOwnerOutAtTheDefaultSize() throws {
        try flood(processes: 6, connectionsEach: 8_500, maxTrackedSockets: nil)
    }

    /// A map of 4,096 owners flooded with 16,000 sockets: the ends whose owners were pushed out
    /// say "unknown" (pid 0, owner `unknown`), never another process.
    func testOwnersPushedOutOfAFullMapAreUnknownNeverAnotherProcess() throws {
        try flood(processes: 2, connectionsEach: 4_000, maxTrackedSockets: 4_096)
    }

    /// Opens a connection (a server process, a client of this one), starts tracing and `processes`
    /// generators of `connectionsEach` connections each (on 127.0.0.20, .21...), moves 100 and 10
    /// bytes over the first connection,
    /// closes it, ends the generators, and checks every close: nothing lost, each end named by its
    /// own process or unknown, and (nil `maxTrackedSockets`: the default) none unknown when the
    /// map has room for them all.
    private func flood(processes: Int, connectionsEach: Int, maxTrackedSockets: Int?) throws {
        try requireBPF()
        var configuration = TCPMonitor.Configuration()
        configuration.events = [.close]  // tracking is the same whatever is reported
        if let maxTrackedSockets { configuration.maxTrackedSockets = maxTrackedSockets }
        // Room for every close at once (240 bytes each in the buffer), and in the delivery queue:
        // the test is about owners, not about a burst the buffers cannot hold.
        configuration.bufferPages = 8_192
        configuration.deliveryCapacity = 262_144
        // Opened before tracing begins (a server process, a client of this one): no entry knows it
        // until it is used.
        let port = freePort()
        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "100", "--send", "10"])
        _ = try server.nextLine()
        let client = try LoopbackClient(port: port)
        let isVictim: @Sendable (TCPConnectionEvent) -> Bool = { [port, clientPort = client.port] event in
            event.endpoints.sourcePort == clientPort && event.endpoints.destinationPort == port
                || event.endpoints.sourcePort == port && event.endpoints.destinationPort == clientPort
        }
        // Only this test's closes: the generators' (by their source addresses) and the connection's.
        // Others of this machine's must not count towards the wait below.
        let addresses = Set((0..<processes).map { "127.0.0.\(20 + $0)" })
        let monitor = try TCPMonitor(configuration: configuration)
        let closes = Collector<TCPConnectionEvent>()
        try monitor.start { event in
            if addresses.contains(event.endpoints.sourceAddress.description) || isVictim(event) { closes.add(event) }
        }
        defer { monitor.stop() }
        let traffic = try builtExecutable("netevents-traffic").path
        var holders: [String: pid_t] = [:]
        var listeners: [String: UInt16] = [:]
        defer { for pid in holders.values { kill(pid, SIGKILL); reap(pid) } }
        var sockets = 0
        for index in 0..<processes {
            let address = "127.0.0.\(20 + index)"
            let holder = try startHolding([traffic, "tcp-sockets", "--count", "\(connectionsEach)", "--source", address])
            holders[address] = holder.pid
            listeners[address] = holder.fields["port"].flatMap { UInt16($0) }
            sockets += try XCTUnwrap(holder.fields["sockets"].flatMap { Int($0) }, "\(holder.fields)")
        }
        XCTAssertEqual(sockets, 2 * processes * connectionsEach, "a generator could not open its sockets (descriptor limit?)")

        client.send(100)
        XCTAssertEqual(client.receive(10), 10)
        close(client.fd)
        server.waitForSuccess()
        for pid in holders.values { kill(pid, SIGTERM) }
        for pid in holders.values { reap(pid) }
        let pids = holders
        holders = [:]

        func floodCloses(_ events: [TCPConnectionEvent]) -> [TCPConnectionEvent] {
            events.filter { pids[$0.endpoints.sourceAddress.description] != nil }
        }
        // Every socket's close and the connection's two. A socket whose peer's FIN went missing in
        // the mass close waits in FIN_WAIT2 for `tcp_fin_timeout` (60 s) before it closes: wait
        // while the kernel still holds any of the generators' sockets (bounded), so a late close
        // is told from a lost one.
        let deadline = Date().addingTimeInterval(150)
        var open = OpenSockets.count(addresses: addresses)
        var quiet = 0  // consecutive half-second looks with nothing open and no new close
        var seen = closes.count
        while closes.count < sockets + 2 && Date() < deadline && quiet < 3 {
            usleep(500_000)
            open = OpenSockets.count(addresses: addresses)
            // One read of /proc/net/tcp can skip a socket while others leave the table.
            quiet = open.isEmpty && closes.count == seen ? quiet + 1 : 0
            seen = closes.count
        }
        usleep(200_000)
        let events = closes.events
        let statistics = monitor.statistics
        let ours = floodCloses(events)
        let unknown = ours.filter { $0.ownerSource == .unknown }
        print("owner pressure: \(sockets) sockets, map of \(configuration.maxTrackedSockets): \(unknown.count) closes unknown; \(statistics)")
        XCTAssertEqual(statistics.lostSamples, 0, "\(statistics)")
        // A close can be missing only where the kernel ran no program for it (a softirq
        // interrupting the program on the same CPU, counted in missedProgramRuns; or, 1 in about
        // 30 runs of this test on Linux 6.18, a skip the kernel counts nowhere): each one is in
        // the kernel's own count of closes the program did not see, never silent.
        XCTAssertLessThanOrEqual(ours.count, sockets)
        XCTAssertLessThanOrEqual(sockets - ours.count, sockets / 1_000, "more missing than the rare skipped run explains")
        let raw = TCPMonitorIntegrationTests.stateChangeIsRaw(monitor)
        // Elsewhere the counted skips are all there is (none before Linux 6.7).
        let unseen = raw ? statistics.unseenEvents : statistics.missedProgramRuns
        if raw { XCTAssertNotNil(unseen, "the raw tracepoint is held against the kernel's count (\(monitor.report?.notes ?? []))") }
        XCTAssertLessThanOrEqual(
            UInt64(max(0, sockets - ours.count)), unseen ?? 0,
            "a close event for every socket of the generators, but for closes no program run saw; still open in the kernel: \(open); "
                + "sockets tracked \(statistics.kind.trackedSockets), their closes seen \(statistics.kind.trackedCloses), evicted "
                + "\(statistics.kind.evictedSockets) (tracked and none of these: still in the map, a close the program never ran for); "
                + "connections with one end missing: \(Self.halfReported(ours, listeners: listeners))")

        for event in ours {
            let owner = pids[event.endpoints.sourceAddress.description]
            if event.process.pid == owner, [.connect, .accept].contains(event.ownerSource) { continue }
            if event.process == .unknown && event.ownerSource == .unknown && event.cgroupID == 0 { continue }
            XCTFail("an end of \(owner.map(String.init) ?? "?")'s connections named another owner: \(event)")
            break
        }
        if maxTrackedSockets == nil && configuration.maxTrackedSockets >= sockets + 16_384 {
            XCTAssertEqual(unknown.count, 0, "the default map has room for every socket: \(statistics)")
            XCTAssertEqual(statistics.kind.evictedSockets, 0, "\(statistics)")
        } else if let maxTrackedSockets {
            XCTAssertGreaterThan(statistics.kind.evictedSockets, UInt64(sockets - maxTrackedSockets) / 2, "\(statistics)")
            XCTAssertGreaterThan(unknown.count, 0, "the map was full, yet every owner was known")
            XCTAssertLessThanOrEqual(UInt64(unknown.count), statistics.kind.evictedSockets, "\(statistics)")
        }

        // The connection opened before tracing began and used after the flood: each end adopted
        // then by its process (the client sent, the server received).
        let ends = events.filter(isVictim)
        XCTAssertEqual(ends.count, 2, "\(ends)")
        XCTAssertGreaterThanOrEqual(statistics.kind.adoptedSockets, 2, "\(statistics)")
        for end in ends {
            let isClient = end.endpoints.sourcePort == client.port
            XCTAssertEqual(end.process.pid, isClient ? getpid() : server.pid, "\(end)")
            XCTAssertEqual(end.ownerSource, .firstIO, "\(end)")
            // tcp_info's counts: the data, plus one for the FIN received, plus (client) the SYN and its FIN.
            XCTAssertEqual(end.sentBytes, isClient ? 102 : 11, "\(end)")
            XCTAssertEqual(end.receivedBytes, isClient ? 11 : 101, "\(end)")
        }
    }
}

extension OwnerPressureTests {
    /// The close events of connections whose other end has none (at most five), to tell which
    /// end of which connection went unreported: each generator's connections run from its
    /// address at an ephemeral port to its listener's port on the same address.
    static func halfReported(_ closes: [TCPConnectionEvent], listeners: [String: UInt16]) -> [String] {
        var ends: [String: [TCPConnectionEvent]] = [:]
        for event in closes {
            let address = event.endpoints.sourceAddress.description
            guard let listener = listeners[address] else { continue }
            let clientPort = event.endpoints.sourcePort == listener ? event.endpoints.destinationPort : event.endpoints.sourcePort
            ends["\(address):\(clientPort)", default: []].append(event)
        }
        return ends.filter { $0.value.count != 2 }.prefix(5).map { "\($0.key): \($0.value)" }
    }
}

/// The generators' sockets the kernel still holds open, read from `/proc/net/tcp`.
private enum OpenSockets {
    /// How many sockets in each state (the kernel's `TCP_*` number) have one of `addresses` at
    /// either end; TIME_WAIT (6, its full socket closed already) and LISTEN (10) are not counted.
    static func count(addresses: Set<String>) -> [Int: Int] {
        // /proc/net/tcp writes an IPv4 address as the hex of its 32 bits in host (little-endian) order.
        let hex = Set(addresses.compactMap { text -> String? in
            let parts = text.split(separator: ".").compactMap { UInt8($0) }
            guard parts.count == 4 else { return nil }
            return parts.reversed().map { String(format: "%02X", $0) }.joined()
        })
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return [-1: 1] }
        var states: [Int: Int] = [:]
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 3, let state = Int(fields[3], radix: 16), state != 6, state != 10 else { continue }
            let ends = [fields[1], fields[2]].map { String($0.prefix { $0 != ":" }) }
            if ends.contains(where: hex.contains) { states[state, default: 0] += 1 }
        }
        return states
    }
}
