import Foundation
import Synchronization
import SystemPackage

/// The kernel header tree BCC compiles programs against, and how it was found.
///
/// BCC needs kernel headers for the helpers and types its programs include. In order of
/// preference the tree comes from `BCC_KERNEL_SOURCE`, the running kernel's
/// `/lib/modules/$(uname -r)/build`, the kernel's built-in `/sys/kernel/kheaders.tar.xz`, or
/// Debian's nearest `linux-headers-*` packages, whose `-common` and arch halves are merged into one
/// tree of symbolic links. Headers of another version are fine for helpers and tracepoint
/// programs, never for struct layouts: those come from ``KernelBTF``.
public struct KernelHeaders: Sendable, Equatable {
    /// Where the tree came from.
    public enum Source: Sendable, Equatable {
        /// `BCC_KERNEL_SOURCE` was set by the caller.
        case environment
        /// `/lib/modules/$(uname -r)/build` of the running kernel.
        case runningKernel
        /// The kernel's own `/sys/kernel/kheaders.tar.xz` (`CONFIG_IKHEADERS`), which BCC unpacks.
        case kheaders
        /// Distribution headers of kernel `release`, merged into `path`.
        case distribution(release: String)
    }

    /// The header tree (`nil` when BCC finds it by itself, as with `.runningKernel` and `.kheaders`).
    public var path: String?
    /// Where the tree came from.
    public var source: Source
    /// What the tree is, for messages: `6.12.117+deb12-amd64's`, `BCC_KERNEL_SOURCE (PATH)`.
    public var name: String {
        switch source {
        case .runningKernel: return "the running kernel's"
        case .kheaders: return "the running kernel's (kheaders)"
        case .environment: return "BCC_KERNEL_SOURCE (\(path ?? "?"))"
        case .distribution(let release): return "\(release)'s"
        }
    }

    /// Whether the headers match the running kernel exactly.
    public var matchesRunningKernel: Bool {
        switch source {
        case .runningKernel, .kheaders: return true
        case .environment: return false
        case .distribution(let release): return release == KernelVersion.running.release
        }
    }

    /// Finds a header tree, merging distribution headers when that is the only way. A
    /// ``BPFModule`` compiled with it points BCC at it for the compile alone (see
    /// ``exporting(_:)``): the process's environment, and its children's, stay as they were.
    /// - Parameters:
    ///   - cacheDirectory: where a merged tree is kept between runs.
    ///   - sourcesDirectory: where distribution header packages are installed.
    /// - Throws: `BPFError.headersMissing` with the fix when nothing usable exists,
    ///   `.invalidArgument` when `BCC_KERNEL_SOURCE` names no header tree, `.fileSystemFailed`
    ///   when the merged tree cannot be made in `cacheDirectory`, `.systemCallFailed` when `cp`
    ///   cannot be started for it.
    public static func locate(
        cacheDirectory: String = "/var/cache/swift-net-events",
        sourcesDirectory: String = "/usr/src"
    ) throws(BPFError) -> KernelHeaders {
        try find(cacheDirectory: cacheDirectory, sourcesDirectory: sourcesDirectory)
    }

    /// The tree this process merged, so a look while a compile exports it as `BCC_KERNEL_SOURCE`
    /// does not mistake our own setting for the caller's.
    private static let merged = Locked<KernelHeaders?>(nil)

    /// Serializes the compiles that set `BCC_KERNEL_SOURCE`: the environment is the process's.
    private static let exportLock = Locked<Void>(())

    /// Runs `body` (a compile) with `BCC_KERNEL_SOURCE` naming this tree when BCC cannot find it by
    /// itself (merged distribution headers), then restores the variable as it was, so nothing the
    /// process starts later inherits it. Other trees run `body` as it is. The environment is the
    /// process's: a child another thread starts during the compile (about a second) inherits the
    /// variable, and reads of it from other threads meanwhile see it.
    public func exporting<Result>(_ body: () throws -> Result) rethrows -> Result {
        guard case .distribution = source, let path else { return try body() }
        return try Self.exportLock.withLock { _ in
            let previous = getenv("BCC_KERNEL_SOURCE").map { String(cString: $0) }
            setenv("BCC_KERNEL_SOURCE", path, 1)
            defer {
                if let previous { setenv("BCC_KERNEL_SOURCE", previous, 1) } else { unsetenv("BCC_KERNEL_SOURCE") }
            }
            return try body()
        }
    }

    private static func find(cacheDirectory: String, sourcesDirectory: String) throws(BPFError) -> KernelHeaders {
        let fm = FileManager.default
        let release = KernelVersion.running.release
        if let value = ProcessInfo.processInfo.environment["BCC_KERNEL_SOURCE"], !value.isEmpty {
            if let ours = merged.withLock({ $0 }), ours.path == value { return ours }
            guard fm.fileExists(atPath: value + "/include") else {
                throw BPFError.invalidArgument(
                    "BCC_KERNEL_SOURCE=\(value) has no include/ directory: point it at a kernel header tree or unset it")
            }
            return KernelHeaders(path: value, source: .environment)
        }
        let modulesBuild = "/lib/modules/\(release)/build"
        if fm.fileExists(atPath: modulesBuild + "/include") {
            return KernelHeaders(path: nil, source: .runningKernel)
        }
        if fm.fileExists(atPath: "/sys/kernel/kheaders.tar.xz") {
            return KernelHeaders(path: nil, source: .kheaders)
        }
        guard let candidate = nearestDistributionHeaders(in: sourcesDirectory, running: release) else {
            throw BPFError.headersMissing(searched: [
                "BCC_KERNEL_SOURCE", modulesBuild, "/sys/kernel/kheaders.tar.xz", "\(sourcesDirectory)/linux-headers-*",
            ])
        }
        return try use(candidate, cacheDirectory: cacheDirectory)
    }

