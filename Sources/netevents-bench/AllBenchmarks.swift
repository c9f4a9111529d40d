import Foundation
import Glibc

/// `all`: runs every benchmark in a fresh process (so one's threads, pinning and memory cannot
/// touch another's figures), echoes their output, and ends with one table against the targets.
enum AllBenchmarks {
    static func run(arguments: [String]) throws {
        let me = try siblingExecutable("netevents-bench")
        func pass(_ names: [String]) -> [String] {
            var passed: [String] = []
            for name in names {
                if let index = arguments.firstIndex(of: name) {
                    passed.append(name)
                    let takesValue = !["--no-tcplife", "--install-tcplife", "--variants", "--no-pin", "--no-wait"].contains(name)
                    if takesValue, index + 1 < arguments.count { passed.append(arguments[index + 1]) }
                }
            }
            return passed
        }
        say("# netevents-bench all")
        say("")
        say(Machine.description)
        say("")
        var results: [String: [String: String]] = [:]
        for (command, options) in [
            ("startup", pass(["--runs"])),
            ("decode", pass(["--count", "--batch", "--runs", "--no-pin"])),
            ("tcp-churn", pass(["--connections", "--runs", "--no-tcplife", "--install-tcplife", "--variants", "--tcplife-headers"])),
            ("udp", pass(["--datagrams", "--runs"])),
            ("tools", pass(["--connections", "--datagrams", "--runs"])),
            ("poll", pass(["--open", "--runs", "--window", "--interval", "--no-wait"])),
            ("agent", pass(["--runs", "--load-seconds", "--agent-interval", "--burst", "--flood", "--no-wait"])),
        ] {
            let child = try Child(me, [command] + options) { line in say(String(line)) }
            child.output.waitForEnd(timeout: 1800)
            let status = child.wait(timeout: 10)
            guard status == 0 else { throw BenchError("`\(command)` failed with status \(status)") }
            for line in child.output.lastLines where line.hasPrefix("RESULT ") {
                let values = keyValues(line)
                if let section = values["section"] { results[section] = values }
            }
        }
        say("")
        say(summary(results))
    }

