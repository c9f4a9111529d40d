import Foundation
import Glibc
import NetEventsCore
import TCPEvent

/// `poll`: what one poll of the open TCP connections costs (`tcp-events --interval`,
/// `TCPKind.Options.interval`) with N idle loopback connections open, N = 1,000, 10,000 and
/// 100,000 by default, plus a row with none of ours (the machine's own connections only).
///
/// The connections are opened and held by children of this process (`poll-hold`, this executable
/// again), each holding both ends of its share (2 sockets and 2 descriptors per connection,
/// close-on-exec), as many as its hard `RLIMIT_NOFILE` allows: raising that needs
/// `CAP_SYS_RESOURCE`, which root lacks in some containers (20,000 descriptors here: 11 holders
/// for 100,000 connections). Each holder has a listener on an ephemeral port of 127.0.0.1 and its
/// own client address, 127.0.0.2 upwards; each client is bound to that address and a port of
/// 20000–29999 (outside the ephemeral range, so other programs' connects and `bind(0)`s keep
/// every ephemeral port), then connected with a 5 s send timeout, and each connect is followed by
/// its accept (waited for with `poll`, at most 5 s), so the accept queue never holds more than
/// one connection. `ListenOverflows`/`ListenDrops` (`/proc/net/netstat`, machine-wide) are read
/// before and after, and every connect must have its accept. At the end every socket is closed
/// with `SO_LINGER` 0 (a reset, so no TIME_WAIT is left behind); a holder left alone ends itself
/// after an hour.
///
/// For each N, with the connections open:
/// 1. **Library**: `SocketDiagnostics.dump(protocolNumber: 6, states: <1,4,5,8,9,11>, info: true)`
///    (the poller's call), then `SocketOwners.find` on the inodes of every socket it listed. Each
///    is timed `runs` times: wall time (`CLOCK_MONOTONIC`) and CPU time of the calling thread
///    (`CLOCK_THREAD_CPUTIME_ID`: the kernel builds the dump in the caller's `recv`, so it counts
///    there), medians reported, with the system share of it over all runs (`RUSAGE_THREAD`). `find` has no cache: every call reads every process's
///    `/proc/PID/fd` links, as the poller's first poll (the snapshot) does for all sockets; later
///    polls look up only sockets no event or earlier poll owned, none here.
/// 2. **Tool**: `tcp-events --json --interval I > /dev/null` (I = 1 s by default) spawned beside
///    the connections. The snapshot (a record for every open connection) is taken inside the
///    monitor's start, before the `Tracing` line; its records are printed after. Measured: spawn →
///    `Tracing`; the bytes the tool wrote (`wchar` of `/proc/PID/io`, which counts writes to
///    /dev/null) until they stop growing for 0.5 s (the snapshot printed; its time is from `Tracing`
///    to the last growth, at 50 ms resolution); its CPU time (`clock_getcpuclockid`) from spawn to
///    then; VmRSS then. Then the window: from the end of one poll, `window` seconds and on to the
///    end of the next poll. Polls are seen on the tool's scan thread (`PeriodicTask` "event scan",
///    which runs them and sleeps between them; see ``ScanThread`` for how it is found): its CPU
///    time (`/proc/PID/task/TID/schedstat`) and state, sampled every 10 ms; a poll ends when the
///    thread is asleep and its CPU time has stopped growing. Tool CPU per poll is the process's
///    CPU time over the window (every thread) divided by the polls in it; the scan thread's CPU per
///    poll is given beside it (median and max), as is each poll's wall time (from the first sample
///    that saw it to the first that saw it over, so 10–20 ms more than it took). Idle connections
///    move nothing, so after the snapshot a poll prints nothing (the machine's own connections
///    that moved data aside). Peak RSS is VmHWM, steady RSS VmRSS at the end of the window. The tool is stopped with SIGINT and its
///    closing summary gives the records printed and dropped (the delivery queue holds 65,536).
///
/// Before opening each N's connections and before each tool run the section waits, polling every
/// 10 s for up to 20 minutes, until no test suite, QEMU guest or build is running (`pgrep -f
/// 'xctest|qemu-system|swift-build|swift-test'`), and says if it measured while they still ran.
enum PollBenchmark {
    struct Options {
        var open = [1_000, 10_000, 100_000]
        var runs = 5
        var window = 20
        var interval = 1
        var waitForQuiet = true
    }

