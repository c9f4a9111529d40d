import BCCRuntime
import Foundation
import TCPEvent
import XCTest

/// The TCP monitor's opens, failures and health, against real connections and what the kernel's
/// own tool (`ss -ti`) shows for the same sockets. Retransmissions and timeouts are made on
/// purpose in network namespaces the tests create, whose nftables rules drop packets.
final class TCPLifecycleIntegrationTests: XCTestCase {
    let otherUID: UInt32 = 65_534

    /// A connect to a closed port is one `fail` event (ECONNREFUSED) of the connecting process,
    /// and no `close`; IPv4 and IPv6.
    func testRefusedConnectIsAFailureOfTheConnectingProcess() throws {
        try requireBPF()
        let port = freePort()
        let (monitor, collector) = try collectingTCPMonitor(.init(filter: .init(ports: [port])))
        defer { monitor.stop() }
        var clients: [Int32] = []
        for family in [[], ["-6"]] {
            let client = try TrafficProcess(["tcp-connect", "--port", "\(port)", "--uid", "\(otherUID)"] + family)
            XCTAssertEqual(try client.nextLine()["errno"], "\(ECONNREFUSED)")
            client.waitForSuccess()
            clients.append(client.pid)
        }
        let events = collector.wait { $0.count >= 2 }
        monitor.stop()
        XCTAssertEqual(events.map(\.kind), [.fail, .fail], "one failure per connect, no close: \(events)")
        for (event, (pid, family)) in zip(events, zip(clients, [AddressFamily.ipv4, .ipv6])) {
            XCTAssertEqual(event.error, TCPConnectError(code: ECONNREFUSED))
            XCTAssertEqual(event.error?.name, "ECONNREFUSED")
            XCTAssertEqual(event.pid, pid)
            XCTAssertEqual(event.uid, otherUID)
            XCTAssertEqual(event.command, "netevents-traff")
            XCTAssertEqual(event.ownerSource, .connect)
            XCTAssertEqual(event.family, family)
            XCTAssertEqual(event.destinationPort, port)
            XCTAssertEqual(event.previousState, .synSent)
            XCTAssertNotNil(event.durationNanoseconds, "a failure carries the time since the SYN")
            XCTAssertNil(event.latencyNanoseconds)
            XCTAssertEqual(event.sentBytes, 0, "the SYN was never acknowledged")
            XCTAssertNil(event.health.minimumRTTMicroseconds, "no RTT was measured")
        }
        XCTAssertEqual(monitor.statistics.lostSamples, 0)
    }

    /// Unanswered SYNs (an nftables rule drops them): a connect whose process closes it while it
    /// is still connecting fails with no error (`error` is left out), and one that runs out of SYN
    /// retries fails with ETIMEDOUT, as connect(2) returned it.
    func testUnansweredConnectsFailWithTheirReason() throws {
        try requireBPF()
        let namespace = try NetworkNamespace()
        let port = freePort()
        try namespace.addInputRule("tcp dport \(port) drop")
        let (monitor, collector) = try collectingTCPMonitor(.init(filter: .init(ports: [port])))
        defer { monitor.stop() }
        let givenUp = try TrafficProcess(["tcp-connect", "--port", "\(port)", "--give-up-ms", "200"], namespace: namespace)
        let gaveUp = try givenUp.nextLine()
        XCTAssertEqual(gaveUp["event"], "gave-up")
        givenUp.waitForSuccess()
        // One SYN retry: 1 s, then 2 s more, then ETIMEDOUT.
        let timedOut = try TrafficProcess(["tcp-connect", "--port", "\(port)", "--syn-retries", "1"], namespace: namespace)
        XCTAssertEqual(try timedOut.nextLine(timeout: 30)["errno"], "\(ETIMEDOUT)")
        timedOut.waitForSuccess()
        let events = collector.wait { $0.count >= 2 }
        monitor.stop()
        XCTAssertEqual(events.map(\.kind), [.fail, .fail], "\(events)")
        guard events.count == 2 else { return }
        XCTAssertEqual(events[0].pid, givenUp.pid)
        XCTAssertEqual(events[0].sourcePort, gaveUp["port"].flatMap { UInt16($0) })
        XCTAssertNil(events[0].error, "given up by its own process: no error")
        XCTAssertEqual(events[1].pid, timedOut.pid)
        XCTAssertEqual(events[1].error?.name, "ETIMEDOUT")
        // The kernel's count (tcp_sock.total_retrans): the SYN retries, however many its timer made.
        XCTAssertGreaterThanOrEqual(events[1].health.retransmits, 1, "the SYN retries")
        XCTAssertGreaterThanOrEqual(events[1].durationNanoseconds ?? 0, 2_500_000_000, "1 s + 2 s of SYN timeouts")
        for event in events {
            XCTAssertEqual(event.networkNamespace, namespace.inode)
            XCTAssertEqual(event.ownerSource, .connect)
            XCTAssertEqual(event.previousState, .synSent)
        }
    }

