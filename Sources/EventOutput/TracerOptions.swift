import ArgumentParser
import Foundation
import NetEventsCore

/// The options every tool takes: output format, the in-kernel filters, transport, and how long to run.
public struct TracerOptions: ParsableArguments, Sendable {
    @Flag(name: .long, help: "Print one JSON object per line.")
    public var json = false

    @Option(name: .long, parsing: .unconditionalSingleValue, help: listHelp("Only these process ids", "pid"))
    public var pid: [String] = []

    @Option(name: .long, parsing: .unconditional, help: "Only this user id.")
    public var uid: UInt32?

    @Option(
        name: .long, parsing: .unconditionalSingleValue,
        help: listHelp("Only these local or remote ports (for UDP: the peer of each datagram; dns-events: the DNS ports)", "port"))
    public var port: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only processes in this cgroup v2 or below it: a path as in /proc/PID/cgroup's 0:: line, or a full path (repeatable).",
            valueName: "path"))
    public var cgroup: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only processes in the running containers whose id starts with this, and those of it started later (repeatable).",
            valueName: "id"))
    public var container: [String] = []

    @Option(
        name: .long, parsing: .unconditionalSingleValue,
        help: listHelp("Only sockets in these network namespaces: inode numbers, as ls -Li /proc/PID/ns/net shows", "inode"))
    public var netns: [String] = []

    /// The help of a flag that takes comma-separated lists of `value`s and may be repeated.
    static func listHelp(_ text: String, _ value: String) -> ArgumentHelp {
        ArgumentHelp(text + " (a comma-separated list; repeatable).", valueName: value + ",...")
    }

    @Flag(name: .customShort("4"), help: "Only IPv4.")
    public var ipv4Only = false

    @Flag(name: .customShort("6"), help: "Only IPv6.")
    public var ipv6Only = false

    @Option(name: .long, help: "Force the transport: ringBuffer or perfBuffer.")
    public var transport: SampleTransport?

    @Option(name: .long, parsing: .unconditional, help: "Stop after this many seconds.")
    public var duration: Double?

    @Flag(
        name: .long,
        help: "Without kernel BTF, run on another kernel's header offsets anyway: fields may be wrong, and every event says offsets_estimated.")
    public var acceptEstimatedOffsets = false

    public init() {}

    /// The in-kernel filter the options describe.
    /// - Throws: `ValidationError` naming a list item that is no number in range.
    public var filter: EventFilter {
        get throws {
            EventFilter(
                pids: Set(try Self.list(pid, "--pid", Int32.self)), uid: uid, ports: Set(try Self.list(port, "--port", UInt16.self)),
                family: ipv4Only ? .ipv4 : ipv6Only ? .ipv6 : nil, cgroups: cgroup, containers: container.map { $0.lowercased() },
                networkNamespaces: Set(try Self.list(netns, "--netns", UInt32.self)))
        }
    }

    /// The numbers of comma-separated lists given to `flag`, each checked.
    static func list<Value: FixedWidthInteger>(_ values: [String], _ flag: String, _: Value.Type) throws -> [Value] {
        try values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map { item in
            guard let value = Value(item.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(flag): '\(item)' is not a number")
            }
            return value
        }
    }

    /// A configuration of `Kind` with these filters and this transport, and the kind's options.
    public func configuration<Kind: EventKind>(of _: Kind.Type, _ options: Kind.Options) throws -> MonitorConfiguration<Kind> {
        var configuration = MonitorConfiguration<Kind>(filter: try filter, options: options)
        configuration.transport = transport
        configuration.acceptsEstimatedOffsets = acceptEstimatedOffsets
        return configuration
    }

    public func validate() throws {
        if ipv4Only && ipv6Only { throw ValidationError("-4 and -6 exclude each other") }
        if let duration, !(duration > 0 && duration.isFinite) { throw ValidationError("--duration must be a positive number of seconds") }
        if try Self.list(pid, "--pid", Int32.self).contains(where: { $0 <= 0 }) { throw ValidationError("--pid must be positive process ids") }
        if try Self.list(port, "--port", UInt16.self).contains(0) { throw ValidationError("--port must be 1-65535") }
        if try Self.list(netns, "--netns", UInt32.self).contains(0) { throw ValidationError("--netns must be inode numbers, not 0") }
        if let bad = container.first(where: { (try? EventFilter(containers: [$0.lowercased()]).validate()) == nil }) {
            throw ValidationError("--container must be a container id or its prefix (lowercase hexadecimal, up to 64 digits), got '\(bad)'")
        }
        if cgroup.contains("") { throw ValidationError("--cgroup must be a path") }
        // What is left: the limits on how many values a filter holds.
        do { try filter.validate() } catch let error as BPFError { throw ValidationError("\(error)") }
    }
}

extension SampleTransport: ExpressibleByArgument {}
extension HookType: ExpressibleByArgument {}