    /// At most this many connections (400,000 descriptors).
    static let maximum = 200_000
    /// The poller's states: ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING.

    // MARK: - Quiet machine

    static let busyPattern = "xctest|qemu-system|swift-build|swift-test"

    /// Waits (every 10 s, at most 20 minutes) until `pgrep -f` finds none of ``busyPattern``; a
    /// note when it waited or is still busy, nil when quiet at once.
    static func waitForQuiet() -> String? {
        func busy() -> [String] {
            guard let child = try? Child("/usr/bin/pgrep", ["-af", busyPattern]) else { return [] }
            child.output.waitForEnd(timeout: 10)
            child.wait(timeout: 5)
            return child.output.allKeptLines.filter { !$0.isEmpty }
        }
        let start = Clock.now()
        var running = busy()
        if running.isEmpty { return nil }
        say("waiting for a quiet machine: \(running.map { String($0.prefix(80)) }.joined(separator: "; "))")
        while !running.isEmpty && Clock.now() - start < 1200 {
            Clock.sleep(10)
            running = busy()
        }
        let waited = "waited \(Int(Clock.now() - start)) s for a quiet machine"
        if running.isEmpty { return waited }
        return "**\(waited), still busy, measured anyway**: " + running.map { String($0.prefix(80)) }.joined(separator: "; ")
    }

    // MARK: - Connections

    /// The client ports of a holder, on its own address 127.0.0.HOST: outside the ephemeral range,
    /// so other programs' connects and `bind(0)`s keep every ephemeral port.
    static let clientPorts: Range<UInt16> = 20_000..<30_000

    /// Idle loopback connections held by `poll-hold` children of this process (this executable
    /// again), each holding both ends of its share. A process may not have more descriptors than
    /// its hard `RLIMIT_NOFILE`, and raising that needs `CAP_SYS_RESOURCE`, which root lacks in some
    /// containers (this one: 20,000), so 100,000 connections take several holders.
    final class HeldConnections {
        private var holders: [Child] = []
        /// The holders' listening ports (on 127.0.0.1): every connection has one at one end.
        private(set) var ports: Set<UInt16> = []
        private(set) var pids: Set<pid_t> = []
        private(set) var accepted = 0
        /// `ListenOverflows` and `ListenDrops` (machine-wide) while they were opened.
        private(set) var overflows = 0
        private(set) var drops = 0
        private(set) var seconds = 0.0
        var holderCount: Int { holders.count }

        init(count: Int) throws {
            guard count > 0 else { return }
            let capacity = holderCapacity()
            let shares = (count + capacity - 1) / capacity
            guard shares <= 250 else { throw BenchError("\(count) connections need \(shares) holders of \(capacity), more than 250") }
            let me = try siblingExecutable("netevents-bench")
            let before = listenCounters()
            let start = Clock.now()
            do {
                for index in 0..<shares {
                    let share = count / shares + (index < count % shares ? 1 : 0)
                    let child = try Child(me, ["poll-hold", "--count", String(share), "--host", String(2 + index)], stdin: true)
                    holders.append(child)
                    guard let line = child.output.waitForLine(timeout: 300, where: { $0.hasPrefix("holding") }),
                        let port = keyValues(line)["port"].flatMap({ UInt16($0) }), let accepted = keyValues(line)["accepted"].flatMap({ Int($0) })
                    else { throw BenchError("poll-hold --count \(share) failed: \(child.output.lastLines.joined(separator: " | "))") }
                    ports.insert(port)
                    pids.insert(child.pid)
                    self.accepted += accepted
                }
            } catch {
                close()
                throw error
            }
            seconds = Clock.now() - start
            let after = listenCounters()
            (overflows, drops) = (after.overflows - before.overflows, after.drops - before.drops)
        }

