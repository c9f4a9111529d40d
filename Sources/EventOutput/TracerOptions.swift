import ArgumentParser
import BCCRuntime

/// The options every example tracer takes: output format, the in-kernel filters, and how long to run.
public struct TracerOptions: ParsableArguments, Sendable {
    @Flag(name: .long, help: "Print one JSON object per line.")
    public var json = false

    @Option(name: .long, help: "Only this process id.")
    public var pid: Int32?

    @Option(name: .long, help: "Only this user id.")
    public var uid: UInt32?

    @Option(name: .long, help: "Only this local port, or this remote port of a connected socket.")
    public var port: UInt16?

    @Flag(name: .customShort("4"), help: "Only IPv4.")
    public var ipv4Only = false

    @Flag(name: .customShort("6"), help: "Only IPv6.")
    public var ipv6Only = false

    @Option(name: .long, help: "Stop after this many seconds.")
    public var duration: Double?

    public init() {}

    /// The family filter, if any.
    public var family: AddressFamily? { ipv4Only ? .ipv4 : ipv6Only ? .ipv6 : nil }

    public func validate() throws {
        if ipv4Only && ipv6Only { throw ValidationError("-4 and -6 exclude each other") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
        if let pid, pid <= 0 { throw ValidationError("--pid must be a positive process id") }
        if port == 0 { throw ValidationError("--port must be 1-65535") }
    }
}
