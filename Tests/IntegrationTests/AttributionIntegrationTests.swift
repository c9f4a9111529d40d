import Foundation
import Glibc
import TCPEvent
import UDPEvent
import XCTest

/// Every event says where it came from: the cgroup (and the container, pod or service its path
/// names), the network namespace (and its `ip netns` name) and the executable behind the process's
/// name; and the filters on those (and on pid and port lists) keep exactly what they name, in the
/// kernel. Real processes in cgroups the tests make, a real podman container, a real named
/// namespace, each checked field by field against what the test made.
final class AttributionIntegrationTests: XCTestCase {
    /// What `comm` shows for the traffic generator (15 bytes of its name), and its executable.
    static let command = "netevents-traff", executable = "netevents-traffic"

    /// Processes in a Docker scope and in a Kubernetes pod's containerd scope: their TCP and UDP
    /// events (and the peers' in the test's own cgroup) carry the exact cgroup, container id,
    /// runtime and pod uid, and `tcp-events --json` prints the same under its keys.
    func testContainerAndPodCgroupsNameEveryEventAndJSONLine() throws {
        try requireBPF()
        let containers = try MadeUpContainers()
        defer { XCTAssertNoThrow(try containers.cgroups.remove()) }
        let tcpPorts = [containers.dockerTCP.port, containers.criTCP.port]
        let (tcp, tcpEvents) = try collecting(TCPMonitor.Configuration(filter: .init(ports: Set(tcpPorts))))
        let udpPorts: Set = [containers.dockerUDP.port, containers.criUDP.port]
        let (udp, udpEvents) = try collecting(UDPMonitor.Configuration(filter: .init(ports: udpPorts)))
        let tool = try RunningTool("tcp-events", ["--json", "--port", tcpPorts.map(String.init).joined(separator: ",")])
        try containers.run()

        let (docker, cri) = try containers.placements()
        let own = try Placement.own()
        let tcpAll = finish(tcp, tcpEvents, events: 8).events
        for (exchange, placement) in [(containers.dockerTCP, docker), (containers.criTCP, cri)] {
            for event in exchange.check(tcpAll, server: true, client: true) {
                (event.sourcePort == exchange.port ? placement : own).check(event)
                XCTAssertEqual(event.executable, Self.executable, "\(event)")
            }
        }
        XCTAssertEqual(tcpAll.count, 8, "\(tcpAll)")
        let udpAll = finish(udp, udpEvents).events
        for (exchange, placement) in [(containers.dockerUDP, docker), (containers.criUDP, cri)] {
            for event in exchange.check(udpAll, receiver: true, sender: true) {
                (event.pid == exchange.receiver.pid ? placement : own).check(event)
                XCTAssertEqual(event.executable, Self.executable, "\(event)")
            }
        }

        let lines = try tool.finish(expecting: 8)
        XCTAssertEqual(lines.count, 8, "\(lines.map(\.text))")
        for (text, object) in lines {
            let local = (object["sport"] as? NSNumber)?.uint16Value
            let placement = local == containers.dockerTCP.port ? docker : local == containers.criTCP.port ? cri : own
            placement.check(json: object, text)
            XCTAssertEqual(object["exe"] as? String, Self.executable, text)
            XCTAssertEqual(object["comm"] as? String, Self.command, text)
        }
        for port in tcpPorts {
            func kinds(_ key: String) -> [String] {
                lines.filter { ($0.object[key] as? NSNumber)?.uint16Value == port }.compactMap { $0.object["event"] as? String }.sorted()
            }
            XCTAssertEqual(kinds("sport"), ["accept", "close"], "the server's lines")
            XCTAssertEqual(kinds("dport"), ["close", "connect"], "the client's lines")
        }
    }