    /// RTT and retransmissions of both ends equal what `ss -ti` shows for the same sockets, with
    /// retransmissions made on purpose: in a namespace whose input chain drops every third data
    /// packet to the server, the client retransmits. The connection is reset (no FIN, so no RTT
    /// sample after `ss` looked) once `ss` shows it quiet.
    func testHealthEqualsWhatSSShowsWithRetransmissionsMadeOnPurpose() throws {
        try requireBPF()
        let namespace = try NetworkNamespace()
        let port = freePort()
        try namespace.addInputRule("tcp dport \(port) meta length gt 200 numgen inc mod 3 eq 0 drop")
        let (closes, seen) = try resetExchange(port: port, send: 200_000, namespace: namespace)
        let client = try XCTUnwrap(closes.first { $0.destinationPort == port })
        XCTAssertGreaterThan(client.health.retransmits, 0, "dropped data was retransmitted")
        XCTAssertEqual(client.networkNamespace, namespace.inode)
        for event in closes {
            let shown = try XCTUnwrap(seen[event.sourcePort], "ss showed no socket on port \(event.sourcePort): \(seen)")
            XCTAssertEqual(event.health, shown, "port \(event.sourcePort): the event against ss -ti")
        }
    }

    /// The same on plain loopback in this namespace, IPv4 and IPv6: no retransmissions.
    func testHealthEqualsWhatSSShowsOnLoopback() throws {
        try requireBPF()
        for ipv6 in [false, true] {
            let port = freePort()
            let (closes, seen) = try resetExchange(port: port, send: 50_000, ipv6: ipv6, namespace: nil)
            for event in closes {
                let shown = try XCTUnwrap(seen[event.sourcePort], "ss showed no socket on port \(event.sourcePort): \(seen)")
                XCTAssertEqual(event.health, shown, "port \(event.sourcePort): the event against ss -ti")
                XCTAssertEqual(event.health.retransmits, 0)
                XCTAssertGreaterThan(event.health.smoothedRTTMicroseconds, 0)
            }
        }
    }

    /// A client sends `send` bytes to a server that reads them all; once `ss -ti` shows the same
    /// health twice in a row with nothing unacknowledged, the client resets the connection.
    /// Returns both ends' close events and what `ss` showed, by local port. Every event of each
    /// end carries the socket cookie `ss -e` showed for it.
    func resetExchange(port: UInt16, send: Int, ipv6: Bool = false, namespace: NetworkNamespace?) throws
        -> (closes: [TCPConnectionEvent], shown: [UInt16: TCPHealth])
    {
        let (monitor, collector) = try collectingTCPMonitor(.init(filter: .init(ports: [port])))
        defer { monitor.stop() }
        let family = ipv6 ? ["-6"] : []
        let server = try TrafficProcess(
            ["tcp-server", "--port", "\(port)", "--receive", "\(send)", "--expect-reset"] + family, namespace: namespace)
        _ = try server.nextLine()
        let client = try TrafficProcess(["tcp-client", "--port", "\(port)", "--send", "\(send)", "--abort"] + family, namespace: namespace)
        _ = try client.nextLine()
        XCTAssertEqual(try server.nextLine(timeout: 60)["received"], "\(send)")
        var shown: [UInt16: TCPHealth] = [:]
        var cookies: [UInt16: UInt64] = [:]
        var previous: String?
        for _ in 0..<100 {
            let text = try SocketStatistics.show(port: port, namespace: namespace)
            if text == previous && !text.contains("unacked:") {
                shown = SocketStatistics.health(text)
                cookies = SocketStatistics.cookies(text)
                break
            }
            previous = text
            usleep(50_000)
        }
        XCTAssertEqual(shown.count, 2, "ss showed both ends quiet")
        client.proceed()
        _ = try client.nextLine()
        _ = try server.nextLine()
        client.waitForSuccess()
        server.waitForSuccess()
        let events = collector.wait { $0.filter { $0.kind == .close }.count >= 2 }
        XCTAssertEqual(events.map(\.kind).sorted { $0.rawValue < $1.rawValue }, [.accept, .close, .close, .connect], "\(events)")
        XCTAssertEqual(cookies.count, 2, "ss -e showed both ends' cookies")
        for event in events {
            XCTAssertEqual(event.socketID, cookies[event.sourcePort], "\(event.kind) of port \(event.sourcePort): socket_id is ss's sk:")
        }
        let closes = events.filter { $0.kind == .close }
        XCTAssertEqual(closes.map(\.previousState), [.established, .established], "both ends reset while established")
        return (closes, shown)
    }
}

