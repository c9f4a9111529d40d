import Foundation
import Synchronization
import XCTest

/// `tcp-top` as users run it: in a real terminal (tmux, 80 x 24) with keys pressed, and with
/// `--json` against a transfer of known size.
extension ToolTests {
    /// A tmux server of the test's own (its own socket), with one 80 x 24 window running a shell.
    final class Tmux {
        let tmux: String
        let socket = "netevents-test-\(getpid())"

        init() throws {
            tmux = try NetworkNamespace.tool("tmux")
            // Spawned and reaped directly: the server this starts outlives its client, holding
            // /dev/null and nothing of ours, which Foundation's Process does not wait out.
            let arguments = [tmux, "-L", socket, "new-session", "-d", "-s", "top", "-x", "80", "-y", "24", "env PS1='$ ' bash --norc --noprofile"]
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            for descriptor: Int32 in [0, 1, 2] {
                posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY, 0)
            }
            var pid: pid_t = 0
            let argv = arguments.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            guard posix_spawn(&pid, tmux, &actions, nil, argv, environ) == 0 else {
                throw NetworkNamespace.NamespaceError.failed("posix_spawn \(tmux)")
            }
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            guard status == 0 else { throw NetworkNamespace.NamespaceError.failed("tmux new-session: status \(status)") }
        }

        @discardableResult
        func run(_ arguments: [String]) throws -> String { try NetworkNamespace.run(tmux, ["-L", socket] + arguments) }

        /// Types `keys` (tmux key names: `Enter`, `C-c`, or text).
        func send(_ keys: String...) throws { try run(["send-keys", "-t", "top"] + keys) }

        /// What the window shows now.
        var screen: String { (try? run(["capture-pane", "-p", "-t", "top"])) ?? "" }

        /// Waits until the screen satisfies `condition`; returns the screen (the last one seen on timeout).
        @discardableResult
        func wait(timeout: TimeInterval = 20, until condition: (String) -> Bool) -> String {
            let deadline = Date().addingTimeInterval(timeout)
            var text = screen
            while !condition(text) && Date() < deadline {
                usleep(50_000)
                text = screen
            }
            return text
        }

        deinit { _ = try? run(["kill-server"]) }
    }

    /// A view that refreshes in place with this machine's loopback traffic; p, s and q work; q and
    /// Ctrl-C both leave the terminal as it was (the shell's screen back, echo and canonical
    /// input on) and exit 0.
    func testTCPTopRefreshesInARealTerminalAndLeavesItAsItWas() throws {
        try requireBPF()
        let port = freePort()
        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "\(1 << 40)", "--expect-reset"])
        _ = try server.nextLine()
        let client = try LoopbackClient(port: port)
        let sending = Atomic<Bool>(true)
        let stopped = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            while sending.load(ordering: .relaxed) {
                client.send(64 * 1024)
                usleep(20_000)
            }
            stopped.signal()
        }
        defer {
            sending.store(false, ordering: .relaxed)
            stopped.wait()
            client.reset()
            server.waitForSuccess()
        }
        let terminal = try Tmux()
        let tool = try builtExecutable("tcp-top").path
        // Quoted so that the typed command (which the shell shows) holds neither marker itself.
        let command = "\(tool) --port \(port) --interval 0.5; echo EXIT\"\"=$?; stty -a | grep -o -- '-\\?ican[o]n'"
        try terminal.send("echo BEFORE-TOP", "Enter")
        for (round, quit) in ["q", "C-c"].enumerated() {
            try terminal.send(command, "Enter")
            // A measured refresh: the client's row (remote 127.0.0.1:PORT) with a sending rate.
            let frame = terminal.wait { screen in
                screen.split(separator: "\n").contains { line in
                    let fields = line.split(separator: " ")
                    return fields.count == 8 && fields[3] == "127.0.0.1:\(port)" && !["0", "-"].contains(fields[4])
                }
            }
            let lines = frame.split(separator: "\n")
            XCTAssertTrue(lines.first?.hasPrefix("tcp-top") ?? false, frame)
            let header = try XCTUnwrap(lines.first { $0.contains("PID") }, frame)
            for title in ["COMM", "LPORT", "REMOTE", "TX/s", "RX/s", "SRTT_MS", "RETR"] {
                XCTAssertTrue(header.contains(title), "\(title) within 80 columns: \(header)")
            }
            XCTAssertTrue(lines.contains { $0.split(separator: " ").dropFirst(2).first == Substring("\(port)") }, "the server's row: \(frame)")
            XCTAssertFalse(frame.contains("BEFORE-TOP"), "full screen: the shell's lines are hidden")
            if round == 0 {
                try terminal.send("p")
                let processes = terminal.wait { $0.contains("CONNS") && $0.contains("view: processes") }
                XCTAssertTrue(processes.contains("CONNS"), processes)
                XCTAssertTrue(
                    processes.split(separator: "\n").contains { $0.split(separator: " ").first == Substring("\(server.pid)") },
                    "the server's process: \(processes)")
                try terminal.send("s")
                XCTAssertTrue(terminal.wait { $0.contains("sort: sent") }.contains("sort: sent"))
                try terminal.send("p")
            }
            try terminal.send(quit)
            // This round's exit status and stty line, after the earlier rounds'.
            let after = terminal.wait { screen in
                screen.components(separatedBy: "EXIT=").count == round + 2 && screen.components(separatedBy: "icanon").count == round + 2
            }
            XCTAssertEqual(after.components(separatedBy: "EXIT=0").count, round + 2, "\(quit) ends tcp-top with status 0: \(after)")
            XCTAssertTrue(after.contains("BEFORE-TOP"), "the shell's screen is back: \(after)")
            XCTAssertEqual(after.components(separatedBy: "icanon").count, round + 2, "stty ran: \(after)")
            XCTAssertFalse(after.contains("-icanon"), "canonical input is back on: \(after)")
            XCTAssertFalse(after.contains("view: "), "no frame is left on the shell's screen: \(after)")
        }
    }

    /// `tcp-top --json`: rows of a known transfer add up to it exactly, with rates.
    func testTCPTopJSONRowsAddUpToAKnownTransfer() throws {
        try requireBPF()
        let port = freePort()
        let bytes = 3_000_000
        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "\(bytes)", "--expect-reset"])
        _ = try server.nextLine()
        let (tool, output, _) = try startTracing("tcp-top", ["--json", "--interval", "0.3", "--port", "\(port)", "--rows", "0"])
        defer { if tool.isRunning { tool.interrupt() } }
        let lines = Collector<String>(lines: output.fileHandleForReading)
        let client = try LoopbackClient(port: port)
        client.send(bytes)
        XCTAssertEqual(try server.nextLine()["received"], "\(bytes)")
        func received(_ lines: [String]) -> Int {
            lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .filter { ($0["sport"] as? NSNumber)?.intValue == Int(port) }
                .compactMap { ($0["rx_bytes"] as? NSNumber)?.intValue }.reduce(0, +)
        }
        let seen = lines.wait { received($0) >= bytes }
        client.reset()
        server.waitForSuccess()
        tool.interrupt()
        XCTAssertTrue(waitForExit(tool, seconds: 10))
        XCTAssertEqual(tool.terminationStatus, 0)
        XCTAssertEqual(received(seen), bytes, "the server's rows add up to what it received")
        let rows = seen.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertTrue(rows.allSatisfy { $0["event"] as? String == "connection" })
        XCTAssertTrue(rows.contains { ($0["rx_bytes_per_s"] as? NSNumber)?.intValue ?? 0 > 0 && ($0["pid"] as? NSNumber)?.int32Value == server.pid })
    }
}