    /// Filters by cgroup and by container keep exactly the processes inside: a cgroup filter on
    /// `<tree>/app` gets the process in the Docker scope below it, a scope made after the monitors
    /// started; a container filter (an id prefix) gets the containerd scope's process. Nothing
    /// of the other cgroup or of the peers outside, which the kernel counts as filtered.
    func testCgroupAndContainerFiltersKeepExactlyTheProcessesInside() throws {
        try requireBPF()
        let containers = try MadeUpContainers()
        defer { XCTAssertNoThrow(try containers.cgroups.remove()) }
        let prefix = String(containers.criID.prefix(12))
        // The cgroup filter as a path below the hierarchy's root for TCP, as a full path for UDP.
        let fullApp = containers.cgroups.resolver.absolutePath(containers.app)
        let (tcpByCgroup, tcpByCgroupEvents) = try collecting(TCPMonitor.Configuration(filter: .init(cgroups: [containers.app])))
        let (tcpByContainer, tcpByContainerEvents) = try collecting(TCPMonitor.Configuration(filter: .init(containers: [prefix])))
        let (udpByCgroup, udpByCgroupEvents) = try collecting(UDPMonitor.Configuration(filter: .init(cgroups: [fullApp])))
        let (udpByContainer, udpByContainerEvents) = try collecting(UDPMonitor.Configuration(filter: .init(containers: [prefix])))
        XCTAssertFalse(FileManager.default.fileExists(atPath: containers.cgroups.resolver.absolutePath(containers.docker)))
        try containers.run()  // makes the Docker scope now, after the monitors started
        let (docker, cri) = try containers.placements()

        // Filtered: the other scope's two ends and both clients' (a connect and a close each).
        let byCgroup = finish(tcpByCgroup, tcpByCgroupEvents, events: 2, filtered: 6)
        let byContainer = finish(tcpByContainer, tcpByContainerEvents, events: 2, filtered: 6)
        for (result, kept, left, placement) in [
            (byCgroup, containers.dockerTCP, containers.criTCP, docker), (byContainer, containers.criTCP, containers.dockerTCP, cri),
        ] {
            kept.check(result.events, server: true, client: false).forEach { placement.check($0) }
            left.check(result.events, server: false, client: false)
            XCTAssertEqual(Set(result.events.map(\.pid)), [kept.server.pid], "only the process inside: \(result.events)")
            XCTAssertGreaterThanOrEqual(result.filtered, 6, "the other ends were filtered in the kernel")
        }
        // Filtered: the datagrams the other scope's receiver took and both senders sent.
        let (dockerPackets, criPackets) = (UInt64(containers.dockerUDP.packets), UInt64(containers.criUDP.packets))
        let (byCgroupFiltered, byContainerFiltered) = (dockerPackets + 2 * criPackets, 2 * dockerPackets + criPackets)
        for (result, kept, left, placement, filtered) in [
            (finish(udpByCgroup, udpByCgroupEvents, filtered: byCgroupFiltered), containers.dockerUDP, containers.criUDP, docker, byCgroupFiltered),
            (finish(udpByContainer, udpByContainerEvents, filtered: byContainerFiltered), containers.criUDP, containers.dockerUDP, cri, byContainerFiltered),
        ] {
            kept.check(result.events, receiver: true, sender: false).forEach { placement.check($0) }
            left.check(result.events, receiver: false, sender: false)
            XCTAssertEqual(Set(result.events.map(\.pid)), [kept.receiver.pid], "only the process inside: \(result.events)")
            XCTAssertGreaterThanOrEqual(result.filtered, filtered, "the other datagrams were filtered in the kernel, each")
        }
    }

    /// A filtered cgroup made anew at its path (as a restarted service or container is, with a new
    /// id) is followed: traffic of a process in the new cgroup passes again, within about a
    /// second of the cgroup's making, and carries the new cgroup's id.
    func testACgroupMadeAnewAtTheFilteredPathIsFollowed() throws {
        try requireBPF()
        let cgroups = try TestCgroup()
        defer { XCTAssertNoThrow(try cgroups.remove()) }
        let service = try cgroups.make("/web.service")
        let firstID = try cgroups.id(of: service)
        let (monitor, events) = try collecting(TCPMonitor.Configuration(filter: .init(cgroups: [service])))
        // The service restarts: its cgroup goes, and one is made at the same path.
        XCTAssertEqual(rmdir(cgroups.resolver.absolutePath(service)), 0, String(cString: strerror(errno)))
        try cgroups.make("/web.service")
        let secondID = try cgroups.id(of: service)
        XCTAssertNotEqual(firstID, secondID, "a cgroup made anew has a new id")
        // A server in the new cgroup answers connections until one is seen (bounded: 10 s).
        let deadline = Date().addingTimeInterval(10)
        var passed: TCPExchange?
        var tries = 0
        while passed == nil, Date() < deadline {
            let exchange = try TCPExchange(send: 111, reply: 22)
            try cgroups.move(exchange.server.pid, to: service)
            try exchange.connect()
            tries += 1
            let ends = events.wait(timeout: 0.3) { events in events.contains { $0.sourcePort == exchange.port && $0.kind == .close } }
            if ends.contains(where: { $0.sourcePort == exchange.port && $0.kind == .close }) { passed = exchange }
        }
        let exchange = try XCTUnwrap(passed, "no connection of the new cgroup passed the filter in 10 s (\(tries) tried)")
        let kept = exchange.check(finish(monitor, events).events, server: true, client: false)
        for event in kept {
            XCTAssertEqual(event.cgroupID, secondID)
            XCTAssertEqual(event.cgroup?.path, service)
        }
        print("a cgroup made anew was followed after \(tries) connection(s) of about 0.3 s each")
    }

