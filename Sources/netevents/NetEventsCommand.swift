import ArgumentParser

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
}
