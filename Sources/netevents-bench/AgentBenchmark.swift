import Foundation
import Glibc
import Synchronization
import TCPEvent

/// `agent`: the agent as users run it, end to end: the release `netevents serve --listen
/// 127.0.0.1:PORT --interval S` from the same build directory (found as `tools` finds the tools),
/// scraped over HTTP at `/metrics` the way Prometheus does, stopped with SIGTERM.
///
/// Per run, in a fresh agent:
/// 1. **Start-up.** Spawn the agent, then scrape every 10 ms (a refused connection is retried)
///    until one scrape answers with both `netevents_monitor_up{monitor="tcp"} 1` and
///    `{monitor="udp"} 1`. Start-up is the wall time from the spawn to the end of that scrape;
///    VmRSS and VmHWM (`/proc/PID/status`) are read right after it. The time of the agent's
///    `serving http://.../metrics` log line (stamped by the thread reading its standard error) is
///    given beside it.
/// 2. **Load.** For at least `--load-seconds` seconds, one after the other: `netevents-traffic
///    tcp-burst --count B` (the native churn generator of `tcp-churn`: loopback connections opened
///    and closed as fast as one thread can, one byte each way) and `netevents-traffic udp-flood
///    --count D --size 64` (the `udp` section's loop), repeated; meanwhile a thread scrapes every
///    second, and reads VmRSS after each scrape. The agent's CPU time (its process CPU-time clock,
///    `Clock.processCPU(pid:)`: every thread, to the nanosecond; `/proc/PID/stat` ticks only if the
///    clock cannot be read) is read before the first burst and after the counts have settled (3),
///    and divided by the TCP events the load made (4 per connection: connect, accept, 2 closes;
///    the few UDP events, an interval record or close per flood socket, are not counted, nor are
///    the scrapes, whose cost is in the CPU).
/// 3. **Counts.** The metrics count by process name (`comm`), and other sessions run
///    `netevents-traffic` too (tests, checks by hand), so the generators run under a name of
///    their own: through a symbolic link `/var/tmp/nbagent-PID` to `netevents-traffic` (the kernel
///    names a process after the file it executes), removed at the end. The scrape before the load
///    and the scrapes after it give, for that comm (read back from `/proc/PID/comm` of every
///    generator), the growth of
///    `netevents_tcp_connections_total{event=...}` (summed over the `container` label) and of
///    `netevents_udp_packets_total{direction="sent"}`. After the load, the bench scrapes until they
///    reach what the load made (connect = accept = connections, close = 2 × connections, sent =
///    datagrams) or stop moving for 3 s. A run is exact when every one matches and
///    `netevents_lost_events_total` and `netevents_dropped_events_total` did not move; the row says
///    how many runs were, and its figures stand on those counts.
/// 4. **Steady.** Then VmRSS (steady RSS) and VmHWM (peak RSS), and one more scrape: its body's
///    size in bytes and its wall time (connect to the end of the response).
/// 5. **Stop.** SIGTERM, then wait for the exit (at most `stopBound` seconds, then SIGKILL): the
///    time to exit and whether the status was exit 0, and the time to the agent's `stopping the
///    monitors` log line (the server has stopped; the monitors' detach and drain come after it).
///
/// Every figure is the median of the runs with the spread (min–max); the load average at the start
/// of each run is printed with it; figures of the load only from runs whose counts were exact.
/// Before each run the bench waits until no build, test or QEMU guest runs
/// (``PollBenchmark/waitForQuiet()``), unless `--no-wait`, and notes any other agent, tool or
/// generator (``othersPattern``) running at the start or the end of a run.
enum AgentBenchmark {
    struct Options {
        var runs = 3
        /// The load window: bursts and floods repeated until at least this long.
        var loadSeconds = 60
        /// The agent's `--interval` (its own default is 10).
        var interval = 10
        /// Connections per `tcp-burst`.
        var burst = 10_000
        /// Datagrams per `udp-flood`.
        var flood = 200_000
        var waitForQuiet = true
    }