    /// Lists of pids and of ports keep exactly the traffic they name: of three connections and
    /// three datagram exchanges, the first and the third (the second, excluded, runs between them).
    func testPIDAndPortListsKeepExactlyTheirTraffic() throws {
        try requireBPF()
        let connections = try (1...3).map { try TCPExchange(send: 1_000 * $0 + 11, reply: 100 * $0 + 7) }
        let exchanges = try (1...3).map { try UDPExchange(packets: 2 + $0, size: 100 * $0 + 1) }
        let kept = [connections[0], connections[2]], keptUDP = [exchanges[0], exchanges[2]]
        let (tcpByPID, tcpByPIDEvents) = try collecting(TCPMonitor.Configuration(filter: .init(pids: Set(kept.map(\.server.pid)))))
        let (tcpByPort, tcpByPortEvents) = try collecting(TCPMonitor.Configuration(filter: .init(ports: Set(kept.map(\.port)))))
        let (udpByPID, udpByPIDEvents) = try collecting(UDPMonitor.Configuration(filter: .init(pids: Set(keptUDP.map(\.receiver.pid)))))
        let (udpByPort, udpByPortEvents) = try collecting(UDPMonitor.Configuration(filter: .init(ports: Set(keptUDP.map(\.port)))))
        for connection in connections { try connection.connect() }
        for exchange in exchanges { try exchange.send() }

        // By pid: the servers' accepts and closes; every client's and the second server's filtered.
        let byPID = finish(tcpByPID, tcpByPIDEvents, events: 4, filtered: 8)
        // By port: both ends of the first and third connections; the second's four filtered.
        let byPort = finish(tcpByPort, tcpByPortEvents, events: 8, filtered: 4)
        for connection in connections {
            let isKept = kept.contains { $0 === connection }
            connection.check(byPID.events, server: isKept, client: false)
            connection.check(byPort.events, server: isKept, client: isKept)
        }
        XCTAssertEqual(Set(byPID.events.map(\.pid)), Set(kept.map(\.server.pid)), "\(byPID.events)")
        XCTAssertEqual(byPID.events.count, 4)
        XCTAssertEqual(byPort.events.count, 8, "\(byPort.events)")
        XCTAssertGreaterThanOrEqual(byPID.filtered, 8, "three clients' and a server's opens and closes")
        XCTAssertGreaterThanOrEqual(byPort.filtered, 4, "the second connection's four events")

        // By pid: every sender's datagrams and the second receiver's; by port: the second pair's.
        let udpPIDFiltered = UInt64(exchanges.map(\.packets).reduce(0, +) + exchanges[1].packets)
        let udpPortFiltered = UInt64(2 * exchanges[1].packets)
        let udpByPIDResult = finish(udpByPID, udpByPIDEvents, filtered: udpPIDFiltered)
        let udpByPortResult = finish(udpByPort, udpByPortEvents, filtered: udpPortFiltered)
        for exchange in exchanges {
            let isKept = keptUDP.contains { $0 === exchange }
            exchange.check(udpByPIDResult.events, receiver: isKept, sender: false)
            exchange.check(udpByPortResult.events, receiver: isKept, sender: isKept)
        }
        XCTAssertEqual(Set(udpByPIDResult.events.map(\.pid)), Set(keptUDP.map(\.receiver.pid)))
        let ends = Set(keptUDP.map(\.receiver.pid) + keptUDP.compactMap(\.sender?.pid))
        XCTAssertEqual(Set(udpByPortResult.events.map(\.pid)), ends, "\(udpByPortResult.events)")
        XCTAssertGreaterThanOrEqual(udpByPIDResult.filtered, udpPIDFiltered)
        XCTAssertGreaterThanOrEqual(udpByPortResult.filtered, udpPortFiltered)
    }

