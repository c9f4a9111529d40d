import BCCRuntime
import Foundation
import UDPEvent
import XCTest

/// Real UDP traffic between separate processes, counted in the kernel by `UDPMonitor` and checked
/// against what each process sent and received.
final class UDPMonitorIntegrationTests: XCTestCase {
    let otherUID: UInt32 = 65_534
    let command = "netevents-traff"

    /// Totals of a set of events.
    struct Totals: Equatable {
        var txPackets: UInt64 = 0, txBytes: UInt64 = 0, rxPackets: UInt64 = 0, rxBytes: UInt64 = 0
        init(_ events: [UDPTrafficEvent]) {
            for event in events {
                txPackets += event.sentPackets
                txBytes += event.sentBytes
                rxPackets += event.receivedPackets
                rxBytes += event.receivedBytes
            }
        }
        init(tx packets: Int, bytes: Int) { txPackets = UInt64(packets); txBytes = UInt64(bytes) }
        init(rx packets: Int, bytes: Int) { rxPackets = UInt64(packets); rxBytes = UInt64(bytes) }
    }

    func start(_ configuration: UDPMonitor.Configuration) throws -> (UDPMonitor, Collector<UDPTrafficEvent>) {
        try requireBPF()
        let monitor = try UDPMonitor(configuration: configuration)
        let collector = Collector<UDPTrafficEvent>()
        try monitor.start { collector.add($0) }
        return (monitor, collector)
    }

    /// Starts a receiver of `packets` datagrams, then a sender of as many to the port it bound,
    /// cycling through `sizes` (`udp-sender --sizes`); `receiverFlags` and `senderFlags` follow
    /// each one's arguments. Returns both and the receiver's port.
    func startPair(
        packets: Int, sizes: String, receiverFlags: [String] = [], senderFlags: [String] = []
    ) throws -> (receiver: TrafficProcess, port: String, sender: TrafficProcess) {
        let receiver = try TrafficProcess(["udp-receiver", "--packets", "\(packets)"] + receiverFlags)
        let port = try XCTUnwrap(receiver.nextLine()["port"])
        let sender = try TrafficProcess(["udp-sender", "--port", port, "--packets", "\(packets)", "--sizes", sizes] + senderFlags)
        return (receiver, port, sender)
    }