    /// At most this long from SIGTERM to the exit.
    static let stopBound = 10.0

    // MARK: - Scraping

    /// One answer to `GET /metrics`.
    struct Scrape {
        var status: Int
        var body: String
        var bytes: Int  // the body's size
        var seconds: Double  // connect to the end of the response

        /// Samples of the text format: `name{labels} value` (comments and blank lines skipped).
        func samples(_ name: String) -> [(labels: Substring, value: Double)] {
            var found: [(Substring, Double)] = []
            for line in body.split(separator: "\n") where line.hasPrefix(name) {
                let rest = line.dropFirst(name.count)
                guard let space = rest.lastIndex(of: " "), let value = Double(rest[rest.index(after: space)...]) else { continue }
                let series = rest[..<space]
                if series.isEmpty { found.append(("", value)) } else if series.first == "{" { found.append((series, value)) }
            }
            return found
        }

        /// The sum of `name` over its series carrying every one of `labels` (`key="value"`).
        func sum(_ name: String, _ labels: [String]) -> Double {
            samples(name).filter { sample in labels.allSatisfy { sample.labels.contains($0) } }.reduce(0) { $0 + $1.value }
        }

        /// Both monitors attached: `netevents_monitor_up{monitor="tcp"} 1` and the same for udp.
        var bothUp: Bool {
            let up = samples("netevents_monitor_up")
            return ["tcp", "udp"].allSatisfy { monitor in up.contains { $0.labels.contains("monitor=\"\(monitor)\"") && $0.value == 1 } }
        }
    }