    /// A real podman container (runc, the host's network): its connection carries the id podman
    /// printed, runtime podman, its cgroup (as /proc says), `nc` run by `busybox`; `tcp-events
    /// --json --container <12 digits>` prints that connection's connect and close, nothing else.
    func testPodmanContainerTrafficCarriesItsIDAndTheToolFiltersByPrefix() throws {
        try requireBPF()
        // busybox nc sends "hello\n", shuts down its sending side, and waits for the server's close.
        let exchange = try TCPExchange(send: 6, reply: 0)
        let container = try TestContainer(script: "echo hello | nc 127.0.0.1 \(exchange.port)")
        defer { container.remove() }
        let path = try XCTUnwrap(TestCgroup.path(of: try container.pid()), "the container's first process has no cgroup v2")
        let placement = try Placement(path: path, container: .init(id: container.id, runtime: .podman))
        let own = try Placement.own()
        let (monitor, events) = try collecting(TCPMonitor.Configuration(filter: .init(ports: [exchange.port])))
        let tool = try RunningTool("tcp-events", ["--json", "--container", String(container.id.prefix(12))])
        try container.proceed()
        try exchange.finish()

        let all = finish(monitor, events, events: 4).events
        for event in exchange.check(all, server: true, client: true) {
            if event.sourcePort == exchange.port {
                own.check(event)
                XCTAssertEqual(event.command, Self.command)
                XCTAssertEqual(event.executable, Self.executable)
            } else {
                placement.check(event)
                XCTAssertEqual(event.command, "nc", "\(event)")
                XCTAssertEqual(event.executable, "busybox", "\(event)")
                XCTAssertEqual(event.cgroup?.container?.id, container.id, "the full id podman printed")
            }
        }
        let lines = try tool.finish(expecting: 2)
        XCTAssertEqual(lines.map { $0.object["event"] as? String }, ["connect", "close"], "\(lines.map(\.text))")
        for (text, object) in lines {
            placement.check(json: object, text)
            XCTAssertEqual(object["comm"] as? String, "nc", text)
            XCTAssertEqual(object["exe"] as? String, "busybox", text)
            XCTAssertEqual((object["dport"] as? NSNumber)?.uint16Value, exchange.port, text)
        }
        let close = lines.last?.object
        XCTAssertEqual((close?["tx_bytes"] as? NSNumber)?.intValue, 8, "hello and newline, SYN and FIN")
        XCTAssertEqual((close?["rx_bytes"] as? NSNumber)?.intValue, 1, "the server's FIN")
    }

    /// Traffic on the loopback of a namespace made by `ip netns add`: every event carries the
    /// namespace's inode and name (also in JSON); a filter of that inode drops the same traffic
    /// on the host's loopback, counted as filtered.
    func testNamedNetworkNamespaceNamesEventsAndItsFilterDropsTheHost() throws {
        try requireBPF()
        let namespace = try NetworkNamespace()
        let inode = namespace.inode
        let inside = try TCPExchange(send: 2_222, reply: 333, namespace: namespace)
        let outside = try TCPExchange(send: 2_222, reply: 333)
        let insideUDP = try UDPExchange(packets: 4, size: 555, namespace: namespace)
        let outsideUDP = try UDPExchange(packets: 4, size: 555)
        let (tcp, tcpEvents) = try collecting(TCPMonitor.Configuration(filter: .init(networkNamespaces: [inode])))
        let (udp, udpEvents) = try collecting(UDPMonitor.Configuration(filter: .init(networkNamespaces: [inode])))
        // The host's traffic first: anything of it that passed would be in before the namespace's.
        try outside.connect()
        try outsideUDP.send()
        try inside.connect()
        try insideUDP.send()

        let tcpResult = finish(tcp, tcpEvents, events: 4, filtered: 4)
        let udpResult = finish(udp, udpEvents, filtered: UInt64(2 * outsideUDP.packets))
        XCTAssertEqual(inside.check(tcpResult.events, server: true, client: true).count, 4)
        outside.check(tcpResult.events, server: false, client: false)
        XCTAssertEqual(tcpResult.events.count, 4, "\(tcpResult.events)")
        XCTAssertEqual(insideUDP.check(udpResult.events, receiver: true, sender: true).count, udpResult.events.count)
        outsideUDP.check(udpResult.events, receiver: false, sender: false)
        for event in tcpResult.events {
            XCTAssertEqual(event.networkNamespace, inode, "\(event)")
            XCTAssertEqual(event.networkNamespaceName, namespace.name, "\(event)")
        }
        for event in udpResult.events {
            XCTAssertEqual(event.networkNamespace, inode, "\(event)")
            XCTAssertEqual(event.networkNamespaceName, namespace.name, "\(event)")
        }
        XCTAssertGreaterThanOrEqual(tcpResult.filtered, 4, "the host connection's four events")
        XCTAssertGreaterThanOrEqual(udpResult.filtered, UInt64(2 * outsideUDP.packets), "the host's datagrams, sent and received")
        let line = try EventJSONEncoder().encode(try XCTUnwrap(tcpResult.events.first))
        XCTAssertTrue(line.contains("\"netns\":\(inode),\"netns_name\":\"\(namespace.name)\""), line)
    }