    static func summary(_ results: [String: [String: String]]) -> String {
        let churn = results["churn"] ?? [:]
        let decode = results["decode"] ?? [:]
        let startup = results["startup"] ?? [:]
        let udp = results["udp"] ?? [:]
        let tools = results["tools"] ?? [:]
        func double(_ table: [String: String], _ key: String) -> Double? { table[key].flatMap(Double.init) }
        func mark(_ ok: Bool?) -> String { ok.map { $0 ? "yes" : "**no**" } ?? "?" }

        var rows: [String] = []
        rows.append("| figure | target | measured | met |")
        rows.append("| --- | --- | --- | --- |")
        let connections = churn["connections"] ?? "?"
        let skipped = churn["tcplife_skipped"].map { "; tcplife skipped (\($0.replacingOccurrences(of: "_", with: " ")), see the tcp-churn output)" } ?? ""
        if let delivered = double(churn, "ours_delivered") {
            let theirs = double(churn, "tcplife_delivered").map { "; tcplife \(format($0 * 100, 2))%, \(kinds(churn, "tcplife") ?? "?"): closes only" } ?? skipped
            rows.append("| TCP events delivered at the generator's top speed (\(connections) connections; 4 per connection by default: connect, accept, 2 closes) | 100%, every kind | "
                + "\(format(delivered * 100, 2))%, median per kind \(kinds(churn, "ours") ?? "?"); \(churn["ours_exact_runs"] ?? "?") of \(churn["runs"] ?? "?") runs exact; "
                + "lost \(churn["ours_lost"] ?? "?"), dropped \(churn["ours_dropped"] ?? "?")\(theirs) | "
                + "\(mark(churn["ours_kinds"].map { $0 == churn["ours_expected_kinds"] } ?? (delivered >= 1))) |")
        }
        if let ratio = double(churn, "ours_ratio") {
            let theirs = double(churn, "tcplife_ratio").map { "; tcplife \(format($0))" } ?? ""
            rows.append("| generator speed traced / untraced | ≥ 0.95 | \(format(ratio)) (\(churn["ours_rate"] ?? "?") / \(churn["untraced_rate"] ?? "?") conn/s)\(theirs) | \(mark(ratio >= 0.95)) |")
        }
        if let cpu = double(churn, "ours_cpu_us") {
            let perConnection = { (tracer: String) in double(churn, tracer + "_cpu_us_per_conn").map { " (\(format($0)) µs per connection)" } ?? "" }
            let theirs = double(churn, "tcplife_cpu_us").map { "; tcplife \(format($0)) µs\(perConnection("tcplife"))" } ?? ""
            let latency = churn["ours_latency_p50_ms"].map { "; drainInterval 2 ms: close → callback median \($0) ms, p99 \(churn["ours_latency_p99_ms"] ?? "?") ms" } ?? ""
            rows.append("| tracer CPU per TCP event (and per connection: 4 events by default, 2 before connect and accept events) | ≤ 2 µs per event | "
                + "\(format(cpu)) µs\(perConnection("ours"))\(latency)\(theirs) | \(mark(cpu <= 2)) |")
        }
        if let ratio = double(udp, "ratio") {
            rows.append("| UDP 64-byte sendto loop traced / untraced (\(udp["datagrams"] ?? "?") datagrams) | ≥ 0.95 | "
                + "\(format(ratio)) (\(udp["traced_rate"] ?? "?") / \(udp["untraced_rate"] ?? "?") datagrams/s) | \(mark(ratio >= 0.95)) |")
            if let bare = double(udp, "ratio_without_peers") {
                rows.append("| the same loop with the peers of unconnected sends off (`UDPKind.Options.peers = false`, `udp-events --no-peers`) | - | "
                    + "\(format(bare)) (\(udp["counted_runs_without_peers"] ?? "?") of \(udp["runs"] ?? "?") runs counted exactly) | - |")
            }
            let exact = udp["counted_runs"] != nil && udp["counted_runs"] == udp["runs"]
            rows.append("| UDP datagrams and bytes counted == sent | exact | \(exact ? "yes" : "**no**"), \(udp["counted_runs"] ?? "?") of \(udp["runs"] ?? "?") runs "
                + "(median run \(udp["counted_packets"] ?? "?") / \(udp["sent_packets"] ?? "?") datagrams, \(udp["counted_bytes"] ?? "?") / \(udp["sent_bytes"] ?? "?") bytes) | \(mark(exact)) |")
            rows.append("| UDP tracer CPU (bench process, getrusage) | - | \(udp["cpu_s"] ?? "?") s = \(format(double(udp, "cpu_percent") ?? 0)) % of a core "
                + "(\(format(double(udp, "cpu_ns_per_datagram") ?? 0, 1)) ns/datagram) | - |")
        }
        let largest = decode["batches"].map { $0.split(separator: ",").compactMap { Int($0) }.max() ?? 256 } ?? 256
        if let callback = double(decode, "callback_b\(largest)"), let stream = double(decode, "stream_b\(largest)") {
            let best = min(callback, stream)
            let single = [("callback", double(decode, "callback_b1")), ("events()", double(decode, "stream_b1"))]
                .compactMap { name, value in value.map { "\(name) \(format($0 / 1e6)) M" } }
            let singles = largest != 1 && !single.isEmpty ? "; batches of 1: " + single.joined(separator: ", ") : ""
            rows.append("| decode + deliver (MockSampleSource, batches of \(largest), one core) | ≥ 5 M events/s/core | "
                + "callback \(format(callback / 1e6)) M, events() \(format(stream / 1e6)) M\(singles) | "
                + "\(mark(best >= 5e6))\(callback >= 5e6 && stream < 5e6 ? " (callback only)" : "")\(stream >= 5e6 && callback < 5e6 ? " (events() only)" : "") |")
        }
        if let first = double(startup, "first_event_ms") {
            rows.append("| start to first event | ≤ 1 s | \(format(first / 1000)) s (attached after \(format((double(startup, "attach_ms") ?? 0) / 1000)) s) | \(mark(first <= 1000)) |")
        }
        if let steady = double(startup, "steady_kb") {
            rows.append("| steady RSS | ≤ 50 MB | \(megabytes(Int(steady))) MB (peak \(megabytes(Int(double(startup, "peak_kb") ?? 0))) MB) | \(mark(steady <= 50 * 1024)) |")
        }
        if let both = double(startup, "both_steady_kb") {
            rows.append("| TCP and UDP monitors in one process: steady / peak RSS, both attached after | - | "
                + "\(megabytes(Int(both))) / \(megabytes(Int(double(startup, "both_peak_kb") ?? 0))) MB, \(format((double(startup, "both_attach_ms") ?? 0) / 1000)) s | - |")
        }
        if let ours = double(churn, "ours_kernel_us_per_conn") {
            let theirs = double(churn, "tcplife_kernel_us_per_conn").map { "; tcplife \(format($0, 2)) µs" } ?? ""
            rows.append("| TCP kernel side: eBPF time per connection (tcp-burst, BPF_ENABLE_STATS) | - | \(format(ours, 2)) µs\(theirs) | - |")
        }
        if let perDatagram = double(udp, "kernel_ns_per_datagram") {
            rows.append("| UDP kernel side: eBPF time per datagram (udp-flood, BPF_ENABLE_STATS) | - | \(format(perDatagram, 0)) ns | - |")
        }
        rows += toolRows(tools, mark: mark)
        rows += PollBenchmark.summaryRows(results["poll"] ?? [:])
        rows += AgentBenchmark.summaryRows(results["agent"] ?? [:])
        return rows.joined(separator: "\n")
    }