        /// Whether a dumped socket is one end of these connections.
        func owns(_ socket: SocketDiagnostics.Socket) -> Bool {
            socket.endpoints.family == .ipv4 && (ports.contains(socket.endpoints.sourcePort) || ports.contains(socket.endpoints.destinationPort))
        }

        /// Tells every holder to close (each waited for, bounded) and end.
        func close() {
            for child in holders { child.send("close") }
            for child in holders {
                child.output.waitForEnd(timeout: 60)
                child.wait(timeout: 10)
            }
            holders = []
        }

        deinit { close() }
    }

    /// Connections one holder may hold: half of its descriptors (the hard `RLIMIT_NOFILE`, at most
    /// `/proc/sys/fs/nr_open`) less 64 to spare, and at most the client ports of one address less
    /// 100 (a port in use is skipped).
    static func holderCapacity() -> Int {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        let nrOpen = readProcFile("/proc/sys/fs/nr_open").flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1_048_576
        let descriptors = Int(min(UInt(nrOpen), UInt(limit.rlim_max)))
        return max(1, min((descriptors - 64) / 2, clientPorts.count - 100))
    }

    /// `TcpExt: ListenOverflows` and `ListenDrops` of `/proc/net/netstat`.
    static func listenCounters() -> (overflows: Int, drops: Int) {
        let lines = (readProcFile("/proc/net/netstat") ?? "").split(separator: "\n").filter { $0.hasPrefix("TcpExt:") }
        guard lines.count >= 2 else { return (0, 0) }
        let values = Dictionary(zip(lines[0].split(separator: " "), lines[1].split(separator: " ").map { Int($0) ?? 0 }), uniquingKeysWith: { a, _ in a })
        return (values["ListenOverflows"] ?? 0, values["ListenDrops"] ?? 0)
    }