    /// A receiver and a sender process exchange `packets` datagrams cycling through `sizes`.
    func exchange(
        ipv6: Bool, connected: Bool, senderUID: UInt32?, receiverUID: UInt32?, packets: Int, sizes: [Int],
        configure: (inout UDPMonitor.Configuration) -> Void = { _ in }
    ) throws {
        var configuration = UDPMonitor.Configuration(options: .init(interval: 0.5))
        configure(&configuration)
        let (monitor, collector) = try start(configuration)
        defer { monitor.stop() }
        let family = ipv6 ? ["-6"] : []
        var receiverArguments = ["udp-receiver"] + family + ["--packets", "\(packets)"]
        if let receiverUID { receiverArguments += ["--uid", "\(receiverUID)"] }
        let receiver = try TrafficProcess(receiverArguments)
        let bound = try receiver.nextLine()
        let receiverPort = try XCTUnwrap(bound["port"].flatMap { UInt16($0) })
        var senderArguments = ["udp-sender"] + family + ["--port", "\(receiverPort)", "--packets", "\(packets)", "--sizes", sizes.map(String.init).joined(separator: ",")]
        if connected { senderArguments.append("--connect") }
        if let senderUID { senderArguments += ["--uid", "\(senderUID)"] }
        let sender = try TrafficProcess(senderArguments)
        let sent = try sender.nextLine()
        let senderPort = try XCTUnwrap(sent["port"].flatMap { UInt16($0) })
        let bytes = (0..<packets).map { sizes[$0 % sizes.count] }.reduce(0, +)
        XCTAssertEqual(sent["bytes"], "\(bytes)")
        XCTAssertEqual(try receiver.nextLine()["bytes"], "\(bytes)")
        _ = try sender.nextLine()
        _ = try receiver.nextLine()
        sender.waitForSuccess()
        receiver.waitForSuccess()

        // Both sockets closed: what is left of each is reported at once by the close hook, or
        // (without one) with the next interval.
        let hasCloseHook = monitor.report?.closeHook != UDPKind.CloseHook.none
        let events = collector.wait { events in
            Totals(events.filter { $0.pid == sender.pid }) == Totals(tx: packets, bytes: bytes)
                && Totals(events.filter { $0.pid == receiver.pid }) == Totals(rx: packets, bytes: bytes)
        }
        let senderEvents = events.filter { $0.pid == sender.pid }
        let receiverEvents = events.filter { $0.pid == receiver.pid }
        XCTAssertEqual(Totals(senderEvents), Totals(tx: packets, bytes: bytes), "sender: \(senderEvents)")
        XCTAssertEqual(Totals(receiverEvents), Totals(rx: packets, bytes: bytes), "receiver: \(receiverEvents)")
        let loopback = IPAddress(ipv6 ? "::1" : "127.0.0.1")!
        let unspecified = IPAddress(ipv6 ? "::" : "0.0.0.0")!
        // Each datagram's peer: an unconnected socket's from the cgroup sendmsg/recvmsg hooks.
        let peers = try XCTUnwrap(monitor.report?.hooks.peers)
        for event in senderEvents {
            XCTAssertEqual(event.uid, senderUID ?? 0)
            XCTAssertEqual(event.command, command)
            XCTAssertEqual(event.executable, "netevents-traffic", "read in the kernel")
            XCTAssertEqual(event.cgroup, ownCgroup(), "the cgroup of cgroup_id, named")
            XCTAssertEqual(event.family, ipv6 ? .ipv6 : .ipv4)
            XCTAssertEqual(event.sourcePort, senderPort)
            XCTAssertEqual(event.hasPeer, connected || peers)
            XCTAssertEqual(event.destinationPort, connected || peers ? receiverPort : 0)
            XCTAssertEqual(event.destinationAddress, connected || peers ? loopback : unspecified)
            // A connected socket is bound to the route's source address; an unconnected one to any.
            XCTAssertEqual(event.sourceAddress, connected ? loopback : unspecified)
        }
        for event in receiverEvents {
            XCTAssertEqual(event.uid, receiverUID ?? 0)
            XCTAssertEqual(event.command, command)
            XCTAssertEqual(event.executable, "netevents-traffic", "read in the kernel")
            XCTAssertEqual(event.sourceAddress, loopback)
            XCTAssertEqual(event.sourcePort, receiverPort)
            // recvfrom with an address: the sender, seen by the recvmsg hook.
            XCTAssertEqual(event.destinationPort, peers ? senderPort : 0)
            XCTAssertEqual(event.destinationAddress, peers ? loopback : unspecified)
        }
        XCTAssertEqual(Set(senderEvents.map(\.socketID)).count, 1, "one socket")
        XCTAssertEqual(Set(receiverEvents.map(\.socketID)).count, 1, "one socket")
        if KernelFeatures.shared.socketCookies.isYes {
            XCTAssertNotNil(senderEvents.first?.socketID, "the kernel gives sockets cookies here")
            XCTAssertNotEqual(senderEvents.first?.socketID, receiverEvents.first?.socketID)
        }
        // A close reports what the intervals did not (nothing: no event), once.
        for side in [senderEvents, receiverEvents] {
            let closes = side.filter { $0.reason == .close }
            XCTAssertLessThanOrEqual(closes.count, hasCloseHook ? 1 : 0, "\(closes)")
            XCTAssertTrue(closes.allSatisfy { $0.sentPackets + $0.receivedPackets > 0 }, "no close of zeros: \(closes)")
        }
        let statistics = monitor.statistics
        XCTAssertEqual(statistics.lostSamples, 0)
        XCTAssertEqual(statistics.unattributedPackets, 0)
    }

    func testIPv4UnconnectedSendtoFromAnotherUser() throws {
        try exchange(ipv6: false, connected: false, senderUID: otherUID, receiverUID: nil, packets: 50, sizes: [1, 100, 1_400, 9_000])
    }

    func testIPv6ConnectedSocketToAnotherUser() throws {
        try exchange(ipv6: true, connected: true, senderUID: nil, receiverUID: otherUID, packets: 40, sizes: [64, 512])
    }

