/// The program an event kind asks the core to build: its C text, the flags that select its hooks
/// and options, and the kernel struct members it reads.
///
/// The core adds what every kind shares (transport, filters, offsets), expands the program's
/// `#include "name.h"` lines from ``headers`` (BCC compiles from a string and resolves no
/// relative include), compiles it and hands the module to ``EventKind/attach(_:module:links:)``.
public struct ProgramPlan: Sendable {
    /// The program's C text, as in `bpf/`.
    public var text: String = ""
    /// The headers its `#include "name.h"` lines may name, by file name.
    public var headers: [String: String] = [:]
    /// Compiler flags (`-DNAME=value`).
    public var flags: [String] = []
    /// Struct members the program reads, resolved from BTF into `-D` flags.
    public var offsets: [MemberOffset] = []
    /// Why a better hook or option was passed over, for the attach report.
    public var notes: [String] = []
    /// Where offsets come from in this build (chosen by the core before ``EventKind/plan(_:features:into:)``).
    public let offsetSource: OffsetSource
    /// How samples travel in this build.
    public let transport: SampleTransport

    init(offsetSource: OffsetSource, transport: SampleTransport) {
        self.offsetSource = offsetSource
        self.transport = transport
    }

    /// Adds the defines of `members` when the kernel's BTF has them all, for a feature the
    /// program can do without.
    /// - Returns: whether they were added; when not, a note says why.
    public mutating func addOptionalOffsets(_ members: [MemberOffset], for feature: String) -> Bool {
        guard offsetSource == .btf else { return true }  // offsetof in headers: nothing to resolve
        do {
            flags += try KernelBTF.vmlinux().defines(for: members)
            return true
        } catch {
            notes.append("\(feature) off: \(error)")
            return false
        }
    }

    /// The text with every `#include "name.h"` of a known header replaced by the header, once.
    func expandedText() -> String {
        var included: Set<String> = []
        return expand(text, included: &included)
    }

    private func expand(_ text: String, included: inout Set<String>) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix("#include \""), let end = trimmed.dropFirst(10).firstIndex(of: "\"") {
                let name = String(trimmed[trimmed.index(trimmed.startIndex, offsetBy: 10)..<end])
                if let header = headers[name] {
                    if included.insert(name).inserted {
                        output += expand(header, included: &included)
                        output += "\n"
                    }
                    continue
                }
            }
            output += line
            output += "\n"
        }
        return output
    }
}
