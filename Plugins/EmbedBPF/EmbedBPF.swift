import Foundation
import PackagePlugin

/// Embeds the package's `bpf/*.c` and `bpf/*.h` files into the target that uses this plugin,
/// as an internal `EmbeddedBPF` enum of string constants.
///
/// `bpf/` stays the single source of truth for kernel-side code: the generated file is rebuilt
/// whenever one of those files changes, and nothing generated is committed.
@main
struct EmbedBPF: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let bpfDirectory = context.package.directoryURL.appending(path: "bpf")
        let names = try FileManager.default.contentsOfDirectory(atPath: bpfDirectory.path)
            .filter { $0.hasSuffix(".c") || $0.hasSuffix(".h") }
            .sorted()
        let inputs = names.map { bpfDirectory.appending(path: $0) }
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