/// What `ss` (iproute2) shows for sockets: `-i` TCP health, `-e` the socket cookie.
enum SocketStatistics {
    /// `ss -tineH` (or for UDP, `ss -uaneH`: unconnected sockets too) for the sockets with `port`
    /// as either port, inside `namespace` if given.
    static func show(port: UInt16, udp: Bool = false, namespace: NetworkNamespace? = nil) throws -> String {
        let arguments = [udp ? "-uaneH" : "-tineH", "sport = :\(port) or dport = :\(port)"]
        // Timers and "last" times change between readings; keep only what is compared.
        let text = try namespace?.run(try NetworkNamespace.tool("ss"), arguments)
            ?? NetworkNamespace.run(try NetworkNamespace.tool("ss"), arguments)
        return text.split(separator: "\n").map { line in
            line.split(separator: " ").filter { word in
                !["lastsnd:", "lastrcv:", "lastack:", "rto:", "pacing_rate", "delivery_rate", "send", "busy:"].contains { word.hasPrefix($0) }
                    && !word.hasSuffix("bps")
            }.joined(separator: " ")
        }.joined(separator: "\n")
    }

    /// The kernel cookie of each socket in `ss -e` output (`sk:` in hex), by local port.
    static func cookies(_ text: String) -> [UInt16: UInt64] {
        var result: [UInt16: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 4, let port = words[3].split(separator: ":").last.flatMap({ UInt16($0) }),
                let cookie = words.first(where: { $0.hasPrefix("sk:") }).flatMap({ UInt64($0.dropFirst(3), radix: 16) })
            else { continue }
            result[port] = cookie
        }
        return result
    }

    /// The health of each socket in `ss -tinH` output, by local port: `rtt:SRTT/RTTVAR` and
    /// `minrtt:MIN` in milliseconds, `retrans:NOW/TOTAL` (absent: none).
    static func health(_ text: String) -> [UInt16: TCPHealth] {
        var result: [UInt16: TCPHealth] = [:]
        var port: UInt16?
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if let state = words.first, state.allSatisfy({ $0.isUppercase || $0 == "-" }), words.count >= 4 {
                port = words[3].split(separator: ":").last.flatMap { UInt16($0) }
                continue
            }
            guard let local = port else { continue }
            var health = TCPHealth()
            for word in words {
                let parts = word.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let values = parts[1].split(separator: "/")
                func microseconds(_ text: Substring) -> UInt32 { UInt32((Double(text) ?? 0) * 1000 + 0.5) }
                switch parts[0] {
                case "rtt" where values.count == 2:
                    health.smoothedRTTMicroseconds = microseconds(values[0])
                    health.rttVarianceMicroseconds = microseconds(values[1])
                case "minrtt": health.minimumRTTMicroseconds = microseconds(values[0])
                case "retrans" where values.count == 2: health.retransmits = UInt32(values[1]) ?? 0
                default: break
                }
            }
            result[local] = health
            port = nil
        }
        return result
    }
}