    /// A process that names itself `sshd` (as prctl does): `comm` says sshd, `exe` says what runs,
    /// for its TCP connection and its datagrams; its peers keep their own names.
    func testARenamedProcessKeepsItsExecutable() throws {
        try requireBPF()
        let connection = try TCPExchange(send: 50, reply: 60)
        let exchange = try UDPExchange(packets: 3, size: 70)
        let (tcp, tcpEvents) = try collecting(TCPMonitor.Configuration(filter: .init(ports: [connection.port])))
        let (udp, udpEvents) = try collecting(UDPMonitor.Configuration(filter: .init(ports: [exchange.port])))
        try connection.connect(["--name", "sshd"])
        try exchange.send(["--name", "sshd"])

        let tcpAll = connection.check(finish(tcp, tcpEvents, events: 4).events, server: true, client: true)
        let udpAll = exchange.check(finish(udp, udpEvents).events, receiver: true, sender: true)
        let renamed = [connection.client?.pid, exchange.sender?.pid]
        for process in tcpAll.map(\.process) + udpAll.map(\.process) {
            XCTAssertEqual(process.command, renamed.contains(process.pid) ? "sshd" : Self.command, "\(process)")
            XCTAssertEqual(process.executable, Self.executable, "\(process)")
            XCTAssertNil(process.thread, "the main thread acted: \(process)")
        }
        XCTAssertEqual(tcpAll.filter { renamed.contains($0.pid) }.count, 2, "the client's connect and close")
        XCTAssertGreaterThan(udpAll.filter { renamed.contains($0.pid) }.count, 0, "the sender's datagrams")
        let client = try XCTUnwrap(tcpAll.first { renamed.contains($0.pid) && $0.kind == .close })
        let line = try EventJSONEncoder().encode(client)
        XCTAssertTrue(line.contains("\"comm\":\"sshd\",\"exe\":\"\(Self.executable)\""), line)
    }

    // MARK: Helpers

    /// A started monitor of `configuration` (stopped at the test's end, if not before), and the
    /// collector its events go to.
    func collecting<Kind: EventKind>(_ configuration: MonitorConfiguration<Kind>) throws -> (EventMonitor<Kind>, Collector<Kind.Event>) {
        let monitor = try EventMonitor<Kind>(configuration: configuration)
        let collector = Collector<Kind.Event>()
        try monitor.start { collector.add($0) }
        addTeardownBlock { monitor.stop() }
        return (monitor, collector)
    }

    /// Once the traffic is over: waits (boundedly) until the collector holds `count` events and
    /// the kernel has filtered `filtered` records, reads what it filtered, then stops the monitor,
    /// which delivers everything still buffered (and UDP's unreported counts). Its events, all of
    /// them, and the filtered count; the callers check both.
    func finish<Kind: EventKind>(
        _ monitor: EventMonitor<Kind>, _ collector: Collector<Kind.Event>, events count: Int = 0, filtered: UInt64 = 0
    ) -> (events: [Kind.Event], filtered: UInt64) {
        collector.wait(timeout: 20) { $0.count >= count }
        let deadline = Date().addingTimeInterval(10)
        while monitor.statistics.filteredEvents < filtered && Date() < deadline { usleep(10_000) }
        let statistics = monitor.statistics
        monitor.stop()
        XCTAssertEqual(statistics.lostSamples, 0)
        XCTAssertEqual(statistics.droppedEvents, 0)
        return (collector.events, statistics.filteredEvents)
    }
}

/// Where a process ran, from what the test made or read from the kernel (never from the
/// library's reading of the path), and what events must say of it.
struct Placement {
    var path: String
    /// The cgroup's id: its directory's inode number.
    var id: UInt64
    var container: Cgroup.Container?
    var podUID: String?
    var service: String?

