import ArgumentParser
import NetEventsCore

/// `netevents`: the agent. Its one subcommand for now is `serve`.
@main
struct NetEventsCommand: AsyncParsableCommand {
    /// The package's version, as `--version` and `netevents_build_info` say it.
    static let version = "0.3.0"

    static let configuration = CommandConfiguration(
        commandName: "netevents",
        abstract: "The network events agent: every TCP connection and UDP flow of this host, as Prometheus metrics.",
        version: version,
        subcommands: [ServeCommand.self])

    /// SIGTERM and SIGINT, watched from the first moment: one that arrives while the agent starts
    /// (the monitors compile for a second or two) is kept, not the end of the process.
    static let signals = TerminationSignals()

    static func main() async {
        _ = signals
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
