// netevents-bench: throughput, loss, overhead and footprint of the TCP and UDP tracers (BENCHMARKS.md).
// Run as root from a release build:
//
//   .build/release/netevents-bench decode    [--count N] [--batch B,...] [--runs R] [--no-pin]
//   .build/release/netevents-bench tcp-churn [--connections N] [--runs R] [--no-tcplife | --install-tcplife] [--variants] [--tcplife-headers DIR]
//   .build/release/netevents-bench udp       [--datagrams N] [--runs R]
//   .build/release/netevents-bench startup   [--runs R]
//   .build/release/netevents-bench tools     [--connections N] [--datagrams N] [--runs R]
//   .build/release/netevents-bench poll      [--open N,...] [--runs R] [--window S] [--interval S] [--no-wait]
//   .build/release/netevents-bench agent     [--runs R] [--load-seconds S] [--agent-interval S] [--burst N] [--flood N] [--no-wait]
//   .build/release/netevents-bench all       [every option above]
//
// `tcp-churn`, `udp` and `tools` run `netevents-traffic` from the same build directory, and
// `tools` also runs `tcp-events` and `udp-events` from there, `agent` runs `netevents`:
// `swift build -c release --static-swift-stdlib` first (everything; as `scripts/run` builds the
// tools users run), or the same with `--product P` once per product (given several `--product`
// options, SwiftPM 6.3 builds only the last).
import Glibc
import NetEventsTesting

let arguments = Array(CommandLine.arguments.dropFirst())
let command = arguments.first ?? "help"

func flag(_ name: String) -> Bool { arguments.contains(name) }
func numbers(_ name: String, default fallback: [Int]) -> [Int] {
    guard let index = arguments.firstIndex(of: name) else { return fallback }
    let values = index + 1 < arguments.count ? arguments[index + 1].split(separator: ",").compactMap { Int($0) } : []
    guard !values.isEmpty, values.allSatisfy({ $0 > 0 }) else {
        say("netevents-bench: \(name) needs positive numbers separated by commas")
        exit(2)
    }
    return values
}
func number(_ name: String, default fallback: Int) -> Int {
    guard let index = arguments.firstIndex(of: name) else { return fallback }
    guard index + 1 < arguments.count, let value = Int(arguments[index + 1].replacingOccurrences(of: "_", with: "")), value > 0
    else {
        say("netevents-bench: \(name) needs a positive number")
        exit(2)
    }
    return value
}

let usage = """
    usage: netevents-bench decode | tcp-churn | udp | startup | tools | poll | agent | all  [options]
      decode     [--count N (2000000)] [--batch B,... (1,256)] [--runs R (3)] [--no-pin] [--only KEY,...]
                 samples per MockSampleSource drain; keys: decode_only callback_bB stream_bB
                 decode_only_v6 callback_v6_bB (B the largest batch)
      tcp-churn  [--connections N (20000)] [--runs R (3)] [--no-tcplife | --install-tcplife] [--variants]
                 TCPMonitor() reports every kind: 4 events per connection (connect, accept, 2 closes),
                 counted by kind; tcplife prints the 2 closes
                 without /usr/sbin/tcplife-bpfcc the tcplife column is skipped (with the reason),
                 unless --install-tcplife: apt-get install -y bpfcc-tools python3-bpfcc
                 --variants: drainInterval 0 and 5 ms, tracksAccept/tracksFirstIO off, perf buffer
                 --tcplife-headers DIR: a merged kernel header tree for tcplife (its BCC_KERNEL_SOURCE)
      udp        [--datagrams N (1000000)] [--runs R (3)]
      startup    [--runs R (3)] | --once [--show-mappings] [--empty-compile | --both]
      tools      [--connections N (20000)] [--datagrams N (1000000)] [--runs R (3)]
                 tcp-events --json > FILE and > /dev/null (every kind, the default) and
                 tcp-events --json --events close > FILE (close only) during tcp-burst, udp-events
                 --json > FILE and dns-events --json > FILE during udp-flood, dns-events --json
                 --port P > FILE during a flood of A queries to P: generator rate traced /
                 untraced, tool CPU per event and per connection (per datagram), events counted
                 by kind, spawn → Tracing, peak and steady RSS; needs tcp-events, udp-events,
                 dns-events and netevents-traffic built next to netevents-bench
      poll       [--open N,... (1000,10000,100000)] [--runs R (5)] [--window S (20)] [--interval S (1)] [--no-wait]
                 N idle loopback connections held open: SocketDiagnostics.dump + SocketOwners.find
                 (wall, CPU), then tcp-events --json --interval S > /dev/null beside them: snapshot,
                 CPU per poll, RSS; waits for no xctest/qemu-system/swift-build/swift-test first
                 (unless --no-wait); needs tcp-events built next to netevents-bench
      agent      [--runs R (3)] [--load-seconds S (60)] [--agent-interval S (10)] [--burst N (10000)] [--flood N (200000)] [--no-wait]
                 netevents serve --listen 127.0.0.1:PORT --interval S, scraped at /metrics: spawn → both
                 monitors up and RSS then; S seconds of tcp-burst --count N and udp-flood --count N
                 --size 64, scraped every second: steady and peak RSS, CPU per TCP event, the
                 generator's counts in the metrics against the load, one scrape's size and time;
                 SIGTERM → exit 0; needs netevents and netevents-traffic built next to netevents-bench
      all        [every option above]
                 every benchmark, each in a fresh process, then one markdown table
    """