    /// The cgroup v2 at `path` (below the hierarchy's root), with what its name says.
    init(path: String, container: Cgroup.Container? = nil, podUID: String? = nil, service: String? = nil) throws {
        let resolver = try CgroupResolver()
        var status = stat()
        guard stat(resolver.absolutePath(path), &status) == 0 else { throw TestCgroup.CgroupError("no cgroup \(path)") }
        self.path = path
        id = UInt64(status.st_ino)
        self.container = container
        self.podUID = podUID
        self.service = service
    }

    /// The test process's own cgroup (its children's, until moved). Not one the test made: what
    /// its path names is read as the library reads it.
    static func own() throws -> Placement {
        let own = try XCTUnwrap(ownCgroup(), "this process has no cgroup v2")
        return try Placement(path: own.path, container: own.container, podUID: own.podUID, service: own.service)
    }

    func check(_ event: some NetworkEvent, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(event.cgroupID, id, "cgroup id of \(event)", file: file, line: line)
        guard let cgroup = event.cgroup else { return XCTFail("no cgroup named in \(event)", file: file, line: line) }
        XCTAssertEqual(cgroup.id, id, file: file, line: line)
        XCTAssertEqual(cgroup.path, path, file: file, line: line)
        XCTAssertEqual(cgroup.container, container, "\(event)", file: file, line: line)
        XCTAssertEqual(cgroup.podUID, podUID, "\(event)", file: file, line: line)
        XCTAssertEqual(cgroup.service, service, "\(event)", file: file, line: line)
    }

    /// The same in a JSON line: absent keys where the value is unknown.
    func check(json object: [String: Any], _ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual((object["cgroup_id"] as? NSNumber)?.uint64Value, id, text, file: file, line: line)
        XCTAssertEqual(object["cgroup"] as? String, path, text, file: file, line: line)
        XCTAssertEqual(object["container_id"] as? String, container?.id, text, file: file, line: line)
        XCTAssertEqual(object["container_runtime"] as? String, container?.runtime.rawValue, text, file: file, line: line)
        XCTAssertEqual(object["pod_uid"] as? String, podUID, text, file: file, line: line)
        XCTAssertEqual(object["service"] as? String, service, text, file: file, line: line)
    }
}

/// Two cgroups named the way container runtimes name theirs, made in the test's own tree:
/// `app/docker-<id>.scope` (Docker, systemd driver) and a Kubernetes pod's
/// `kubepods.slice/…/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope` (containerd's CRI
/// plugin). Each gets a TCP server and a UDP receiver, started now and waiting; ``run()`` moves
/// them in and lets their peers (in the test's own cgroup) come.
final class MadeUpContainers {
    let cgroups: TestCgroup
    let dockerID = randomContainerID(), criID = randomContainerID()
    /// The pod's uid, with dashes (its slice's name has underscores).
    let podUID = UUID().uuidString.lowercased()
    /// `<tree>/app`, made at once; the Docker scope in it is made by ``run()``.
    let app: String
    /// The containerd scope, made at once (a container filter needs it at start).
    let cri: String
    var docker: String { "\(app)/docker-\(dockerID).scope" }
    let dockerTCP: TCPExchange, criTCP: TCPExchange
    let dockerUDP: UDPExchange, criUDP: UDPExchange

    init() throws {
        cgroups = try TestCgroup()
        app = try cgroups.make("/app")
        let pod = "kubepods-burstable-pod\(podUID.replacingOccurrences(of: "-", with: "_")).slice"
        cri = try cgroups.make("/kubepods.slice/kubepods-burstable.slice/\(pod)/cri-containerd-\(criID).scope")
        dockerTCP = try TCPExchange(send: 12_345, reply: 777)
        criTCP = try TCPExchange(send: 4_321, reply: 99)
        dockerUDP = try UDPExchange(packets: 7, size: 333)
        criUDP = try UDPExchange(packets: 5, size: 1_200)
    }

    /// Makes the Docker scope, moves each cgroup's server and receiver into it, then runs their peers.
    func run() throws {
        try cgroups.make(String(docker.dropFirst(cgroups.root.count)))
        for (path, tcp, udp) in [(docker, dockerTCP, dockerUDP), (cri, criTCP, criUDP)] {
            try cgroups.move(tcp.server.pid, to: path)
            try cgroups.move(udp.receiver.pid, to: path)
        }
        for tcp in [dockerTCP, criTCP] { try tcp.connect() }
        for udp in [dockerUDP, criUDP] { try udp.send() }
    }

