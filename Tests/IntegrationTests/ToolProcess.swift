import BCCRuntime
import CLibBPF
import Foundation
import Glibc
import XCTest

/// A command-line tool of this package run as a child, spawned and reaped directly (Foundation's
/// `Process` can miss a child's exit while another child it started runs): its standard error
/// collected line by line, its standard output on a pipe or discarded.
final class ToolProcess: @unchecked Sendable {
    let pid: pid_t
    /// The lines of standard error so far.
    let errors: Collector<String>
    /// The lines of standard output so far (empty when it was discarded).
    let output: Collector<String>
    private var status: Int32?

    /// Starts `arguments[0] ARGUMENTS...` with SIGINT, SIGTERM and SIGPIPE at their default action
    /// and no signal blocked (whatever this test process has), so only what the command line
    /// itself sets up (`trap "" INT`, `setpriv`) differs from a shell's child.
    /// - Parameter keepOutput: collect standard output rather than discarding it.
    init(_ arguments: [String], keepOutput: Bool = false) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var errorPipe: [Int32] = [0, 0]
        var outputPipe: [Int32] = [-1, -1]
        guard pipe(&errorPipe) == 0, !keepOutput || pipe(&outputPipe) == 0 else { throw TrafficError.notBuilt("pipe: \(errno)") }
        // Not inherited by processes other threads start meanwhile: they would hold the write ends open.
        for descriptor in errorPipe + outputPipe where descriptor >= 0 { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if keepOutput {
            posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, errorPipe[1], 2)

        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // A fresh process's signals: the test runner's mask or ignored signals must not decide.
        let spawned = ChildProcess.withFreshSignals { posix_spawn(&pid, arguments[0], &actions, &$0, argv, environ) }
        close(errorPipe[1])
        if keepOutput { close(outputPipe[1]) }
        guard spawned == 0 else {
            close(errorPipe[0])
            if keepOutput { close(outputPipe[0]) }
            throw TrafficError.notBuilt("posix_spawn \(arguments[0]): \(spawned)")
        }
        self.pid = pid
        errors = Collector(lines: FileHandle(fileDescriptor: errorPipe[0], closeOnDealloc: true))
        output = keepOutput ? Collector(lines: FileHandle(fileDescriptor: outputPipe[0], closeOnDealloc: true)) : Collector()
    }

    /// Sends `number` to the process.
    func signal(_ number: Int32) { kill(pid, number) }

    /// The wait status once the process has ended, waiting up to `seconds` for it; nil if it
    /// still runs then.
    func waitForExit(seconds: Double) -> Int32? {
        if let status { return status }
        let deadline = Date().addingTimeInterval(seconds)
        var raw: Int32 = 0
        repeat {
            let reaped = waitpid(pid, &raw, WNOHANG)
            if reaped == pid {
                status = raw
                return raw
            }
            if reaped < 0 && errno != EINTR { return nil }
            usleep(5_000)
        } while Date() < deadline
        return nil
    }

    /// A fresh `/proc/PID/status` field as a mask (`SigBlk`, `SigCgt`, `SigIgn`...); nil once the
    /// process has gone.
    func statusMask(_ field: String) -> UInt64? { Self.statusMask(field, of: pid) }

    /// The `field` mask of `/proc/PID/status` of any process; nil once it has gone.
    static func statusMask(_ field: String, of pid: pid_t) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return nil }
        return UInt64(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces), radix: 16)
    }

    /// The process's name (`/proc/PID/comm`), nil once it has gone.
    var name: String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .newlines)
    }

    /// The files the process has mapped (`/proc/PID/maps`), each once; empty once it has gone.
    var mappedFiles: Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8) else { return [] }
        return Set(text.split(separator: "\n").compactMap { line in line.firstIndex(of: "/").map { String(line[$0...]) } })
    }

    /// The process's state letter (`R`, `S`, `T` for stopped...), from `/proc/PID/stat`.
    var state: Character? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        return text[close...].dropFirst(2).first
    }

    deinit {
        if waitForExit(seconds: 0) == nil {
            kill(pid, SIGKILL)
            _ = waitForExit(seconds: 10)
        }
    }
}

/// The bit of `number` in a `/proc/PID/status` signal mask.
func signalBit(_ number: Int32) -> UInt64 { 1 << UInt64(number - 1) }

/// The eBPF programs loaded in the kernel, by id (ids only grow).
enum LoadedPrograms {
    /// The highest program id now, 0 when none is loaded.
    static var highestID: UInt32 { ids().last ?? 0 }

    /// Every loaded program's id, in order. The corresponding C function is `bpf_prog_get_next_id` (root).
    static func ids() -> [UInt32] {
        var ids: [UInt32] = []
        var id: UInt32 = 0
        while bpf_prog_get_next_id(id, &id) == 0 { ids.append(id) }
        return ids
    }

    /// The ids some live process holds a descriptor of (a program's own, or a link's), from the
    /// `prog_id` lines of `/proc/*/fdinfo/*`.
    static func heldIDs() -> Set<UInt32> {
        var held = Set<UInt32>()
        for process in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(process) != nil {
            let directory = "/proc/\(process)/fdinfo"
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                guard let text = try? String(contentsOfFile: "\(directory)/\(entry)", encoding: .utf8), text.contains("prog_id:") else { continue }
                for line in text.split(separator: "\n") where line.hasPrefix("prog_id:") {
                    if let id = UInt32(line.dropFirst("prog_id:".count).trimmingCharacters(in: .whitespaces)) { held.insert(id) }
                }
            }
        }
        return held
    }

    /// Programs loaded after `baseline` (an earlier ``highestID``) that are still in the kernel
    /// with no process holding them (so kept by an attachment that outlived its process, or a
    /// pin), waiting up to `seconds` for the kernel to free those whose process just ended (it
    /// frees them asynchronously). Programs other processes (other tests) hold are not counted.
    static func orphans(since baseline: UInt32, seconds: Double = 10) -> [UInt32] {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let newer = ids().filter { $0 > baseline }
            let held = newer.isEmpty ? [] : heldIDs()
            let orphans = newer.filter { !held.contains($0) }
            if orphans.isEmpty || Date() >= deadline { return orphans }
            usleep(50_000)
        }
    }
}
