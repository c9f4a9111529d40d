import Foundation
import NetEventsCore
import Synchronization
import XCTest

/// A named network namespace (`ip netns add`) that a test creates for itself and deletes at the
/// end: its own loopback, its own nftables rules, its own `ss` view.
final class NetworkNamespace: @unchecked Sendable {
    let name: String
    private static let counter = Locked(0)

    /// A new namespace with its loopback up, at `mtu` (1500: data goes out as many packets, as on
    /// a real network, instead of a few 64 kB ones).
    init(mtu: Int = 1500) throws {
        let number = Self.counter.withLock { value in
            value += 1
            return value
        }
        name = "netevents-test-\(getpid())-\(number)"
        try Self.run(Self.ip(), ["netns", "add", name])
        try Self.run(Self.ip(), ["-n", name, "link", "set", "lo", "up", "mtu", "\(mtu)"])
    }

    deinit { _ = try? Self.run(Self.ip(), ["netns", "delete", name]) }

    /// The inode of the namespace, as events report it (`netns`).
    var inode: UInt32 {
        var info = stat()
        stat("/run/netns/\(name)", &info)
        return UInt32(truncatingIfNeeded: info.st_ino)
    }

    /// Runs `command ARGUMENTS` inside the namespace; returns its standard output.
    @discardableResult
    func run(_ command: String, _ arguments: [String]) throws -> String {
        try Self.run(Self.ip(), ["netns", "exec", name, command] + arguments)
    }

    /// Adds an nftables rule to the input chain of the namespace's own ruleset (made at the first
    /// call), e.g. `tcp dport 80 drop`.
    func addInputRule(_ rule: String) throws {
        let nft = try Self.tool("nft")
        if !hasInputChain {
            try run(nft, ["add", "table", "inet", "netevents"])
            try run(nft, ["add", "chain", "inet", "netevents", "input", "{ type filter hook input priority 0 ; }"])
            hasInputChain = true
        }
        try run(nft, ["add", "rule", "inet", "netevents", "input"] + rule.split(separator: " ").map(String.init))
    }
    private var hasInputChain = false

    /// `ip`, from iproute2 (scripts/setup installs it).
    static func ip() throws -> String { try tool("ip") }

    /// The path of a system tool, or a failure that names the package to install.
    static func tool(_ name: String) throws -> String {
        for directory in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
            return "\(directory)/\(name)"
        }
        throw NamespaceError.missingTool("\(name) is not installed (scripts/setup installs it)")
    }

    /// Runs a command to its end; its standard output, or an error with its standard error.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let (process, output, errors) = try startProcess(URL(fileURLWithPath: executable), arguments)
        let text = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = errors.fileHandleForReading.readDataToEndOfFile()
        waitUntilExit(process)
        guard process.terminationStatus == 0 else {
            throw NamespaceError.failed("\(executable) \(arguments.joined(separator: " ")): \(String(decoding: errorText, as: UTF8.self))")
        }
        return String(decoding: text, as: UTF8.self)
    }

    enum NamespaceError: Error {
        case missingTool(String)
        case failed(String)
    }
}
