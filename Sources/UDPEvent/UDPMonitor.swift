/// Counts UDP traffic per (socket, process, peer) in the kernel and reports it as ``UDPTrafficEvent``s:
/// every interval while a pair moves data, when its socket closes, and at stop. The events of a
/// pair add up exactly to its traffic.
///
/// ```swift
/// import UDPEvent
///
/// var configuration = UDPMonitor.Configuration(filter: .init(ports: [53]))
/// configuration.interval = 5
/// let monitor = try UDPMonitor(configuration: configuration)
/// for await event in try monitor.events() { print(event.command, event.sentPackets) }
/// ```
///
/// Requires root (or `CAP_BPF` + `CAP_PERFMON`); `EventMonitor/report` says which hooks were
/// chosen. Minimum kernel: 4.1 (kprobes), 5.5 (fentry), 6.3 (tracepoints).
public typealias UDPMonitor = EventMonitor<UDPKind>

extension EventMonitor where Kind == UDPKind {
    /// Which hook reports a socket's release (``UDPKind/CloseHook``).
    public typealias CloseHook = UDPKind.CloseHook
}
