import Foundation
import PackagePlugin

/// Embeds the package's `bpf/*.c` and `bpf/*.h` files, and the kernel/user contract headers of
/// `Sources/CNetEventsABI/include`, into the target that uses this plugin, as an internal
/// `EmbeddedBPF` enum of string constants.
///
/// `bpf/` stays the single source of truth for kernel-side code: the generated file is rebuilt
/// whenever one of those files changes, and nothing generated is committed.
@main
struct EmbedBPF: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let directories = [
            context.package.directoryURL.appending(path: "bpf"),
            context.package.directoryURL.appending(path: "Sources/CNetEventsABI/include"),
        ]
        let inputs = try directories.flatMap { directory in
            try FileManager.default.contentsOfDirectory(atPath: directory.path)
                .filter { $0.hasSuffix(".c") || $0.hasSuffix(".h") }
                .sorted()
                .map { directory.appending(path: $0) }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedBPF.swift")
        return [
            .buildCommand(
                displayName: "Embedding bpf/ into \(target.name)",
                executable: try context.tool(named: "EmbedBPFTool").url,
                arguments: [output.path] + inputs.map(\.path),
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