    /// Merges `candidate` (once per release) and makes it this process's tree, remembered as ours.
    private static func use(_ candidate: Candidate, cacheDirectory: String) throws(BPFError) -> KernelHeaders {
        let tree = try merge(candidate, into: cacheDirectory)
        let headers = KernelHeaders(path: tree, source: .distribution(release: candidate.release))
        merged.withLock { $0 = headers }
        return headers
    }

    /// A Debian header package pair: `linux-headers-R` (arch part) and its `-common` half.
    struct Candidate: Equatable {
        var release: String
        var archDirectory: String
        var commonDirectory: String?
    }

    /// Picks the installed header tree whose version is nearest the running kernel: the newest not
    /// newer than it, else the oldest newer one.
    static func nearestDistributionHeaders(in directory: String, running: String) -> Candidate? {
        distributionHeaders(in: directory, running: running).first
    }

    /// After a compile against `failed` (another kernel's distribution headers) failed: the next
    /// installed tree (nearest the running kernel first, then older, then newer), merged, to
    /// compile with in its place; nil when `failed` is no distribution tree or none is left.
    /// (BCC 0.26's clang cannot build Debian 6.12's `linux/bpf.h`, which header offsets include.)
    /// - Parameters:
    ///   - failed: the tree the compile failed with.
    ///   - cacheDirectory: where a merged tree is kept between runs.
    ///   - sourcesDirectory: where distribution header packages are installed.
    /// - Throws: what merging the tree throws (see ``locate(cacheDirectory:sourcesDirectory:)``).
    public static func next(
        after failed: KernelHeaders, cacheDirectory: String = "/var/cache/swift-net-events", sourcesDirectory: String = "/usr/src"
    ) throws(BPFError) -> KernelHeaders? {
        guard case .distribution(let release) = failed.source else { return nil }
        let candidates = distributionHeaders(in: sourcesDirectory, running: KernelVersion.running.release)
        guard let index = candidates.firstIndex(where: { $0.release == release }), index + 1 < candidates.count else { return nil }
        return try use(candidates[index + 1], cacheDirectory: cacheDirectory)
    }

    /// The installed header trees, nearest the running kernel first: those not newer than it from
    /// the newest down, then the newer ones from the oldest up.
    static func distributionHeaders(in directory: String, running: String) -> [Candidate] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let arch = debianArchitecture
        let candidates: [Candidate] = names.compactMap { name in
            guard name.hasPrefix("linux-headers-"), !name.hasSuffix("-common") else { return nil }
            let path = "\(directory)/\(name)"
            guard FileManager.default.fileExists(atPath: path + "/include") else { return nil }
            let release = String(name.dropFirst("linux-headers-".count))
            // Debian names the halves linux-headers-6.1.0-56-amd64 and linux-headers-6.1.0-56-common.
            var common: String?
            if release.hasSuffix("-\(arch)") {
                let stem = String(release.dropLast(arch.count + 1))
                let path = "\(directory)/linux-headers-\(stem)-common"
                if FileManager.default.fileExists(atPath: path) { common = path }
            }
            return Candidate(release: release, archDirectory: path, commonDirectory: common)
        }
        let running = KernelVersion(release: running)
        let sorted = candidates.sorted { KernelVersion(release: $0.release) < KernelVersion(release: $1.release) }
        let older = sorted.filter { KernelVersion(release: $0.release) <= running }
        return older.reversed() + sorted.filter { KernelVersion(release: $0.release) > running }
    }

    /// `cp -rs common/. DIR && cp -rs --remove-destination arch/. DIR`, done once per release.
    /// - Throws: `BPFError.fileSystemFailed` when the directory cannot be made or `cp` fails,
    ///   `.systemCallFailed` when `cp` cannot be started.
    static func merge(_ candidate: Candidate, into cacheDirectory: String) throws(BPFError) -> String {
        guard let common = candidate.commonDirectory else { return candidate.archDirectory }
        let target = "\(cacheDirectory)/kernel-headers-\(candidate.release)"
        let stamp = target + "/.merged"
        if FileManager.default.fileExists(atPath: stamp) { return target }
        try? FileManager.default.removeItem(atPath: target)
        if let failed = makeDirectories(target) {
            throw BPFError.fileSystemFailed(
                path: failed.path, operation: "create the directory for the merged kernel headers", errno: failed.errno)
        }
        for (source, extra) in [(common, [String]()), (candidate.archDirectory, ["--remove-destination"])] {
            let status = try ChildProcess.run("/bin/cp", ["-rs"] + extra + [source + "/.", target + "/"])
            guard status == 0 else {
                // cp printed its reason to standard error; only its exit status reaches us.
                throw BPFError.fileSystemFailed(path: target, operation: "merge \(source) (cp -rs exited \(status)) into", errno: nil)
            }
        }
        _ = FileManager.default.createFile(atPath: stamp, contents: Data())
        return target
    }

    /// `mkdir -p`, with the errno of the step that failed (which `FileManager` only wraps).
    /// - Returns: nil when `path` is a directory now, else the path that could not be made and why.
    static func makeDirectories(_ path: String) -> (path: String, errno: Errno)? {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 {
                let code = Errno.current
                if code != .fileExists { return (prefix, code) }
            }
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return (path, .notDirectory)
        }
        return nil
    }

    static var debianArchitecture: String {
        #if arch(x86_64)
        return "amd64"
        #elseif arch(arm64)
        return "arm64"
        #else
        return "unknown"
        #endif
    }
}
