/// Traces TCP connections as they open, fail and close: a ``TCPConnectionEvent`` per connect,
/// accept, failed connect and close, attributed to the process that connected or accepted the
/// socket. `TCPKind/Options/events` chooses the kinds (default: all).
///
/// ```swift
/// import TCPEvent
///
/// let monitor = try TCPMonitor(configuration: .init(filter: .init(ports: [443])))
/// try monitor.start { event in print(event.command, event.sentBytes) }   // on a delivery thread
/// // ...
/// monitor.stop()   // detaches, delivers what is buffered
/// print(monitor.statistics.lostSamples, monitor.report?.hook as Any)
/// ```
///
/// At start the monitor picks the best hook the kernel offers (``TCPKind/Hook``), takes struct
/// offsets from BTF, compiles `bpf/tcp_events.c` with BCC and attaches it; `EventMonitor/report`
/// says what it chose. Requires root (or `CAP_BPF` + `CAP_PERFMON`). Minimum kernel: 4.1 (kprobe),
/// 4.16 (tracepoint).
public typealias TCPMonitor = EventMonitor<TCPKind>