    /// What events of each scope's processes must say: the ids and runtimes the test chose.
    func placements() throws -> (docker: Placement, cri: Placement) {
        (
            try Placement(path: docker, container: .init(id: dockerID, runtime: .docker)),
            try Placement(path: cri, container: .init(id: criID, runtime: .containerd), podUID: podUID)
        )
    }

    static func randomContainerID() -> String { String((0..<64).map { _ in "0123456789abcdef".randomElement()! }) }
}

/// One loopback TCP connection: a `netevents-traffic` server listens at once (at a port the kernel
/// picks) and waits, so it can be moved or named in a filter before its client comes; the client
/// sends `send` bytes, the server answers `reply`, both close.
final class TCPExchange {
    let server: TrafficProcess
    let port: UInt16
    let send: Int, reply: Int
    let namespace: NetworkNamespace?
    /// The inode of the namespace the connection is in: its events are those with this and its port.
    let namespaceInode: UInt32
    private(set) var client: TrafficProcess?

    init(send: Int, reply: Int, namespace: NetworkNamespace? = nil) throws {
        self.send = send
        self.reply = reply
        self.namespace = namespace
        server = try TrafficProcess(["tcp-server", "--port", "0", "--receive", "\(send)", "--send", "\(reply)"], namespace: namespace)
        port = try XCTUnwrap(server.nextLine()["port"].flatMap { UInt16($0) })
        var status = stat()
        stat(namespace.map { "/run/netns/\($0.name)" } ?? "/proc/self/ns/net", &status)
        namespaceInode = UInt32(truncatingIfNeeded: status.st_ino)
    }

    /// Runs a `netevents-traffic` client (with `arguments` added) to its end, and the server.
    func connect(_ arguments: [String] = []) throws {
        let client = try TrafficProcess(
            ["tcp-client", "--port", "\(port)", "--send", "\(send)", "--receive", "\(reply)"] + arguments, namespace: namespace)
        self.client = client
        _ = try client.nextLine()
        _ = try client.nextLine()
        client.waitForSuccess()
        try finish()
    }

    /// Waits (boundedly) for the server to be done with its client.
    func finish() throws {
        XCTAssertEqual(try server.nextLine(timeout: 30)["received"], "\(send)")
        server.waitForSuccess()
    }

    /// Checks that `events` hold exactly the ends asked for of this connection (an accept and a
    /// close of the server, a connect and a close of the client), with tcp_info's byte counts (the
    /// client's SYN and each end's FIN count); returns them.
    @discardableResult
    func check(
        _ events: [TCPConnectionEvent], server: Bool, client: Bool, file: StaticString = #filePath, line: UInt = #line
    ) -> [TCPConnectionEvent] {
        let mine = events.filter { $0.networkNamespace == namespaceInode }
        let serverEnd = mine.filter { $0.sourcePort == port }
        let clientEnd = mine.filter { $0.destinationPort == port }
        func kinds(_ events: [TCPConnectionEvent]) -> [String] { events.map(\.kind.rawValue).sorted() }
        XCTAssertEqual(kinds(serverEnd), server ? ["accept", "close"] : [], "server end at \(port): \(serverEnd)", file: file, line: line)
        XCTAssertEqual(kinds(clientEnd), client ? ["close", "connect"] : [], "client end to \(port): \(clientEnd)", file: file, line: line)
        for event in serverEnd {
            XCTAssertEqual(event.pid, self.server.pid, "\(event)", file: file, line: line)
            XCTAssertEqual(event.ownerSource, .accept, file: file, line: line)
        }
        for event in clientEnd {
            if let client = self.client { XCTAssertEqual(event.pid, client.pid, "\(event)", file: file, line: line) }
            XCTAssertEqual(event.ownerSource, .connect, file: file, line: line)
        }
        if let close = serverEnd.first(where: { $0.kind == .close }) {
            XCTAssertEqual(close.receivedBytes, UInt64(send + 1), "server rx: data + FIN", file: file, line: line)
            XCTAssertEqual(close.sentBytes, UInt64(reply + 1), "server tx: data + FIN", file: file, line: line)
        }
        if let close = clientEnd.first(where: { $0.kind == .close }) {
            XCTAssertEqual(close.sentBytes, UInt64(send + 2), "client tx: data + SYN + FIN", file: file, line: line)
            XCTAssertEqual(close.receivedBytes, UInt64(reply + 1), "client rx: data + FIN", file: file, line: line)
        }
        return serverEnd + clientEnd
    }
}

