/// Sees every DNS query and response that processes send or receive over UDP, and reports each
/// as a ``DNSMessageEvent``: the process, the socket, the name and type asked, the response code,
/// the answer addresses, and each response's latency from its query.
///
/// ```swift
/// import DNSEvent
///
/// let monitor = try DNSMonitor()
/// for await event in try monitor.events() where event.kind == .response {
///     print(event.command, event.name, event.responseCode!, event.answers, event.latencyNanoseconds ?? 0)
/// }
/// ```
///
/// Requires root (or `CAP_BPF` + `CAP_PERFMON`), x86-64 and Linux 5.15 (the payload is read from
/// the process's buffer through `bpf_task_pt_regs`); `EventMonitor/report` says which hooks were
/// chosen.
public typealias DNSMonitor = EventMonitor<DNSKind>
