// netevents-bench: throughput, loss, overhead and footprint of the TCP tracer (BENCHMARKS.md).
// Run as root from a release build:
//
//   swift run -c release netevents-bench decode    [--count N] [--runs R] [--no-pin]
//   swift run -c release netevents-bench tcp-churn [--connections N] [--runs R] [--no-tcplife] [--variants]
//   swift run -c release netevents-bench startup   [--runs R]
//   swift run -c release netevents-bench all       [--count N] [--connections N] [--runs R] [--no-tcplife] [--variants]
//
// `tcp-churn` runs `netevents-traffic` from the same build directory:
// `swift build -c release --product netevents-traffic` first.
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())
let command = arguments.first ?? "help"

func flag(_ name: String) -> Bool { arguments.contains(name) }
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
    usage: netevents-bench decode | tcp-churn | startup | all  [options]
      decode     [--count N (2000000)] [--runs R (3)] [--no-pin] [--only KEY,...]
                 keys: decode_only callback_mock stream_mock callback_direct stream_direct
                       decode_only_v6 callback_mock_v6
      tcp-churn  [--connections N (20000)] [--runs R (3)] [--no-tcplife] [--variants]
      startup    [--runs R (3)]
      all        [--count N] [--connections N] [--runs R] [--no-tcplife] [--variants]
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
        if let index = arguments.firstIndex(of: "--only"), index + 1 < arguments.count {
            options.only = arguments[index + 1].split(separator: ",").map(String.init)
        }
        // Before any thread exists, so every thread inherits the mask.
        if options.pinned { try pinToCPU(0) }
        try DecodeBenchmark.run(options)
    case "tcp-churn":
        var options = ChurnBenchmark.Options()
        options.connections = number("--connections", default: options.connections)
        options.runs = number("--runs", default: options.runs)
        options.tcplife = !flag("--no-tcplife")
        options.variants = flag("--variants")
        try ChurnBenchmark.run(options)
    case "startup":
        var options = StartupBenchmark.Options()
        options.runs = number("--runs", default: options.runs)
        options.once = flag("--once")
        options.freeBCCMemory = flag("--free-bcc-memory")
        options.mallocTrim = flag("--malloc-trim")
        options.dropLLVMText = flag("--drop-llvm-text")
        options.showMappings = flag("--show-mappings")
        options.emptyCompile = flag("--empty-compile")
        try StartupBenchmark.run(options)
    // TODO(UDP): `udp-loop [--packets N]`: 64-byte datagrams through netevents-traffic
    // udp-sender/udp-receiver, untraced and under UDPMonitor (target: traced / untraced ≥ 0.9, every
    // datagram counted). The UDPEvent module is in progress; AllBenchmarks.summary has the
    // matching TODO row and BENCHMARKS.md the matching TODO section.
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
