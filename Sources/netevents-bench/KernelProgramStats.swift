import CLibBPF
import Foundation
import Glibc

/// Kernel-side cost of eBPF programs: nanoseconds per run, from the kernel's own accounting.
///
/// `BPF_ENABLE_STATS` (what `sysctl kernel.bpf_stats_enabled=1` sets, held only while ``enable()``'s
/// descriptor is open, so nothing is left switched on) makes the kernel time every program run;
/// `bpf_prog_info` then carries `run_time_ns` and `run_cnt`. The programs of a process are found
/// by the `prog_id` lines of `/proc/PID/fdinfo/*` and opened by id (root), so the same method
/// measures our in-process monitor and an external tracer such as tcplife. The time is what the
/// program itself ran, in the context of the traced process (the traffic generator): it shows in
/// that process's speed, not in the tracer's CPU.
enum KernelProgramStats {
    struct Program: Hashable {
        var id: UInt32
        var name: String
        var runTimeNanoseconds: UInt64
        var runs: UInt64
    }

    struct Delta {
        var name: String
        var runs: UInt64
        var nanoseconds: UInt64
        var nanosecondsPerRun: Double { runs > 0 ? Double(nanoseconds) / Double(runs) : 0 }
    }

    /// Turns run-time statistics on until the returned descriptor is closed.
    static func enable() throws -> Int32 {
        let fd = bpf_enable_stats(BPF_STATS_RUN_TIME)
        guard fd >= 0 else { throw BenchError("BPF_ENABLE_STATS failed: \(String(cString: strerror(-fd))) (needs root, Linux 5.8+)") }
        return fd
    }

    /// The eBPF programs `pid` holds open, with their counters now.
    static func programs(of pid: Int32) -> [Program] {
        let directory = "/proc/\(pid)/fdinfo"
        var ids = Set<UInt32>()
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            guard let text = try? String(contentsOfFile: "\(directory)/\(entry)", encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where line.hasPrefix("prog_id:") {
                if let id = UInt32(line.dropFirst(8).trimmingCharacters(in: .whitespaces)) { ids.insert(id) }
            }
        }
        return ids.sorted().compactMap(program)
    }

    static func program(_ id: UInt32) -> Program? {
        let fd = bpf_prog_get_fd_by_id(id)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = bpf_prog_info()
        var length = UInt32(MemoryLayout<bpf_prog_info>.size)
        guard bpf_obj_get_info_by_fd(fd, &info, &length) == 0 else { return nil }
        let name = withUnsafeBytes(of: info.name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return Program(id: id, name: name, runTimeNanoseconds: info.run_time_ns, runs: info.run_cnt)
    }

    /// What ran between two snapshots of the same process, per program, busiest first.
    static func delta(from before: [Program], to after: [Program]) -> [Delta] {
        let start = Dictionary(before.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return after.compactMap { program -> Delta? in
            let earlier = start[program.id]
            let runs = program.runs - (earlier?.runs ?? 0)
            guard runs > 0 else { return nil }
            return Delta(name: program.name, runs: runs, nanoseconds: program.runTimeNanoseconds - (earlier?.runTimeNanoseconds ?? 0))
        }.sorted { $0.nanoseconds > $1.nanoseconds }
    }

    /// `name N ns × R` (ns per run × runs per `unit`) for each program, and the eBPF time per
    /// `unit` (a connection, a datagram) over `count` of them.
    static func describe(_ deltas: [Delta], per count: Int, unit: String) -> String {
        let perUnit = Double(deltas.reduce(0) { $0 + $1.nanoseconds }) / Double(max(count, 1))
        let parts = deltas.map { delta in
            "\(delta.name.isEmpty ? "?" : delta.name) \(format(delta.nanosecondsPerRun, 0)) ns × \(format(Double(delta.runs) / Double(max(count, 1)), 1))"
        }
        let total = perUnit >= 1000 ? "\(format(perUnit / 1000, 2)) µs" : "\(format(perUnit, 0)) ns"
        return parts.joined(separator: ", ") + " = \(total)/\(unit)"
    }
}
