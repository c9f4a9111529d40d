// Logs every TCP connection as it closes, one JSON object per line, until SIGINT or SIGTERM;
// then stops the monitor (which delivers what is still buffered) and exits 0.
//
//   swift run -c release connection-log [PORT]      (as root)
import Foundation
import TCPEvent

// Watch the signals first: one that arrives during the (half-second) start is kept, not lost.
let signals = TerminationSignals()

var configuration = TCPMonitor.Configuration()
configuration.events = [.close]  // the monitor also reports connects, accepts and failed connects
if CommandLine.arguments.count > 1 {
    guard let port = UInt16(CommandLine.arguments[1]), port > 0 else {
        FileHandle.standardError.write(Data("usage: connection-log [PORT]\n".utf8))
        exit(2)
    }
    configuration.port = port  // applied in the kernel
}

let encoder = JSONEncoder()
encoder.outputFormatting = .sortedKeys

do throws(BPFError) {
    let monitor = try TCPMonitor(configuration: configuration)
    // The callback runs on the monitor's delivery thread, one event at a time, in order.
    try monitor.start { event in
        guard let line = try? encoder.encode(event) else { return }
        FileHandle.standardOutput.write(line + Data("\n".utf8))
    }
    FileHandle.standardError.write(Data("Tracing (\(monitor.report.map { "\($0)" } ?? "")). Ctrl-C to end.\n".utf8))

    let number = await signals.next()
    monitor.stop()  // detaches, then delivers every buffered event before it returns
    let statistics = monitor.statistics
    FileHandle.standardError.write(
        Data("signal \(number): stopped; lost \(statistics.lostSamples), dropped \(statistics.droppedEvents)\n".utf8))
} catch {
    // The monitor throws only BPFError (typed throws), and every case names its fix.
    switch error {
    case .notPrivileged: FileHandle.standardError.write(Data("connection-log: run as root\n".utf8))
    default: FileHandle.standardError.write(Data("connection-log: \(error)\n".utf8))
    }
    exit(1)
}