/// One datagram exchange: a `netevents-traffic` receiver binds at once (at a port the kernel
/// picks) and waits; a connected sender sends it `packets` datagrams of `size` bytes.
final class UDPExchange {
    typealias Totals = UDPMonitorIntegrationTests.Totals
    let receiver: TrafficProcess
    let port: UInt16
    let packets: Int, size: Int
    let namespace: NetworkNamespace?
    private(set) var sender: TrafficProcess?

    init(packets: Int, size: Int, namespace: NetworkNamespace? = nil) throws {
        self.packets = packets
        self.size = size
        self.namespace = namespace
        receiver = try TrafficProcess(["udp-receiver", "--packets", "\(packets)"], namespace: namespace)
        port = try XCTUnwrap(receiver.nextLine()["port"].flatMap { UInt16($0) })
    }

    /// Runs the sender (with `arguments` added) to its end, and the receiver.
    func send(_ arguments: [String] = []) throws {
        let sender = try TrafficProcess(
            ["udp-sender", "--port", "\(port)", "--packets", "\(packets)", "--sizes", "\(size)", "--connect"] + arguments, namespace: namespace)
        self.sender = sender
        XCTAssertEqual(try sender.nextLine()["bytes"], "\(packets * size)")
        XCTAssertEqual(try receiver.nextLine()["bytes"], "\(packets * size)")
        _ = try sender.nextLine()
        _ = try receiver.nextLine()
        sender.waitForSuccess()
        receiver.waitForSuccess()
    }

    /// Checks that `events` hold the receiver's (and the sender's) datagrams exactly, or none of
    /// them at all; returns them.
    @discardableResult
    func check(
        _ events: [UDPTrafficEvent], receiver: Bool, sender: Bool, file: StaticString = #filePath, line: UInt = #line
    ) -> [UDPTrafficEvent] {
        let received = events.filter { $0.pid == self.receiver.pid }
        let sent = events.filter { $0.pid == self.sender?.pid }
        if receiver {
            XCTAssertEqual(Totals(received), Totals(rx: packets, bytes: packets * size), "receiver: \(received)", file: file, line: line)
        } else {
            XCTAssertEqual(received, [], "the receiver's datagrams", file: file, line: line)
        }
        if sender {
            XCTAssertEqual(Totals(sent), Totals(tx: packets, bytes: packets * size), "sender: \(sent)", file: file, line: line)
        } else {
            XCTAssertEqual(sent, [], "the sender's datagrams", file: file, line: line)
        }
        for event in received { XCTAssertEqual(event.sourcePort, port, "\(event)", file: file, line: line) }
        for event in sent { XCTAssertEqual(event.destinationPort, port, "\(event)", file: file, line: line) }
        return received + sent
    }
}

/// A tool of this package, started and tracing (its `Tracing` line seen), its output collected.
final class RunningTool {
    let process: Process
    let lines: Collector<String>
    let errors: Collector<String>

    init(_ tool: String, _ arguments: [String]) throws {
        let (process, output, errors) = try startProcess(builtExecutable(tool), arguments)
        self.process = process
        lines = Collector(lines: output.fileHandleForReading)
        self.errors = Collector(lines: errors.fileHandleForReading)
        guard self.errors.first(timeout: 30, where: { $0.hasPrefix("Tracing") }) != nil else {
            process.terminate()
            throw TrafficError.timeout([tool] + arguments + ["(no Tracing line: \(self.errors.events))"])
        }
    }

    deinit { if process.isRunning { process.terminate() } }

    /// Waits up to 10 seconds for the tool to end; whether it still runs.
    private func runsAfterWaiting() -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        return process.isRunning
    }

    /// Waits (boundedly) for `count` lines, interrupts the tool and waits for it to end (status
    /// 0, its summary counting what it printed); every line it printed, with its JSON object.
    func finish(expecting count: Int) throws -> [(text: String, object: [String: Any])] {
        lines.wait(timeout: 20) { $0.count >= count }
        process.interrupt()
        let summary = errors.first(timeout: 10) { $0.contains(" events printed; ") }
        XCTAssertFalse(runsAfterWaiting(), "the tool still runs after SIGINT")
        if !process.isRunning { XCTAssertEqual(process.terminationStatus, 0, "\(errors.events)") }
        // The lines the summary counts, every one read from the pipe.
        let printed = try XCTUnwrap(summary.flatMap { Int($0.prefix { $0.isNumber }) }, "no summary: \(errors.events)")
        XCTAssertEqual(lines.wait(timeout: 5) { $0.count >= printed }.count, printed)
        return try lines.events.map { text in
            (text, try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text))
        }
    }
}