signal(SIGPIPE, SIG_IGN)
do {
    switch command {
    case "decode":
        var options = DecodeBenchmark.Options()
        options.count = number("--count", default: options.count)
        options.runs = number("--runs", default: options.runs)
        options.pinned = !flag("--no-pin")
        options.batches = numbers("--batch", default: options.batches)
        if let index = arguments.firstIndex(of: "--only"), index + 1 < arguments.count {
            options.only = arguments[index + 1].split(separator: ",").map(String.init)
        }
        // Before any thread exists, so every thread inherits the mask.
        if options.pinned { try CPUAffinity.pin(to: 0) }
        try DecodeBenchmark.run(options)
    case "tcp-churn":
        var options = ChurnBenchmark.Options()
        options.connections = number("--connections", default: options.connections)
        options.runs = number("--runs", default: options.runs)
        (options.tcplife, options.installTCPLife) = (!flag("--no-tcplife"), flag("--install-tcplife"))
        options.variants = flag("--variants")
        if let index = arguments.firstIndex(of: "--tcplife-headers"), index + 1 < arguments.count {
            options.tcplifeHeaders = arguments[index + 1]
        }
        try ChurnBenchmark.run(options)
    case "startup":
        var options = StartupBenchmark.Options()
        options.runs = number("--runs", default: options.runs)
        (options.once, options.showMappings, options.emptyCompile) = (flag("--once"), flag("--show-mappings"), flag("--empty-compile"))
        options.both = flag("--both")
        try StartupBenchmark.run(options)
    case "udp":
        var options = UDPBenchmark.Options()
        options.datagrams = number("--datagrams", default: options.datagrams)
        options.runs = number("--runs", default: options.runs)
        try UDPBenchmark.run(options)
    case "tools":
        let defaults = ToolBenchmark.Options()
        try ToolBenchmark.run(
            .init(
                connections: number("--connections", default: defaults.connections),
                datagrams: number("--datagrams", default: defaults.datagrams), runs: number("--runs", default: defaults.runs)))
    case "poll":
        var options = PollBenchmark.Options()
        options.open = numbers("--open", default: options.open)
        options.runs = number("--runs", default: options.runs)
        options.window = number("--window", default: options.window)
        options.interval = number("--interval", default: options.interval)
        options.waitForQuiet = !flag("--no-wait")
        try PollBenchmark.run(options)
    case "agent":
        let defaults = AgentBenchmark.Options()
        try AgentBenchmark.run(
            .init(
                runs: number("--runs", default: defaults.runs), loadSeconds: number("--load-seconds", default: defaults.loadSeconds),
                interval: number("--agent-interval", default: defaults.interval), burst: number("--burst", default: defaults.burst),
                flood: number("--flood", default: defaults.flood), waitForQuiet: !flag("--no-wait")))
    case "poll-hold":  // a holder of `poll`'s connections, run by it
        try PollBenchmark.hold(count: number("--count", default: 1), host: number("--host", default: 2))
    case "all":
        try AllBenchmarks.run(arguments: Array(arguments.dropFirst()))
    case "help", "-h", "--help":
        say(usage)
    default:
        say(usage)
        exit(2)
    }
} catch {
    say("netevents-bench: \(error)")
    exit(1)
}
