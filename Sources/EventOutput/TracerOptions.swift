import ArgumentParser
import NetEventsCore

/// The options every tool takes: output format, the in-kernel filters, transport, and how long to run.
public struct TracerOptions: ParsableArguments, Sendable {
    @Flag(name: .long, help: "Print one JSON object per line.")
    public var json = false

    @Option(name: .long, parsing: .unconditional, help: "Only this process id.")
    public var pid: Int32?

    @Option(name: .long, parsing: .unconditional, help: "Only this user id.")
    public var uid: UInt32?

    @Option(name: .long, parsing: .unconditional, help: "Only this local port, or this remote port of a connected socket.")
    public var port: UInt16?

    @Flag(name: .customShort("4"), help: "Only IPv4.")
    public var ipv4Only = false

    @Flag(name: .customShort("6"), help: "Only IPv6.")
    public var ipv6Only = false

    @Option(name: .long, help: "Force the transport: ringBuffer or perfBuffer.")
    public var transport: SampleTransport?

    @Option(name: .long, parsing: .unconditional, help: "Stop after this many seconds.")
    public var duration: Double?

    public init() {}

    /// The in-kernel filter the options describe.
    public var filter: EventFilter {
        EventFilter(pid: pid, uid: uid, port: port, family: ipv4Only ? .ipv4 : ipv6Only ? .ipv6 : nil)
    }

    /// A configuration of `Kind` with these filters and this transport, and the kind's options.
    public func configuration<Kind: EventKind>(of _: Kind.Type, _ options: Kind.Options) -> MonitorConfiguration<Kind> {
        var configuration = MonitorConfiguration<Kind>(filter: filter, options: options)
        configuration.transport = transport
        return configuration
    }

    public func validate() throws {
        if ipv4Only && ipv6Only { throw ValidationError("-4 and -6 exclude each other") }
        if let duration, !(duration > 0 && duration.isFinite) { throw ValidationError("--duration must be a positive number of seconds") }
        if let pid, pid <= 0 { throw ValidationError("--pid must be a positive process id") }
        if port == 0 { throw ValidationError("--port must be 1-65535") }
    }
}

extension SampleTransport: ExpressibleByArgument {}
extension HookType: ExpressibleByArgument {}