    /// A tracer's events by kind from a RESULT line (`KEY_kinds` against `KEY_expected_kinds`):
    /// "80000/80000 (connect 20000, accept 20000, close 40000)"; nil when missing.
    static func kinds(_ table: [String: String], _ key: String) -> String? {
        guard let counted = table[key + "_kinds"].flatMap(EventCounts.init(resultValue:)),
            let expected = table[key + "_expected_kinds"].flatMap(EventCounts.init(resultValue:))
        else { return nil }
        return counted.summary(of: expected)
    }

    /// The `tools` section's rows, against the targets of the tools as users run them: `tcp-events
    /// --json` to a file at most 2 µs of CPU per event with the burst at least 0.95 of its untraced
    /// speed, the UDP loop at least 0.95 under `udp-events --json`, exact counts, nothing lost.
    static func toolRows(_ tools: [String: String], mark: (Bool?) -> String) -> [String] {
        guard !tools.isEmpty else { return [] }
        func value(_ key: String) -> String { tools[key] ?? "?" }
        /// "1.90 (1.80–2.00)", scaled and rounded; "?" when missing.
        func spread(_ key: String, _ decimals: Int, scale: Double = 1) -> String {
            guard let middle = tools[key].flatMap(Double.init) else { return "?" }
            let low = tools[key + "_min"].flatMap(Double.init).map { format($0 * scale, decimals) } ?? "?"
            let high = tools[key + "_max"].flatMap(Double.init).map { format($0 * scale, decimals) } ?? "?"
            return "\(format(middle * scale, decimals)) (\(low)–\(high))"
        }
        let runs = value("runs")
        let header = "(median (min–max) of \(runs) runs, load average at start \(value("load").replacingOccurrences(of: "/", with: " ")))"
        var rows: [String] = []
        func number(_ key: String) -> Double? { tools[key].flatMap(Double.init) }
        // The close-only row is there to compare with figures from before connect and accept
        // events; the targets are for what users run, the default.
        let closeOnly = "tcp-events --json --events close > FILE"
        for (key, name) in [("tcp_file", "tcp-events --json > FILE"), ("tcp_null", "tcp-events --json > /dev/null"), ("tcp_file_close_only", closeOnly)] {
            let targeted = key != "tcp_file_close_only"
            let met = number(key + "_ratio").flatMap { ratio in number(key + "_cpu_us").map { ratio >= 0.95 && $0 <= 2 } }
            rows.append("| `\(name)`\(targeted ? "" : " (close events only, for comparison)") during tcp-burst (\(value("connections")) connections) \(header): "
                + "burst traced / untraced, tool CPU per event and per connection | \(targeted ? "≥ 0.95, ≤ 2 µs per event" : "-") | "
                + "\(spread(key + "_ratio", 2)) (\(value(key + "_rate")) / \(value("tcp_untraced_rate")) conn/s); "
                + "\(spread(key + "_cpu_us", 2)) µs/event, \(spread(key + "_cpu_us_per_conn", 2)) µs/connection | \(targeted ? mark(met) : "-") |")
        }
        for (key, name, what) in [
            ("tcp_file", "tcp-events --json > FILE", "4 per connection: connect, accept, 2 closes"), ("tcp_file_close_only", closeOnly, "2 closes per connection"),
        ] {
            let exact = tools[key + "_exact_runs"] != nil && tools[key + "_exact_runs"] == runs
            rows.append("| `\(name)`: generator's events printed by kind == \(what) | exact | "
                + "\(value(key + "_exact_runs")) of \(runs) runs (median per kind \(kinds(tools, key) ?? "?")); "
                + "lost \(value(key + "_lost")), dropped \(value(key + "_dropped")) | \(mark(exact)) |")
        }
        let nullClean = tools["tcp_null_lost"].map { $0 == "0" && tools["tcp_null_dropped"] == "0" }
        rows.append("| `tcp-events --json > /dev/null`: lost / dropped (summary line, all runs) | 0 / 0 | "
            + "\(value("tcp_null_lost")) / \(value("tcp_null_dropped")) (median \(value("tcp_null_printed")) events printed, every process) | \(mark(nullClean)) |")
        rows.append("| `udp-events --json > FILE` during udp-flood (\(value("datagrams")) datagrams) \(header): flood traced / untraced, tool CPU per datagram "
            + "| ≥ 0.95 | \(spread("udp_file_ratio", 2)) (\(value("udp_file_rate")) / \(value("udp_untraced_rate")) datagrams/s); \(spread("udp_file_cpu_ns", 1)) ns/datagram "
            + "(CPU \(value("udp_file_cpu_s")) s over \(value("udp_file_window_s")) s) | \(mark(number("udp_file_ratio").map { $0 >= 0.95 })) |")
        let udpExact = tools["udp_file_exact_runs"] != nil && tools["udp_file_exact_runs"] == runs
        rows.append("| `udp-events --json > FILE`: flood's datagrams counted (tx_packets) == sent | exact | "
            + "\(value("udp_file_exact_runs")) of \(runs) runs (median \(value("udp_file_counted")) / \(value("udp_file_expected"))); "
            + "lost \(value("udp_file_lost")), dropped \(value("udp_file_dropped")) | \(mark(udpExact)) |")
        rows.append("| `dns-events --json > FILE` during udp-flood to a port that is not DNS: flood traced / untraced, tool CPU per datagram | - | "
            + "\(spread("dns_other_ratio", 2)); \(spread("dns_other_cpu_ns", 1)) ns/datagram; lost \(value("dns_other_lost")), dropped \(value("dns_other_dropped")) | - |")
        let dnsExact = tools["dns_flood_exact_runs"] != nil && tools["dns_flood_exact_runs"] == runs
        rows.append("| `dns-events --json --port P > FILE` during a flood of \(value("datagrams")) A queries to P: traced / untraced, tool CPU per event; "
            + "queries seen == sent | exact | \(spread("dns_flood_ratio", 2)) (\(value("dns_flood_rate")) / \(value("dns_untraced_rate")) queries/s); "
            + "\(spread("dns_flood_cpu_us", 2)) µs/event; \(value("dns_flood_exact_runs")) of \(runs) runs exact "
            + "(median \(value("dns_flood_counted")) / \(value("dns_flood_expected"))), lost \(value("dns_flood_lost")), dropped \(value("dns_flood_dropped")) | \(mark(dnsExact)) |")
        rows.append("| tool start-up: spawn → `Tracing` | - | tcp-events \(spread("tcp_file_startup_ms", 0)) ms, udp-events \(spread("udp_file_startup_ms", 0)) ms, "
            + "dns-events \(spread("dns_other_startup_ms", 0)) ms | - |")
        let megabyte = 1.0 / 1024
        rows.append("| tool RSS: peak (VmHWM) / steady (VmRSS at the end of the window) | - | "
            + "tcp-events > FILE \(spread("tcp_file_peak_kb", 1, scale: megabyte)) / \(spread("tcp_file_steady_kb", 1, scale: megabyte)) MB, "
            + "> /dev/null \(spread("tcp_null_peak_kb", 1, scale: megabyte)) / \(spread("tcp_null_steady_kb", 1, scale: megabyte)) MB; "
            + "udp-events \(spread("udp_file_peak_kb", 1, scale: megabyte)) / \(spread("udp_file_steady_kb", 1, scale: megabyte)) MB; "
            + "dns-events \(spread("dns_other_peak_kb", 1, scale: megabyte)) / \(spread("dns_other_steady_kb", 1, scale: megabyte)) MB | - |")
        return rows
    }
}

/// What the figures were measured on.
enum Machine {
    static var description: String {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let cpu = readProcFile("/proc/cpuinfo")?
            .split(separator: "\n").first(where: { $0.hasPrefix("model name") })
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?" } ?? "?"
        let memory = readProcFile("/proc/meminfo")?
            .split(separator: "\n").first(where: { $0.hasPrefix("MemTotal") })
            .map { String($0.split(separator: " ").dropFirst().first ?? "0") }.flatMap(Int.init) ?? 0
        let load = readProcFile("/proc/loadavg").map { $0.split(separator: " ").prefix(3).joined(separator: " ") } ?? "?"
        return "machine: \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs (\(cpu)), \(memory / 1024) MB memory, Linux \(release); "
            + "load average at start: \(load)"
    }
}