    func testIPv4ConnectedAndIPv6Unconnected() throws {
        try exchange(ipv6: false, connected: true, senderUID: nil, receiverUID: nil, packets: 10, sizes: [333])
        try exchange(ipv6: true, connected: false, senderUID: otherUID, receiverUID: nil, packets: 10, sizes: [7, 65_000])
    }

    /// An open socket is reported every interval; once they have reported everything, its close
    /// adds no event (nothing new), and the interval reports alone add up exactly.
    func testIntervalReportsThenANothingNewCloseAddUpExactly() throws {
        let (monitor, collector) = try start(.init(options: .init(interval: 0.3)))
        let (receiver, _, sender) = try startPair(packets: 20, sizes: "250", senderFlags: ["--hold"])
        _ = try sender.nextLine()
        // Still open: the periodic scan reports the 20 datagrams.
        let interval = collector.wait { Totals($0.filter { $0.pid == sender.pid }) == Totals(tx: 20, bytes: 5_000) }
        XCTAssertEqual(Totals(interval.filter { $0.pid == sender.pid }), Totals(tx: 20, bytes: 5_000))
        sender.proceed()
        _ = try sender.nextLine()
        receiver.waitForSuccess()
        sender.waitForSuccess()
        // The close sample went out as the socket was released, before the process was gone;
        // stop drains it.
        monitor.stop()
        let senderEvents = collector.events.filter { $0.pid == sender.pid }
        XCTAssertEqual(Totals(senderEvents), Totals(tx: 20, bytes: 5_000), "the close adds nothing already reported")
        XCTAssertTrue(senderEvents.allSatisfy { $0.reason == .interval }, "no close event of zeros: \(senderEvents)")
        XCTAssertGreaterThan(monitor.statistics.kind.closes, 0, "the close hook saw the releases")
    }

    /// A close carries what its socket moved since its last report: here everything (no
    /// interval in between).
    func testACloseCarriesWhatIsNew() throws {
        let (monitor, collector) = try start(.init(options: .init(interval: 3_600)))
        defer { monitor.stop() }
        guard monitor.report?.closeHook != UDPKind.CloseHook.none else { throw XCTSkip("no close hook on this kernel: \(monitor.report!)") }
        let (receiver, _, sender) = try startPair(packets: 20, sizes: "250")
        _ = try sender.nextLine()
        sender.waitForSuccess()
        receiver.waitForSuccess()
        let events = collector.wait {
            $0.contains { $0.pid == sender.pid && $0.reason == .close } && $0.contains { $0.pid == receiver.pid && $0.reason == .close }
        }
        let close = try XCTUnwrap(events.first { $0.pid == sender.pid && $0.reason == .close })
        XCTAssertEqual(Totals([close]), Totals(tx: 20, bytes: 5_000))
        XCTAssertEqual(Totals(events.filter { $0.pid == receiver.pid && $0.reason == .close }), Totals(rx: 20, bytes: 5_000))
    }

    /// A server that connects its socket to its first client (as iperf3's UDP server does) and
    /// then reads without asking the address: one flow, its peer from the first datagram on.
    func testASocketThatConnectsAfterItsFirstDatagramKeepsOneFlowWithItsPeer() throws {
        let (monitor, collector) = try start(.init(options: .init(interval: 3_600)))
        let (receiver, _, sender) = try startPair(packets: 10, sizes: "100", receiverFlags: ["--connect-after-first", "--hold"])
        let senderPort = try XCTUnwrap(sender.nextLine()["port"].flatMap { UInt16($0) })
        _ = try receiver.nextLine()
        sender.waitForSuccess()
        monitor.stop()  // the receiver's socket is still open: its flow is reported at stop
        receiver.proceed()
        receiver.waitForSuccess()
        let events = collector.events.filter { $0.pid == receiver.pid }
        XCTAssertEqual(Totals(events), Totals(rx: 10, bytes: 1_000))
        // Without the cgroup hooks the first datagram has no peer: a second flow.
        if try XCTUnwrap(monitor.report?.hooks.peers) {
            XCTAssertEqual(events.count, 1, "one flow: \(events)")
            XCTAssertEqual(events.first?.destinationPort, senderPort)
            XCTAssertEqual(events.first?.destinationAddress, .v4(127, 0, 0, 1))
        }
    }