    /// `poll-hold --count N --host H` (run by ``HeldConnections``): opens N connections from
    /// 127.0.0.H, prints `holding count=N accepted=A port=P pid=PID seconds=S`, holds them until
    /// a `close` line or the end of standard input, closes them, prints `closed`. Ends by itself
    /// after an hour (SIGALRM) if nobody says so.
    static func hold(count: Int, host: Int) throws {
        alarm(3600)
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        let needed = rlim_t(2 * count + 64)
        guard needed <= limit.rlim_max else { throw BenchError("\(count) connections need \(needed) descriptors, RLIMIT_NOFILE allows \(limit.rlim_max)") }
        if limit.rlim_cur < needed {
            limit.rlim_cur = needed
            guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw BenchError("setrlimit(RLIMIT_NOFILE, \(needed)) failed") }
        }
        let connections = try LoopbackConnections(count: count, host: host)
        say("holding count=\(count) accepted=\(connections.servers.count) port=\(connections.port) pid=\(getpid()) seconds=\(format(connections.seconds, 3))")
        while let line = readLine(), line != "close" {}
        connections.close()
        say("closed")
    }

    /// Idle loopback TCP connections opened and held by this process (a holder); closed (with
    /// resets) by ``close()``.
    final class LoopbackConnections {
        private(set) var clients: [Int32] = []
        private(set) var servers: [Int32] = []
        private var listener: Int32 = -1
        /// The listener's port on 127.0.0.1: every connection has it at one end.
        private(set) var port: UInt16 = 0
        private(set) var seconds = 0.0

        /// Opens `count` connections from 127.0.0.`host`, ports ``clientPorts``.
        init(count: Int, host: Int) throws {
            do {
                try open(count, host: host)
            } catch {
                close()
                throw error
            }
        }

        private func open(_ count: Int, host: Int) throws {
            let start = Clock.now()
            listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard listener >= 0 else { throw failure("socket") }
            guard bindLoopback(listener, host: 1, port: 0) == 0, listen(listener, SOMAXCONN) == 0 else { throw failure("listen") }
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
            port = UInt16(bigEndian: address.sin_port)
            clients.reserveCapacity(count)
            servers.reserveCapacity(count)
            var ports = clientPorts.makeIterator()
            while clients.count < count {
                guard Clock.now() - start < 300 else { throw BenchError("opening \(count) connections took over 300 s (\(clients.count) open)") }
                guard let clientPort = ports.next() else { throw BenchError("no client port left on 127.0.0.\(host) after \(clients.count) connections") }
                let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard client >= 0 else { throw failure("socket (connection \(clients.count + 1))") }
                var timeout = timeval(tv_sec: 5, tv_usec: 0)
                setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                if bindLoopback(client, host: host, port: clientPort) != 0 {
                    let code = errno
                    Glibc.close(client)
                    guard code == EADDRINUSE else { throw failure("bind 127.0.0.\(host):\(clientPort)", code) }
                    continue  // in use: the next port
                }
                clients.append(client)
                guard connectLoopback(client, port: port) == 0 else { throw failure("connect (connection \(clients.count))") }
                // Accept as we go: the accept queue never holds more than this one.
                var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 5000) == 1 else { throw BenchError("connection \(clients.count): no accept within 5 s") }
                let server = accept(listener, nil, nil)
                guard server >= 0 else { throw failure("accept (connection \(clients.count))") }
                _ = fcntl(server, F_SETFD, FD_CLOEXEC)
                servers.append(server)
            }
            seconds = Clock.now() - start
        }

        /// Closes every socket with a reset (`SO_LINGER` 0: no TIME_WAIT), clients first.
        func close() {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            for fd in clients + servers {
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                Glibc.close(fd)
            }
            if listener >= 0 { Glibc.close(listener) }
            (clients, servers, listener) = ([], [], -1)
        }

        deinit { close() }

        private func failure(_ call: String, _ code: Int32 = errno) -> BenchError {
            BenchError("\(call): \(String(cString: strerror(code)))")
        }

        private func bindLoopback(_ fd: Int32, host: Int, port: UInt16) -> Int32 {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = Self.address(host: host, port: port)
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }

        private func connectLoopback(_ fd: Int32, port: UInt16) -> Int32 {
            var address = Self.address(host: 1, port: port)
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }

        /// 127.0.0.`host`:`port`.
        private static func address(host: Int, port: UInt16) -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = (UInt32(127) << 24 | UInt32(host)).bigEndian
            return address
        }
    }

    // MARK: - Library

    /// Wall and CPU seconds of each run of a call, and the system share of its CPU over all runs.
    struct Timings {
        var wall: [Double] = []
        var cpu: [Double] = []
        private var user = 0.0
        private var system = 0.0

        mutating func time<Result>(_ body: () throws -> Result) rethrows -> Result {
            let before = Clock.threadCPU()
            let start = Clock.now()
            let result = try body()
            let end = Clock.now()
            let after = Clock.threadCPU()
            wall.append(end - start)
            cpu.append(after.total - before.total)
            user += after.user - before.user
            system += after.system - before.system
            return result
        }

        var wallMilliseconds: Double { median(wall) * 1000 }
        var cpuMilliseconds: Double { median(cpu) * 1000 }
        /// The kernel's share of the CPU time, in percent (over every run).
        var systemPercent: Double { user + system > 0 ? system / (user + system) * 100 : 0 }

        /// "12.30 ms wall, 12.10 ms CPU (83% sys)", medians.
        var summary: String { "\(format(wallMilliseconds)) ms wall, \(format(cpuMilliseconds)) ms CPU (\(format(systemPercent, 0))% sys)" }
    }

    struct Library {
        var sockets = 0  // listed by the dump
        var mine = 0  // of them, ends of our connections
        var dump = Timings()
        var inodes = 0  // looked up by find (every listed socket held by a file)
        var owners = 0  // found
        var ownedByUs = 0
        var find = Timings()
    }

    static func library(_ connections: HeldConnections, runs: Int) throws -> Library {
        var figures = Library()
        var sockets: [SocketDiagnostics.Socket] = []
        for _ in 0..<runs {
            sockets = try figures.dump.time { try SocketDiagnostics.dump(protocolNumber: UInt8(IPPROTO_TCP), states: ConnectionPoller.openStates, info: true) }
        }
        figures.sockets = sockets.count
        figures.mine = sockets.filter(connections.owns).count
        let inodes = Set(sockets.filter { $0.inode != 0 }.map(\.inode))
        figures.inodes = inodes.count
        var owners: [UInt32: SocketOwners.Owner] = [:]
        for _ in 0..<runs {
            owners = figures.find.time { SocketOwners.find(inodes) }
        }
        figures.owners = owners.count
        figures.ownedByUs = owners.values.filter { connections.pids.contains($0.process.pid) }.count
        return figures
    }

    // MARK: - Tool

    struct ToolRun {
        var startup = 0.0  // spawn → Tracing, s
        var snapshotPrint = 0.0  // Tracing → the last growth of the output, s
        var snapshotBytes = 0
        var cpuToSnapshot = 0.0  // spawn → snapshot printed, s
        var snapshotRSSKB = 0
        var printed: Int?
        var lost: UInt64?
        var dropped: UInt64?
        var polls = 0
        var windowSeconds = 0.0
        var windowCPU = 0.0
        var scanCPU: [Double] = []  // per poll, the scan thread's, s
        var scanWall: [Double] = []  // per poll, s (10 ms steps)
        var peakKB = 0
        var steadyKB = 0
        var note: String?

        var cpuPerPoll: Double { polls > 0 ? windowCPU / Double(polls) : 0 }
        /// When the output stopped growing, as the 50 ms samples can tell.
        var snapshotPrinted: String {
            snapshotPrint <= 0 ? "by `Tracing`" : "within \(Int((snapshotPrint / 0.05).rounded(.up)) * 50) ms of `Tracing`"
        }
    }

    /// The tool's scan thread (it runs the polls), read from /proc: CPU time (ns) and whether it
    /// runs. Its threads are unnamed; between polls it is the one thread waiting on a futex with a
    /// timeout (`PeriodicTask`'s semaphore; delivery and the main thread wait without one, the
    /// ring buffer's reader in poll(2)), and the last such started.
    struct ScanThread {
        let path: String

        /// Looks for it for up to 10 s (in a poll, its syscall reads `running`).
        init?(pid: pid_t) {
            let tasks = "/proc/\(pid)/task"
            let deadline = Clock.now() + 10
            while Clock.now() < deadline {
                let tids = ((try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? []).compactMap { Int32($0) }.sorted()
                // "202 uaddr op val timeout ...": futex(2) with a timeout pointer.
                if let tid = tids.last(where: { tid in
                    let fields = (readProcFile("\(tasks)/\(tid)/syscall") ?? "").split(separator: " ")
                    return fields.count > 4 && fields[0] == "202" && fields[4] != "0x0"
                }) {
                    path = "\(tasks)/\(tid)"
                    return
                }
                usleep(10_000)
            }
            return nil
        }

        /// CPU nanoseconds (schedstat's first field) and whether the state is R; nil once gone.
        func sample() -> (cpu: UInt64, running: Bool)? {
            guard let schedstat = readProcFile(path + "/schedstat"), let cpu = schedstat.split(separator: " ").first.flatMap({ UInt64($0) }),
                let stat = readProcFile(path + "/stat"), let close = stat.lastIndex(of: ")")
            else { return nil }
            return (cpu, stat[stat.index(after: close)...].dropFirst().first == "R")
        }
    }

    /// `wchar` of `/proc/PID/io`: bytes the process passed to write(2), /dev/null included.
    static func bytesWritten(_ pid: pid_t) -> Int {
        (readProcFile("/proc/\(pid)/io") ?? "").split(separator: "\n").first { $0.hasPrefix("wchar:") }
            .flatMap { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) } ?? 0
    }

    static func tool(_ path: String, _ options: Options) throws -> ToolRun {
        let spawned = Clock.now()
        let tool = try ToolBenchmark.Tool(path, ["--json", "--interval", String(options.interval)], output: "/dev/null")
        var run = ToolRun(startup: tool.startup)
        // The snapshot's records: printed once the bytes written stop growing.
        var lastGrowth = spawned + tool.startup
        var lastBytes = bytesWritten(tool.pid)
        _ = ToolBenchmark.settle({ () -> Int in
            let bytes = bytesWritten(tool.pid)
            if bytes != lastBytes { (lastBytes, lastGrowth) = (bytes, Clock.now()) }
            return bytes
        }, same: ==)
        run.snapshotPrint = lastGrowth - (spawned + tool.startup)
        run.snapshotBytes = lastBytes
        run.cpuToSnapshot = Clock.processCPU(pid: tool.pid) ?? 0
        run.snapshotRSSKB = MemoryStatus.of(pid: tool.pid)?.rss ?? 0

        guard let scan = ScanThread(pid: tool.pid) else {
            _ = tool.stop()
            throw BenchError("tcp-events: no thread waits as the scan thread does: cannot see its polls")
        }
        /// Waits for the end of the next poll (bounded); its scan-thread CPU and wall seconds.
        func nextPoll(after last: UInt64) -> (cpu: UInt64, wall: Double)? {
            let deadline = Clock.now() + Double(options.interval) + 120
            var previous = last
            var began: Double?
            while Clock.now() < deadline {
                guard let now = scan.sample() else { return nil }
                if now.cpu != previous || now.running {
                    if began == nil { began = Clock.now() }
                } else if let began {
                    return (now.cpu, Clock.now() - began)
                }
                previous = now.cpu
                usleep(10_000)
            }
            return nil
        }
        guard let first = nextPoll(after: scan.sample()?.cpu ?? 0), let cpu0 = Clock.processCPU(pid: tool.pid) else {
            _ = tool.stop()
            throw BenchError("tcp-events made no poll within \(options.interval + 120) s")
        }
        let start = Clock.now()
        var last = first.cpu
        while Clock.now() - start < Double(options.window) || run.polls == 0 {
            guard let poll = nextPoll(after: last) else {
                run.note = "a poll did not end within \(options.interval + 120) s"
                break
            }
            run.polls += 1
            run.scanCPU.append(Double(poll.cpu - last) / 1e9)
            run.scanWall.append(poll.wall)
            last = poll.cpu
        }
        guard let cpu1 = Clock.processCPU(pid: tool.pid), let memory = MemoryStatus.of(pid: tool.pid) else {
            throw BenchError("tcp-events exited during the window: \(tool.child.output.lastLines.joined(separator: " | "))")
        }
        run.windowSeconds = Clock.now() - start
        run.windowCPU = cpu1 - cpu0
        (run.peakKB, run.steadyKB) = (memory.peakRSS, memory.rss)
        guard let summary = tool.stop() else {
            throw BenchError("no closing summary from tcp-events after SIGINT: \(tool.child.output.lastLines.joined(separator: " | "))")
        }
        (run.printed, run.lost, run.dropped) = ToolBenchmark.parseSummary(summary)
        return run
    }

    // MARK: - Section

    static func run(_ options: Options) throws {
        say("## poll")
        say("")
        guard let largest = options.open.max(), largest <= maximum else { throw BenchError("poll: at most \(maximum) connections") }
        let tcpEvents = try siblingExecutable("tcp-events")
        let modified = (try? FileManager.default.attributesOfItem(atPath: tcpEvents)[.modificationDate] as? Date).map { "\($0)" } ?? "?"
        let load = readProcFile("/proc/loadavg").map { $0.split(separator: " ").prefix(3).joined(separator: " ") } ?? "?"
        say("N idle loopback TCP connections held by `poll-hold` children (2 sockets each, up to \(holderCapacity()) connections per holder); library: median of \(options.runs) runs; "
            + "tool: `tcp-events --json --interval \(options.interval) > /dev/null`, a window of \(options.window) s from the end of a poll "
            + "to the end of a poll; load average at start: \(load)")
        say("using \(tcpEvents) (built \(modified))")
        say("")
        var rows: [(count: Int, library: Library, tool: ToolRun)] = []
        var notes: [String] = []
        for count in [0] + options.open {
            if options.waitForQuiet, let note = waitForQuiet() { notes.append("\(count) connections, before opening: \(note)") }
            let connections = try HeldConnections(count: count)
            defer { connections.close() }
            if count > 0 {
                say("\(count) connections open in \(format(connections.seconds, 1)) s in \(connections.holderCount) holder process(es) (accepted \(connections.accepted); "
                    + "ListenOverflows +\(connections.overflows), ListenDrops +\(connections.drops), machine-wide)")
                guard connections.accepted == count else { throw BenchError("\(connections.accepted) accepted of \(count)") }
                if connections.overflows + connections.drops > 0 { notes.append("\(count) connections: the listen counters grew while they opened") }
            }
            let library = try library(connections, runs: options.runs)
            say("\(count): dump \(library.dump.summary), \(library.sockets) sockets (\(library.mine) ours); "
                + "find \(library.find.summary), \(library.owners) of \(library.inodes) inodes owned (\(library.ownedByUs) by the holders)")
            if count > 0, library.mine != 2 * count { notes.append("\(count) connections: the dump listed \(library.mine) of their \(2 * count) sockets") }
            if options.waitForQuiet, let note = waitForQuiet() { notes.append("\(count) connections, before the tool: \(note)") }
            let tool = try tool(tcpEvents, options)
            say("\(count): tcp-events: spawn → Tracing \(format(tool.startup * 1000, 0)) ms, snapshot printed \(tool.snapshotPrinted), "
                + "\(tool.snapshotBytes) bytes, CPU to then \(format(tool.cpuToSnapshot, 3)) s; \(tool.polls) polls in \(format(tool.windowSeconds, 1)) s, "
                + "CPU \(format(tool.windowCPU, 3)) s = \(format(tool.cpuPerPoll * 1000)) ms/poll (scan thread median \(format(median(tool.scanCPU) * 1000)) ms); "
                + "printed \(tool.printed.map(String.init) ?? "?"), lost \(tool.lost.map(String.init) ?? "?"), dropped \(tool.dropped.map(String.init) ?? "?"); "
                + "VmHWM \(megabytes(tool.peakKB)) MB, VmRSS \(megabytes(tool.steadyKB)) MB")
            if let note = tool.note { notes.append("\(count) connections: \(note)") }
            rows.append((count, library, tool))
        }
        say("")
        say("Library, per call (median of \(options.runs); CPU of the calling thread, user + sys):")
        say("")
        say("| open connections | sockets listed (ours) | `SocketDiagnostics.dump` wall | CPU (sys share) | `SocketOwners.find`: inodes, owners found (by us) | wall | CPU (sys share) |")
        say("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for row in rows {
            let l = row.library
            say("| \(row.count) | \(l.sockets) (\(l.mine)) | \(format(l.dump.wallMilliseconds)) ms | \(format(l.dump.cpuMilliseconds)) ms (\(format(l.dump.systemPercent, 0))%) | "
                + "\(l.inodes), \(l.owners) (\(l.ownedByUs)) | \(format(l.find.wallMilliseconds)) ms | \(format(l.find.cpuMilliseconds)) ms (\(format(l.find.systemPercent, 0))%) |")
        }
        say("")
        say("`tcp-events --json --interval \(options.interval) > /dev/null` beside them (one run each):")
        say("")
        say("| open connections | spawn → `Tracing` | snapshot: records printed / dropped, bytes written, printed | tool CPU spawn → snapshot printed | polls in window | "
            + "tool CPU per poll (process) | scan thread CPU per poll, median (max) | poll wall, median (max), seen in 10 ms samples (reads 10–20 ms long) | peak RSS | RSS after snapshot | steady RSS |")
        say("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for row in rows {
            let t = row.tool
            say("| \(row.count) | \(format(t.startup * 1000, 0)) ms | \(t.printed.map(String.init) ?? "?") / \(t.dropped.map(String.init) ?? "?"), "
                + "\(format(Double(t.snapshotBytes) / 1e6, 1)) MB, \(t.snapshotPrinted) | \(format(t.cpuToSnapshot * 1000, 0)) ms | "
                + "\(t.polls) in \(format(t.windowSeconds, 1)) s | \(format(t.cpuPerPoll * 1000)) ms | "
                + "\(format(median(t.scanCPU) * 1000)) (\(format((t.scanCPU.max() ?? 0) * 1000))) ms | "
                + "\(format(median(t.scanWall) * 1000, 0)) (\(format((t.scanWall.max() ?? 0) * 1000, 0))) ms | "
                + "\(megabytes(t.peakKB)) MB | \(megabytes(t.snapshotRSSKB)) MB | \(megabytes(t.steadyKB)) MB |")
        }
        say("")
        let quiet = options.waitForQuiet ? "quiet before every measurement" : "not checked (--no-wait)"
        say("notes: " + (notes.isEmpty ? quiet : notes.joined(separator: "; ")))
        say("")
        var result: [String: String] = ["open": rows.map { String($0.count) }.joined(separator: ","), "runs": String(options.runs), "interval": String(options.interval)]
        for row in rows {
            let key = "n\(row.count)"
            result[key + "_dump_ms"] = format(row.library.dump.wallMilliseconds, 3)
            result[key + "_dump_cpu_ms"] = format(row.library.dump.cpuMilliseconds, 3)
            result[key + "_find_ms"] = format(row.library.find.wallMilliseconds, 3)
            result[key + "_find_cpu_ms"] = format(row.library.find.cpuMilliseconds, 3)
            result[key + "_tool_cpu_ms_per_poll"] = format(row.tool.cpuPerPoll * 1000, 3)
            result[key + "_polls"] = String(row.tool.polls)
            result[key + "_snapshot_printed"] = row.tool.printed.map(String.init) ?? "?"
            result[key + "_snapshot_dropped"] = row.tool.dropped.map(String.init) ?? "?"
            result[key + "_peak_kb"] = String(row.tool.peakKB)
            result[key + "_steady_kb"] = String(row.tool.steadyKB)
        }
        sayResult("poll", result)
    }

    /// The `all` summary's row: per N, the library's dump + first owner search, the tool's CPU
    /// per poll and its steady RSS.
    static func summaryRows(_ result: [String: String]) -> [String] {
        guard let open = result["open"] else { return [] }
        let parts = open.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }.map { count in
            let value = { (key: String) in result["n\(count)_" + key] ?? "?" }
            return "\(count): \(value("dump_ms")) + \(value("find_ms")) ms; tool \(value("tool_cpu_ms_per_poll")) ms/poll, "
                + "\(result["n\(count)_steady_kb"].flatMap(Int.init).map(megabytes) ?? "?") MB"
        }
        return ["| open connections: library dump + first owner search (wall); `tcp-events --interval \(result["interval"] ?? "?")` CPU per poll, steady RSS | - | "
            + parts.joined(separator: "; ") + " | - |"]
    }
}