    /// `GET /metrics` from 127.0.0.1:port over HTTP/1.1 with `Connection: close`, read to the end.
    static func scrape(port: UInt16, timeout: Int = 10) throws -> Scrape {
        let t0 = Clock.now()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let connected = withLoopback(port: port) { connect(fd, $0, $1) }
        guard connected == 0 else { throw BenchError("connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))") }
        let request = Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/plain\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let wrote = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if wrote < 0 && errno == EINTR { continue }
            guard wrote > 0 else { throw BenchError("send: \(String(cString: strerror(errno)))") }
            sent += wrote
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw BenchError("recv: \(String(cString: strerror(errno)))") }
            if got == 0 { break }
            response += buffer[..<got]
        }
        let seconds = Clock.now() - t0
        let separator = Array("\r\n\r\n".utf8)
        guard let end = response.indices.dropLast(3).first(where: { response[$0..<$0 + 4].elementsEqual(separator) }) else {
            throw BenchError("no HTTP header in \(response.count) bytes")
        }
        let header = String(decoding: response[..<end], as: UTF8.self).lowercased()
        let status = header.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        var body = Array(response[(end + 4)...])
        if header.contains("transfer-encoding: chunked") { body = dechunk(body) }
        return Scrape(status: status, body: String(decoding: body, as: UTF8.self), bytes: body.count, seconds: seconds)
    }

    /// A chunked body's data (sizes in hex, each line ended by CRLF, a 0 size last).
    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var data: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = bytes[index...].firstIndex(of: 13), let size = Int(String(decoding: bytes[index..<lineEnd], as: UTF8.self)
                .split(separator: ";").first ?? "", radix: 16), size > 0, lineEnd + 2 + size <= bytes.count
            else { break }
            data += bytes[(lineEnd + 2)..<(lineEnd + 2 + size)]
            index = lineEnd + 2 + size + 2
        }
        return data
    }

    /// A loopback port nothing listens on now (bound to port 0, then let go).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let port = withLoopback { address, length in
            bind(fd, address, length) == 0 && getsockname(fd, address, &length) == 0 ? loopbackPort(address) : nil
        }
        guard let port else { throw BenchError("bind: \(String(cString: strerror(errno)))") }
        return port
    }

    /// Scrapes every second on its own thread until stopped, reading the agent's VmRSS after each.
    final class Scraper: Sendable {
        struct Sample {
            var time: Double  // since the scraper started
            var seconds: Double
            var bytes: Int
            var rssKB: Int
        }
        private struct State {
            var samples: [Sample] = []
            var failures: [String] = []
            var ended = false
        }
        private let state = Locked(State())
        private let stopping = Atomic<Bool>(false)

        init(port: UInt16, pid: pid_t) {
            let thread = Thread { [self] in
                let start = Clock.now()
                var next = start
                while !stopping.load(ordering: .relaxed) {
                    do {
                        let answer = try AgentBenchmark.scrape(port: port)
                        let rss = MemoryStatus.of(pid: pid)?.rss ?? 0
                        let sample = Sample(time: Clock.now() - start, seconds: answer.seconds, bytes: answer.bytes, rssKB: rss)
                        state.withLock { $0.samples.append(sample) }
                    } catch {
                        state.withLock { $0.failures.append("\(error)") }
                    }
                    next += 1
                    while !stopping.load(ordering: .relaxed) && Clock.now() < next { usleep(10_000) }
                }
                state.withLock { $0.ended = true }
            }
            thread.name = "agent scraper"
            thread.start()
        }

        /// Stops the thread (bounded wait) and returns what it saw.
        func stop() -> (samples: [Sample], failures: [String]) {
            stopping.store(true, ordering: .relaxed)
            let deadline = Clock.now() + 15
            while !state.withLock({ $0.ended }) && Clock.now() < deadline { usleep(5000) }
            return state.withLock { ($0.samples, $0.failures) }
        }
    }

    // MARK: - One run

    struct Run {
        var load = "?"
        var startup = 0.0  // spawn → end of the first scrape with both monitors up, s
        var serving: Double?  // spawn → the `serving` log line, s
        var startupScrapes = 0  // scrapes tried until then (refused ones included)
        var startupRSS = 0  // kB, right after that scrape
        var startupPeak = 0
        var comm = "?"
        var connections = 0
        var datagrams = 0
        var bursts = 0
        var burstRates: [Double] = []
        var floodRates: [Double] = []
        var window = 0.0  // from the first burst's release to the counts settled, s
        var cpu = 0.0  // the agent's CPU time over the window, s
        var counted = EventCounts()  // the generator's TCP events by kind, from the scrapes
        var expected = EventCounts()
        var udpCounted = 0
        var lost = 0.0  // lost events (`netevents_lost_events_total`), both monitors, over the window
        var dropped = 0.0  // dropped events (`netevents_dropped_events_total`)
        var settle = 0.0
        var during: [Scraper.Sample] = []
        var scraperFailures: [String] = []
        var (steadyRSS, steadyAnonymous, steadyFile, peak) = (0, 0, 0, 0)  // VmRSS, RssAnon, RssFile, VmHWM, bytes
        var (scrapeBytes, scrapeSeconds, stopSeconds) = (0, 0.0, 0.0)
        var stoppingLine: Double?  // SIGTERM → `stopping the monitors`, s
        var exitStatus: Int32 = -1
        /// When the exit was not 0: what the agent printed after `stopping the monitors`.
        var exitLines: [String] = []

        var exact: Bool { counted == expected && udpCounted == datagrams && lost == 0 && dropped == 0 }
        var events: Int { expected.total }
        var cpuMicrosecondsPerEvent: Double { events > 0 ? cpu * 1e6 / Double(events) : 0 }
        var cpuPercent: Double { window > 0 ? cpu / window * 100 : 0 }
        /// Exited by itself with status 0 (not by a signal, not killed at the bound).
        var exitedZero: Bool { exitStatus & 0x7f == 0 && (exitStatus >> 8) & 0xff == 0 && stopSeconds < AgentBenchmark.stopBound }
        var exitDescription: String {
            if exitStatus & 0x7f != 0 { return "killed by signal \(exitStatus & 0x7f)" }
            return "exit \((exitStatus >> 8) & 0xff)"
        }
        /// VmRSS at the first scrape of the load window, half-way through it and at its last.
        var rssGrowth: (first: Int, middle: Int, last: Int) {
            (during.first?.rssKB ?? 0, during.isEmpty ? 0 : during[during.count / 2].rssKB, during.last?.rssKB ?? 0)
        }
    }

    /// The generator's process name, as the agent labels its series (`comm`).
    static func comm(of pid: Int32) -> String {
        (readProcFile("/proc/\(pid)/comm") ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The environment `deploy/netevents.service` gives the agent.
    static let unitEnvironment = ["MALLOC_ARENA_MAX": "2"]

    static func measure(_ agentPath: String, _ traffic: String, _ options: Options) throws -> Run {
        var run = Run()
        run.load = readProcFile("/proc/loadavg").map { $0.split(separator: " ").prefix(3).joined(separator: " ") } ?? "?"
        let port = try freePort()
        let stamp = ToolBenchmark.Stamp()
        let stopping = ToolBenchmark.Stamp()
        let t0 = Clock.now()
        let agent = try Child(
            agentPath, ["serve", "--listen", "127.0.0.1:\(port)", "--interval", String(options.interval)], environment: unitEnvironment
        ) { line in
            if line.contains("serving http://") { stamp.time.withLock { if $0 == nil { $0 = Clock.now() } } }
            if line.contains("stopping the monitors") { stopping.time.withLock { if $0 == nil { $0 = Clock.now() } } }
        }
        var stopped = false
        defer {
            if !stopped {
                agent.signal(SIGKILL)
                agent.wait(timeout: 5)
            }
        }
        func failure(_ what: String) -> BenchError {
            BenchError("agent: \(what): \(agent.output.lastLines.suffix(5).joined(separator: " | "))")
        }

        // 1. Start-up: the first scrape that answers with both monitors up.
        var first: Scrape?
        while Clock.now() - t0 < 120 {
            run.startupScrapes += 1
            if let answer = try? scrape(port: port), answer.status == 200, answer.bothUp {
                first = answer
                break
            }
            if waitpid(agent.pid, nil, WNOHANG) == agent.pid {
                stopped = true
                throw failure("exited before both monitors were up")
            }
            usleep(10_000)
        }
        run.startup = Clock.now() - t0
        guard let before = first, let memory = MemoryStatus.of(pid: agent.pid) else { throw failure("no scrape with both monitors up within 120 s") }
        run.startupRSS = memory.rss
        run.startupPeak = memory.peakRSS
        run.serving = stamp.time.withLock { $0 }.map { $0 - t0 }

        // 2. Load: bursts and floods, scraped every second.
        let floodOptions = UDPBenchmark.Options(datagrams: options.flood, size: 64, runs: 1)
        var comms: Set<String> = []
        var cpu0: Double?
        var released = 0.0
        let scraper = Scraper(port: port, pid: agent.pid)
        repeat {
            let rate = try ChurnBenchmark.burst(traffic, connections: options.burst) { pid in
                comms.insert(Self.comm(of: pid))
                if cpu0 == nil {
                    cpu0 = Clock.processCPU(pid: agent.pid)
                    released = Clock.now()
                }
            }
            run.burstRates.append(rate)
            run.connections += options.burst
            run.bursts += 1
            let flood = try UDPBenchmark.flood(traffic, floodOptions) { pid in comms.insert(Self.comm(of: pid)) }
            run.floodRates.append(flood.rate)
            run.datagrams += flood.sentPackets
        } while Clock.now() - released < Double(options.loadSeconds)
        guard comms.count == 1, let name = comms.first else { throw BenchError("the generators' comm differed: \(comms.sorted())") }
        run.comm = name
        let commLabel = "comm=\"\(name)\""

        // 3. Counts: scrape until they reach what the load made, or stop moving.
        run.expected = EventCounts.burst(connections: run.connections)
        func counts(_ scrape: Scrape) -> (tcp: EventCounts, udp: Int, lost: Double, dropped: Double) {
            var tcp = EventCounts()
            for kind in TCPConnectionEvent.Kind.allCases {
                tcp[kind] = Int(scrape.sum("netevents_tcp_connections_total", ["event=\"\(kind.rawValue)\"", commLabel]))
            }
            let udp = Int(scrape.sum("netevents_udp_packets_total", ["direction=\"sent\"", commLabel]))
            return (tcp, udp, scrape.sum("netevents_lost_events_total", []), scrape.sum("netevents_dropped_events_total", []))
        }
        let start = counts(before)
        var latest = start
        let settleStart = Clock.now()
        ChurnBenchmark.settle(target: 1, quiet: 3, limit: 60) {
            if let answer = try? scrape(port: port), answer.status == 200 { latest = counts(answer) }
            var grown = EventCounts()
            for kind in TCPConnectionEvent.Kind.allCases { grown[kind] = latest.tcp[kind] - start.tcp[kind] }
            let done = grown == run.expected && latest.udp - start.udp == run.datagrams
            // A number that changes while the counts move, and 1 (the target) once they match.
            return done ? 1 : -(grown.total + latest.udp)
        }
        run.settle = Clock.now() - settleStart
        let cpu1 = Clock.processCPU(pid: agent.pid)
        run.window = Clock.now() - released
        guard let cpu0, let cpu1 else { throw failure("gone during the load") }
        run.cpu = cpu1 - cpu0
        (run.during, run.scraperFailures) = scraper.stop()
        for kind in TCPConnectionEvent.Kind.allCases { run.counted[kind] = latest.tcp[kind] - start.tcp[kind] }
        run.udpCounted = latest.udp - start.udp
        (run.lost, run.dropped) = (latest.lost - start.lost, latest.dropped - start.dropped)

        // 4. Steady memory, and one scrape timed.
        guard let steady = MemoryStatus.of(pid: agent.pid) else { throw failure("gone after the load") }
        (run.steadyRSS, run.steadyAnonymous, run.steadyFile, run.peak) = (steady.rss, steady.anonymous, steady.file, steady.peakRSS)
        let last = try scrape(port: port)
        (run.scrapeBytes, run.scrapeSeconds) = (last.bytes, last.seconds)

        // 5. SIGTERM, then the exit within the bound.
        let term = Clock.now()
        agent.signal(SIGTERM)
        run.exitStatus = agent.wait(timeout: stopBound)
        run.stopSeconds = Clock.now() - term
        run.stoppingLine = stopping.time.withLock { $0 }.map { $0 - term }
        stopped = true
        agent.output.waitForEnd(timeout: 5)
        if !run.exitedZero {
            let lines = agent.output.allKeptLines
            let after = lines.firstIndex { $0.contains("stopping the monitors") }.map { lines[($0 + 1)...] } ?? lines.suffix(5)[...]
            run.exitLines = Array(after.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.prefix(3))
        }
        return run
    }

    // MARK: - Section

    /// Other agents, tools and generators (another session's), which trace or make traffic too.
    static let othersPattern = "netevents serve|netevents-traffic|tcp-events|udp-events|tcp-top|tcplife"

    /// The processes `pgrep -af` finds for ``othersPattern``, this bench's children aside.
    static func others() -> [String] {
        guard let child = try? Child("/usr/bin/pgrep", ["-af", othersPattern]) else { return [] }
        child.output.waitForEnd(timeout: 10)
        child.wait(timeout: 5)
        let me = String(getpid())
        return child.output.allKeptLines.filter { !$0.isEmpty && !$0.contains("pgrep") && !$0.contains("nbagent-\(me)") }.map { String($0.prefix(100)) }
    }

    static func run(_ options: Options) throws {
        say("## agent")
        say("")
        let agentPath = try siblingExecutable("netevents")
        let generator = try siblingExecutable("netevents-traffic")
        // The generators' own name: a link whose file name is the comm (at most 15 characters).
        let traffic = "/var/tmp/nbagent-\(getpid())"
        unlink(traffic)
        guard symlink(generator, traffic) == 0 else { throw BenchError("symlink \(traffic): \(String(cString: strerror(errno)))") }
        defer { unlink(traffic) }
        say("`netevents serve --listen 127.0.0.1:PORT --interval \(options.interval)` as users run it (with its unit's environment, "
            + unitEnvironment.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "), scraped at /metrics; start-up to the first "
            + "scrape with both monitors up; then at least \(options.loadSeconds) s of `netevents-traffic tcp-burst --count \(options.burst)` and "
            + "`udp-flood --count \(options.flood) --size 64`, one after the other, scraped every second; then SIGTERM; \(options.runs) runs, "
            + "each a fresh agent; median (min–max) reported")
        say("the generators run as \(traffic) → \(generator), so their comm is \((traffic as NSString).lastPathComponent)")
        sayRuntimeLinkage([agentPath])
        for path in [agentPath, generator] {
            let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date).map { "\($0)" } ?? "?"
            say("using \(path) (built \(modified))")
        }
        var runs: [Run] = []
        var notes: [String] = []
        for index in 1...options.runs {
            if options.waitForQuiet, let note = PollBenchmark.waitForQuiet() { notes.append("run \(index): \(note)") }
            let before = others()
            let run = try measure(agentPath, traffic, options)
            let after = others()
            if !before.isEmpty || !after.isEmpty {
                notes.append("run \(index): also running at its start: \(before.isEmpty ? "nothing" : before.joined(separator: "; ")); "
                    + "at its end: \(after.isEmpty ? "nothing" : after.joined(separator: "; "))")
            }
            runs.append(run)
            let growth = run.rssGrowth
            say("run \(index) (load average at start \(run.load)): start-up \(format(run.startup * 1000, 0)) ms (`serving` line at "
                + "\(run.serving.map { format($0 * 1000, 0) } ?? "?") ms, \(run.startupScrapes) scrapes tried), VmRSS \(megabytes(run.startupRSS)) MB, "
                + "VmHWM \(megabytes(run.startupPeak)) MB; load \(run.bursts) × (\(options.burst) connections + \(options.flood) datagrams) "
                + "= \(run.connections) connections (\(format(median(run.burstRates), 0)) conn/s median), \(run.datagrams) datagrams "
                + "(\(format(median(run.floodRates), 0))/s) in \(format(run.window, 1)) s; comm \(run.comm): TCP \(run.counted.summary(of: run.expected)), "
                + "UDP sent \(run.udpCounted)/\(run.datagrams), lost \(Int(run.lost)), dropped \(Int(run.dropped)) (settled after \(format(run.settle, 2)) s): "
                + "\(run.exact ? "exact" : "**not exact**"); agent CPU \(format(run.cpu, 3)) s = \(format(run.cpuMicrosecondsPerEvent)) µs/TCP event, "
                + "\(format(run.cpuPercent, 1))% of a core; VmRSS over the window \(megabytes(growth.first)) → \(megabytes(growth.middle)) → \(megabytes(growth.last)) MB "
                + "(every 10 s: \(stride(from: 0, to: run.during.count, by: 10).map { megabytes(run.during[$0].rssKB) }.joined(separator: " "))), "
                + "(\(run.during.count) scrapes, median \(format(median(run.during.map(\.seconds)) * 1000, 1)) ms, max "
                + "\(format((run.during.map(\.seconds).max() ?? 0) * 1000, 1)) ms\(run.scraperFailures.isEmpty ? "" : ", \(run.scraperFailures.count) failed: \(run.scraperFailures[0])")); "
                + "steady VmRSS \(megabytes(run.steadyRSS)) MB (anon \(megabytes(run.steadyAnonymous)), file \(megabytes(run.steadyFile))), "
                + "VmHWM \(megabytes(run.peak)) MB; last scrape \(run.scrapeBytes) bytes in \(format(run.scrapeSeconds * 1000, 1)) ms; "
                + "SIGTERM → `stopping the monitors` after \(run.stoppingLine.map { format($0 * 1000, 0) } ?? "?") ms, "
                + "\(run.exitDescription) after \(format(run.stopSeconds * 1000, 0)) ms"
                + (run.exitLines.isEmpty ? "" : " (it printed: \(run.exitLines.joined(separator: " | ")))"))
            if !run.exitedZero {
                notes.append("run \(index): SIGTERM → \(run.exitDescription) after \(format(run.stopSeconds * 1000, 0)) ms, the agent printed: \(run.exitLines.joined(separator: " | "))")
            }
            if !run.exact { notes.append("run \(index): counts not exact, its load figures left out") }
        }
        func spread(_ values: [Double], _ decimals: Int, scale: Double = 1) -> String { ToolBenchmark.spread(values, decimals, scale: scale) }
        let megabyte = 1.0 / 1024
        // Figures of the load stand on its counts: only the runs whose counts were exact give them.
        let counted = runs.filter(\.exact)
        let exactRuns = counted.count
        func loadFigure(_ figure: () -> String) -> String { counted.isEmpty ? "not reported: no run's counts were exact" : figure() }
        let zeroExits = runs.filter(\.exitedZero).count
        let loads = runs.map(\.load).joined(separator: "; ")
        say("")
        say("Median (min–max) of \(runs.count) runs (the load's figures: of the \(exactRuns) whose counts were exact); "
            + "load average at the start of each run: \(loads).")
        say("")
        say("| figure | measured |")
        say("| --- | ---: |")
        say("| start-up: spawn → first scrape with both `netevents_monitor_up` 1 | \(spread(runs.map(\.startup), 0, scale: 1000)) ms |")
        say("| spawn → `serving http://.../metrics` on standard error | \(spread(runs.map { $0.serving ?? 0 }, 0, scale: 1000)) ms |")
        say("| RSS at that scrape (VmRSS) / peak so far (VmHWM) | \(spread(runs.map { Double($0.startupRSS) }, 1, scale: megabyte)) / "
            + "\(spread(runs.map { Double($0.startupPeak) }, 1, scale: megabyte)) MB |")
        say("| load: connections / datagrams in the window (window) | \(spread(runs.map { Double($0.connections) }, 0)) / "
            + "\(spread(runs.map { Double($0.datagrams) }, 0)) (\(spread(runs.map(\.window), 1)) s) |")
        say("| generator's events counted == made (connect, accept, close; UDP sent), lost + dropped 0 | \(exactRuns) of \(runs.count) runs |")
        say("| steady RSS: VmRSS after the load (anon / file) | " + loadFigure { "\(spread(counted.map { Double($0.steadyRSS) }, 1, scale: megabyte)) MB "
            + "(\(spread(counted.map { Double($0.steadyAnonymous) }, 1, scale: megabyte)) / \(spread(counted.map { Double($0.steadyFile) }, 1, scale: megabyte)))" } + " |")
        say("| VmRSS at the load's first scrape → half-way → last scrape | " + loadFigure { "\(spread(counted.map { Double($0.rssGrowth.first) }, 1, scale: megabyte)) → "
            + "\(spread(counted.map { Double($0.rssGrowth.middle) }, 1, scale: megabyte)) → \(spread(counted.map { Double($0.rssGrowth.last) }, 1, scale: megabyte)) MB" } + " |")
        say("| peak RSS (VmHWM) at the end | " + loadFigure { "\(spread(counted.map { Double($0.peak) }, 1, scale: megabyte)) MB" } + " |")
        say("| agent CPU per TCP event (4 per connection) / share of a core over the window | " + loadFigure { "\(spread(counted.map(\.cpuMicrosecondsPerEvent), 2)) µs / "
            + "\(spread(counted.map(\.cpuPercent), 1)) %" } + " |")
        say("| one scrape after the load: body size / wall time | " + loadFigure { "\(spread(counted.map { Double($0.scrapeBytes) }, 0)) bytes / "
            + "\(spread(counted.map(\.scrapeSeconds), 1, scale: 1000)) ms" } + " |")
        say("| scrapes during the load: median wall time per run | " + loadFigure { "\(spread(counted.map { median($0.during.map(\.seconds)) }, 1, scale: 1000)) ms" } + " |")
        say("| SIGTERM → `stopping the monitors` logged / → exit; exit 0 within \(Int(stopBound)) s | "
            + "\(spread(runs.map { $0.stoppingLine ?? 0 }, 0, scale: 1000)) / \(spread(runs.map(\.stopSeconds), 0, scale: 1000)) ms; \(zeroExits) of \(runs.count) runs |")
        say("")
        say("notes: " + (notes.isEmpty ? (options.waitForQuiet ? "quiet before every run" : "not checked (--no-wait)") : notes.joined(separator: "; ")))
        say("")

        var result: [String: String] = [
            "runs": String(runs.count), "load_seconds": String(options.loadSeconds), "interval": String(options.interval),
            "exact_runs": String(exactRuns), "exit0_runs": String(zeroExits), "load": runs.first.map { $0.load.replacingOccurrences(of: " ", with: "/") } ?? "?",
        ]
        func add(_ key: String, _ values: [Double], _ decimals: Int) {
            result[key] = format(median(values), decimals)
            result[key + "_min"] = format(values.min() ?? 0, decimals)
            result[key + "_max"] = format(values.max() ?? 0, decimals)
        }
        add("startup_ms", runs.map { $0.startup * 1000 }, 0)
        add("startup_rss_kb", runs.map { Double($0.startupRSS) }, 0)
        add("startup_peak_kb", runs.map { Double($0.startupPeak) }, 0)
        if !counted.isEmpty {
            add("steady_kb", counted.map { Double($0.steadyRSS) }, 0)
            add("peak_kb", counted.map { Double($0.peak) }, 0)
            add("cpu_us", counted.map(\.cpuMicrosecondsPerEvent), 3)
            add("scrape_bytes", counted.map { Double($0.scrapeBytes) }, 0)
            add("scrape_ms", counted.map { $0.scrapeSeconds * 1000 }, 2)
        }
        add("stop_ms", runs.map { $0.stopSeconds * 1000 }, 0)
        sayResult("agent", result)
    }

    /// The `all` summary's rows.
    static func summaryRows(_ result: [String: String]) -> [String] {
        guard let runs = result["runs"] else { return [] }
        func spread(_ key: String, _ decimals: Int, scale: Double = 1) -> String {
            let value = { (suffix: String) in result[key + suffix].flatMap(Double.init).map { format($0 * scale, decimals) } ?? "?" }
            return "\(value("")) (\(value("_min"))–\(value("_max")))"
        }
        let megabyte = 1.0 / 1024
        let exact = result["exact_runs"] == runs
        return [
            "| `netevents serve` (median (min–max) of \(runs) runs): start-up to both monitors up, RSS / VmHWM then | - | "
                + "\(spread("startup_ms", 0)) ms, \(spread("startup_rss_kb", 1, scale: megabyte)) / \(spread("startup_peak_kb", 1, scale: megabyte)) MB | - |",
            "| `netevents serve` after \(result["load_seconds"] ?? "?") s of churn + UDP, scraped every second: steady RSS / VmHWM, CPU per TCP event, "
                + "one scrape | counts exact | \(spread("steady_kb", 1, scale: megabyte)) / \(spread("peak_kb", 1, scale: megabyte)) MB, "
                + "\(spread("cpu_us", 2)) µs, \(spread("scrape_bytes", 0)) bytes in \(spread("scrape_ms", 1)) ms; counts exact in "
                + "\(result["exact_runs"] ?? "?") of \(runs) runs | \(exact ? "yes" : "**no**") |",
            "| `netevents serve`: SIGTERM → exit 0 | within \(Int(stopBound)) s | \(spread("stop_ms", 0)) ms; \(result["exit0_runs"] ?? "?") of \(runs) runs | "
                + "\(result["exit0_runs"] == runs ? "yes" : "**no**") |",
        ]
    }
}