    /// The hook `NETEVENTS_UDP_HOOK` forces (the kernel matrix), nil for the default; throws
    /// XCTSkip where the kernel lacks it.
    static func forcedHook() throws -> UDPKind.Hook? {
        let hook = ProcessInfo.processInfo.environment["NETEVENTS_UDP_HOOK"].flatMap(UDPKind.Hook.init(rawValue:))
        if let hook, !Self.expectedToWork(hook, .none) {
            throw XCTSkip("not applicable: \(hook): \(Self.unavailability(hook, .none))")
        }
        return hook
    }

    /// An IPv6 socket sending to a v4-mapped address (`::ffff:127.0.0.1`): each datagram counted
    /// once (the kernel's IPv6 send hands it to the IPv4 one: fexit saw both), under one peer,
    /// `::ffff:127.0.0.1`, whichever hook counts.
    func testAnIPv6SocketSendingToAV4MappedPeerIsCountedOnceWithThatPeer() throws {
        let hook = try Self.forcedHook()
        let (monitor, collector) = try start(.init(options: .init(interval: 3_600, hook: hook)))
        let (receiver, port, sender) = try startPair(packets: 8, sizes: "100,200", senderFlags: ["-6", "--mapped"])
        _ = try sender.nextLine()
        sender.waitForSuccess()
        receiver.waitForSuccess()
        let events = collector.wait { Totals($0.filter { $0.pid == sender.pid }).txPackets >= 8 && Totals($0.filter { $0.pid == receiver.pid }).rxPackets >= 8 }
        monitor.stop()
        let sent = events.filter { $0.pid == sender.pid }
        XCTAssertEqual(Totals(sent), Totals(tx: 8, bytes: 1_200), "once each: \(sent)")
        XCTAssertEqual(Totals(events.filter { $0.pid == receiver.pid }), Totals(rx: 8, bytes: 1_200))
        if try XCTUnwrap(monitor.report?.hooks.peers) {
            XCTAssertEqual(Set(sent.map(\.destinationAddress)), [IPAddress("::ffff:127.0.0.1")!], "\(sent)")
            XCTAssertEqual(Set(sent.map(\.destinationPort)), [UInt16(port)!])
            XCTAssertEqual(sent.count, 1, "one flow: \(sent)")
        }
    }

