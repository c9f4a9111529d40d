import CBCCLoader
import CMalloc
import Foundation

/// Gives back the memory BCC's compiler leaves behind, so a long-running tracer does not carry
/// the compiler's footprint. Measured on Linux 6.18 (BENCHMARKS.md): steady RSS after starting a
/// monitor goes from 118 MB to 47 MB.
///
/// A later compile takes back what it needs, a little slower the first time.
public enum CompilerMemory {
    /// The shared libraries of BCC's embedded clang.
    static let compilerLibraries = ["libLLVM", "libclang-cpp"]

    /// Runs after every compile:
    /// - `bcc_free_memory()`: BCC's own release (the C++ API's `free_bcc_memory`);
    /// - `malloc_trim(0)`: clang frees tens of megabytes that malloc would otherwise keep;
    /// - drops the resident code pages of libLLVM and libclang-cpp. They are clean file pages,
    ///   which stay in the page cache and fault back in if the compiler runs again.
    public static func release() {
        // Before any compile, BCC holds nothing (and is not even loaded).
        if let bcc = CBCCLoader_opened() { _ = bcc.pointee.bcc_free_memory() }
        _ = malloc_trim(0)
        dropCodePages(of: compilerLibraries)
    }

    /// `madvise(MADV_DONTNEED)` on every mapping of a library in `names` that is not writable and
    /// holds no anonymous page. Those are code and constants whose pages are the file's own.
    /// A mapping with anonymous pages (RELRO: relocated, then made read-only) keeps them; dropping
    /// those would reset pointers to the file's bytes.
    /// - Returns: the bytes of the mappings advised.
    @discardableResult
    static func dropCodePages(of names: [String]) -> Int {
        guard let smaps = SystemChecks.readKernelFile("/proc/self/smaps") else { return 0 }
        var total = 0
        for mapping in parseMappings(smaps) where names.contains(where: mapping.path.contains) {
            guard !mapping.permissions.contains("w"), mapping.anonymousKilobytes == 0 else { continue }
            if madvise(UnsafeMutableRawPointer(bitPattern: mapping.start), Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 {
                total += Int(mapping.end - mapping.start)
            }
        }
        return total
    }

    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var permissions: String
        var path: String
        /// `Anonymous:` of the mapping; -1 when smaps did not say.
        var anonymousKilobytes: Int
    }

    /// Parses `/proc/PID/smaps`: a header line per mapping, then `Key: value kB` lines.
    static func parseMappings(_ text: String) -> [Mapping] {
        var mappings: [Mapping] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if !first.hasSuffix(":"), first.contains("-"), fields.count >= 5 {
                let bounds = first.split(separator: "-")
                guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16) else { continue }
                let path = fields.count >= 6 ? fields[5...].joined(separator: " ") : ""
                mappings.append(Mapping(start: start, end: end, permissions: String(fields[1]), path: path, anonymousKilobytes: -1))
            } else if first == "Anonymous:", fields.count >= 2, let kilobytes = Int(fields[1]), !mappings.isEmpty {
                mappings[mappings.count - 1].anonymousKilobytes = kilobytes
            }
        }
        return mappings
    }
}