    /// A server socket with more clients than the kernel remembers per socket (4): its close still
    /// reports every client's flow exactly, the rest found by a scan of the flow map.
    func testAServerWithMoreClientsThanTrackedPerSocketReportsEachAtClose() throws {
        let hook = try Self.forcedHook()
        let (monitor, collector) = try start(.init(options: .init(interval: 3_600, hook: hook)))
        defer { monitor.stop() }
        guard monitor.report?.closeHook != UDPKind.CloseHook.none, try XCTUnwrap(monitor.report?.hooks.peers) else {
            throw XCTSkip("needs a close hook and peers: \(monitor.report!)")
        }
        let receiver = try TrafficProcess(["udp-receiver", "--packets", "6"])
        let port = try XCTUnwrap(receiver.nextLine()["port"])
        var senders: [UInt16: Int] = [:]  // port: bytes
        for client in 1...6 {
            let sender = try TrafficProcess(["udp-sender", "--port", port, "--packets", "1", "--sizes", "\(client * 10)"])
            senders[try XCTUnwrap(sender.nextLine()["port"].flatMap { UInt16($0) })] = client * 10
            sender.waitForSuccess()
        }
        receiver.waitForSuccess()
        let events = collector.wait { $0.filter { $0.pid == receiver.pid && $0.reason == .close }.count >= 6 }
            .filter { $0.pid == receiver.pid }
        XCTAssertEqual(events.count, 6, "\(events)")
        XCTAssertTrue(events.allSatisfy { $0.reason == .close })
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: events.map { ($0.destinationPort, Int($0.receivedBytes)) }), senders)
        XCTAssertTrue(events.allSatisfy { $0.receivedPackets == 1 && $0.destinationAddress == .v4(127, 0, 0, 1) })
        XCTAssertGreaterThanOrEqual(monitor.statistics.kind.sharedSocketOverflows, 1)
    }

    /// Without a close hook, the socket is still reported within one interval.
    func testWithoutCloseHookIntervalReportsCarryEverything() throws {
        var configuration = UDPMonitor.Configuration(options: .init(interval: 0.3))
        configuration.closeHook = UDPKind.CloseHook.none
        let (monitor, collector) = try start(configuration)
        defer { monitor.stop() }
        let (receiver, _, sender) = try startPair(packets: 15, sizes: "10,20,30")
        _ = try sender.nextLine()
        sender.waitForSuccess()
        receiver.waitForSuccess()
        let events = collector.wait { events in Totals(events.filter { $0.pid == sender.pid }) == Totals(tx: 15, bytes: 300) }
        XCTAssertEqual(Totals(events.filter { $0.pid == sender.pid }), Totals(tx: 15, bytes: 300))
        XCTAssertTrue(events.filter { $0.pid == sender.pid }.allSatisfy { $0.reason == .interval })
    }

    /// Stop reports what was never reported, for sockets still open; each report carries its
    /// socket's kernel cookie, the one `ss -e` shows.
    func testStopFlushesOpenSockets() throws {
        let (monitor, collector) = try start(.init(options: .init(interval: 3_600)))
        let (receiver, port, sender) = try startPair(packets: 30, sizes: "99", receiverFlags: ["--hold"], senderFlags: ["--hold"])
        let senderPort = try XCTUnwrap(sender.nextLine()["port"].flatMap { UInt16($0) })
        _ = try receiver.nextLine()
        // The kernel's cookies of both sockets, as sock_diag reports them.
        let cookies = SocketStatistics.cookies(try SocketStatistics.show(port: senderPort, udp: true))
            .merging(SocketStatistics.cookies(try SocketStatistics.show(port: try XCTUnwrap(UInt16(port)), udp: true))) { $1 }
        monitor.stop()
        let events = collector.events
        for event in events where event.pid == sender.pid || event.pid == receiver.pid {
            XCTAssertEqual(event.socketID, try XCTUnwrap(cookies[event.sourcePort]), "socket_id is ss -e's sk: \(cookies)")
        }
        XCTAssertEqual(Totals(events.filter { $0.pid == sender.pid }), Totals(tx: 30, bytes: 2_970))
        XCTAssertEqual(Totals(events.filter { $0.pid == receiver.pid }), Totals(rx: 30, bytes: 2_970))
        XCTAssertTrue(events.filter { $0.pid == sender.pid || $0.pid == receiver.pid }.allSatisfy { $0.reason == .stop })
        sender.proceed()
        receiver.proceed()
        sender.waitForSuccess()
        receiver.waitForSuccess()
    }

    /// A raw IP socket of protocol UDP (`SOCK_RAW`, `IPPROTO_UDP`) puts UDP on the wire, but it is
    /// not a UDP socket: its sends are no flow. The UDP socket beside it, in the same process, is
    /// counted exactly. (Before the counting hook checked the socket's type, both were counted.)
    func testARawSocketOfProtocolUDPIsNotCounted() throws {
        let (monitor, collector) = try start(.init(options: .init(interval: 3_600)))
        defer { monitor.stop() }
        let raw = socket(AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_UDP))
        XCTAssertGreaterThanOrEqual(raw, 0, "socket(AF_INET, SOCK_RAW, IPPROTO_UDP): errno \(errno)")
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(udp, 0, "socket(AF_INET, SOCK_DGRAM): errno \(errno)")
        defer {
            close(raw)
            close(udp)
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(9).bigEndian  // discard: nothing listens here, the kernel drops them
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        // The raw socket's own UDP header (port 12345 to 9, length 33, no checksum), then 25 bytes.
        let rawDatagram: [UInt8] = [0x30, 0x39, 0x00, 0x09, 0x00, 33, 0x00, 0x00] + [UInt8](repeating: 0x61, count: 25)
        let payload = [UInt8](repeating: 0x62, count: 100)
        withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                let length = socklen_t(MemoryLayout<sockaddr_in>.size)
                for _ in 0..<7 { XCTAssertEqual(sendto(raw, rawDatagram, rawDatagram.count, 0, target, length), 33, "errno \(errno)") }
                for _ in 0..<3 { XCTAssertEqual(sendto(udp, payload, payload.count, 0, target, length), 100, "errno \(errno)") }
            }
        }
        monitor.stop()  // reports both sockets, still open, if they were counted
        let own = collector.events.filter { $0.pid == getpid() }
        XCTAssertEqual(Totals(own), Totals(tx: 3, bytes: 300), "\(own)")
        XCTAssertEqual(own.count, 1, "one flow, the UDP socket's: \(own)")
    }

    func testOneMillionDatagramsAreAllCountedOnTheSendingSide() throws {
        let (monitor, collector) = try start(.init(options: .init(interval: 1)))
        let flood = try TrafficProcess(["udp-flood", "--count", "1000000", "--size", "64"])
        _ = try flood.nextLine()
        let sent = try flood.nextLine(timeout: 120)
        flood.waitForSuccess()
        collector.wait { Totals($0.filter { $0.pid == flood.pid }).txPackets == 1_000_000 }
        monitor.stop()
        let events = collector.events.filter { $0.pid == flood.pid }
        let totals = Totals(events)
        print("flood: \(sent["rate"] ?? "?") datagrams/s, \(events.count) events, \(monitor.statistics)")
        XCTAssertEqual(totals.txPackets, 1_000_000)
        XCTAssertEqual(totals.txBytes, 64_000_000)
        XCTAssertEqual(monitor.statistics.unattributedPackets, 0)
        XCTAssertEqual(monitor.statistics.lostSamples, 0)
    }

    func testInKernelPIDAndUIDFilters() throws {
        let receiver = try TrafficProcess(["udp-receiver", "--packets", "10", "--hold"])
        let port = try XCTUnwrap(receiver.nextLine()["port"])
        let (byUID, uidEvents) = try start(.init(filter: .init(uid: otherUID), options: .init(interval: 0.2)))
        let (byPID, pidEvents) = try start(.init(filter: .init(pids: [receiver.pid]), options: .init(interval: 0.2)))
        let sender = try TrafficProcess(["udp-sender", "--port", port, "--packets", "10", "--sizes", "40", "--uid", "\(otherUID)"])
        _ = try sender.nextLine()
        _ = try receiver.nextLine()
        sender.waitForSuccess()
        receiver.proceed()
        receiver.waitForSuccess()
        uidEvents.wait { Totals($0) == Totals(tx: 10, bytes: 400) }
        pidEvents.wait { Totals($0) == Totals(rx: 10, bytes: 400) }
        // The traffic each filter excluded (the receiver's for the uid filter, the sender's for the
        // pid filter) was counted and dropped in the kernel, per datagram.
        let uidFiltered = byUID.statistics.filteredEvents
        let pidFiltered = byPID.statistics.filteredEvents
        byUID.stop()
        byPID.stop()
        XCTAssertGreaterThan(uidFiltered, 0, "the receiver's datagrams were filtered out by uid: \(byUID.statistics)")
        XCTAssertGreaterThan(pidFiltered, 0, "the sender's datagrams were filtered out by pid: \(byPID.statistics)")
        XCTAssertGreaterThanOrEqual(uidFiltered, 10, "at least the 10 datagrams the root-owned receiver took")
        XCTAssertGreaterThanOrEqual(pidFiltered, 10, "at least the 10 datagrams the other process sent")
        XCTAssertEqual(Set(uidEvents.events.map(\.pid)), [sender.pid], "only the other user's process")
        XCTAssertEqual(Totals(uidEvents.events), Totals(tx: 10, bytes: 400))
        XCTAssertEqual(Set(pidEvents.events.map(\.pid)), [receiver.pid], "only that process")
        XCTAssertEqual(Totals(pidEvents.events), Totals(rx: 10, bytes: 400))
    }

    /// Every counting and close hook compiles; it attaches where the kernel has it and otherwise
    /// fails with a typed error.
    func testEveryHookAttachesOrFailsTyped() throws {
        try requireBPF()
        for hook in UDPKind.Hook.allCases {
            for closeHook in UDPKind.CloseHook.allCases {
                let monitor = try UDPMonitor(configuration: .init(options: .init(hook: hook, closeHook: closeHook)))
                do throws(BPFError) {
                    try monitor.start { _ in }
                    monitor.stop()
                    XCTAssertEqual(monitor.report?.hook, hook)
                    XCTAssertEqual(monitor.report?.closeHook, closeHook)
                } catch {
                    switch error {
                    case .notSupported, .attachFailed, .loadFailed: print("\(hook) + \(closeHook): \(error)")
                    default: XCTFail("\(hook) + \(closeHook): unexpected \(error)")
                    }
                    if Self.expectedToWork(hook, closeHook) { XCTFail("\(hook) + \(closeHook) should work here: \(error)") }
                }
            }
        }
    }

    /// The exchanges through every counting and close hook this kernel has.
    /// `NETEVENTS_UDP_HOOK` and `NETEVENTS_UDP_CLOSE_HOOK` force one (the kernel matrix does), and
    /// skip as not applicable where the kernel lacks it.
    func testExchangeThroughEachAvailableHook() throws {
        try requireBPF()
        let environment = ProcessInfo.processInfo.environment
        let forcedHook = environment["NETEVENTS_UDP_HOOK"].flatMap(UDPKind.Hook.init(rawValue:))
        let forcedClose = environment["NETEVENTS_UDP_CLOSE_HOOK"].flatMap(UDPKind.CloseHook.init(rawValue:))
        var ran: [String] = []
        for hook in forcedHook.map({ [$0] }) ?? UDPKind.Hook.allCases {
            for closeHook in forcedClose.map({ [$0] }) ?? UDPKind.CloseHook.allCases {
                guard Self.expectedToWork(hook, closeHook) else {
                    let why = Self.unavailability(hook, closeHook)
                    print("not applicable here: \(hook) + \(closeHook): \(why)")
                    if forcedHook != nil || forcedClose != nil { throw XCTSkip("not applicable: \(hook) + \(closeHook): \(why)") }
                    continue
                }
                for (ipv6, connected) in [(false, false), (true, true)] {
                    try exchange(ipv6: ipv6, connected: connected, senderUID: otherUID, receiverUID: nil, packets: 12, sizes: [100, 1_000]) {
                        $0.hook = hook
                        $0.closeHook = closeHook
                    }
                }
                ran.append("\(hook.rawValue)+\(closeHook.rawValue)")
            }
        }
        print("UDP hooks exercised: \(ran)")
        XCTAssertFalse(ran.isEmpty, "no UDP hook is available on this kernel")
    }

    /// Offsets from the kernel headers give the same counts and addresses as offsets from BTF,
    /// where the headers are the running kernel's own.
    func testHeaderOffsetsWhereHeadersMatchTheKernel() throws {
        try checkHeaderOffsets(of: UDPKind.self) {
            try exchange(ipv6: false, connected: true, senderUID: otherUID, receiverUID: nil, packets: 9, sizes: [321]) {
                $0.offsetSource = .headers
            }
            try exchange(ipv6: true, connected: false, senderUID: nil, receiverUID: otherUID, packets: 9, sizes: [123]) {
                $0.offsetSource = .headers
            }
        }
    }

    /// What the feature probes said of the parts of this combination that are missing.
    static func unavailability(_ hook: UDPKind.Hook, _ closeHook: UDPKind.CloseHook) -> String {
        let features = KernelFeatures.shared
        var reasons: [String] = []
        switch hook {
        case .tracepoint: reasons.append("sock:sock_send_length: \(features.tracepoint("sock", "sock_send_length"))")
        case .kprobe: reasons.append("kprobes: \(features.kprobes)")
        case .fentry: reasons.append("fentry: \(features.fentry("udp_sendmsg"))")
        }
        switch closeHook {
        case .cgroup: reasons.append("cgroup sock_release: kernel \(KernelVersion.running), cgroup v2 at \(SystemChecks.cgroup2Path ?? "none")")
        case .kprobe: reasons.append("kprobes: \(features.kprobes)")
        case .none: break
        }
        return reasons.joined(separator: "; ")
    }

    /// Whether the feature probes say this combination is available on this kernel.
    static func expectedToWork(_ hook: UDPKind.Hook, _ closeHook: UDPKind.CloseHook) -> Bool {
        let features = KernelFeatures.shared
        let counting: Bool =
            switch hook {
            case .tracepoint: features.tracepoint("sock", "sock_send_length").isYes
            case .kprobe: features.kprobes.isYes
            case .fentry: features.fentry("udp_sendmsg").isYes
            }
        let closing: Bool =
            switch closeHook {
            case .cgroup: KernelVersion.running.isAtLeast(5, 9) && SystemChecks.cgroup2Path != nil
            case .kprobe: features.kprobes.isYes
            case .none: true
            }
        return counting && closing
    }
}
