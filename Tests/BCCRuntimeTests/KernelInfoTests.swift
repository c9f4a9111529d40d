@testable import BCCRuntime
import CLibBPF
import Foundation
import SystemPackage
import XCTest

final class CPUsTests: XCTestCase {
    func testParseList() {
        XCTAssertEqual(CPUs.parseList("0-3,5"), [0, 1, 2, 3, 5])
        XCTAssertEqual(CPUs.parseList("0"), [0])
        XCTAssertEqual(CPUs.parseList("0-1\n"), [0, 1])
        XCTAssertEqual(CPUs.parseList("0,2-3,7-8"), [0, 2, 3, 7, 8])
        XCTAssertEqual(CPUs.parseList("4-5"), [4, 5])
        XCTAssertEqual(CPUs.parseList(""), [0], "an unreadable list falls back to one CPU")
    }

    func testCountsAgreeWithSysfs() throws {
        let possible = try String(contentsOfFile: "/sys/devices/system/cpu/possible", encoding: .utf8)
        XCTAssertEqual(CPUs.possibleCount, CPUs.parseList(possible).count)
        XCTAssertGreaterThanOrEqual(CPUs.possibleCount, 1)
        let online = CPUs.online
        XCTAssertFalse(online.isEmpty)
        XCTAssertTrue(Set(online).isSubset(of: Set(CPUs.parseList(possible))), "\(online) vs \(possible)")
    }
}

final class KernelVersionTests: XCTestCase {
    func testParsing() {
        XCTAssertEqual(KernelVersion(release: "6.1.0-56-amd64").numbers, [6, 1, 0])
        XCTAssertEqual(KernelVersion(release: "6.18.0").numbers, [6, 18, 0])
        XCTAssertEqual(KernelVersion(release: "5.15.0-1034-azure").numbers, [5, 15, 0])
        XCTAssertEqual(KernelVersion(release: "6.8").numbers, [6, 8])
        XCTAssertEqual(KernelVersion(release: "4.19+").numbers, [4, 19])
        XCTAssertEqual(KernelVersion(release: "6.12-rc3").numbers, [6, 12])
        XCTAssertEqual(KernelVersion(release: "6.1.0-56-amd64").release, "6.1.0-56-amd64")
        XCTAssertEqual(KernelVersion(release: "6.1.0-56-amd64").description, "6.1.0-56-amd64")
    }

    func testComparisons() {
        func v(_ release: String) -> KernelVersion { KernelVersion(release: release) }
        XCTAssertLessThan(v("6.1.0-56-amd64"), v("6.12.0"), "numeric, not string, order")
        XCTAssertLessThan(v("5.15.0"), v("6.1.0"))
        XCTAssertLessThan(v("6.1.0"), v("6.1.1"))
        XCTAssertLessThan(v("4.9"), v("4.19"))
        XCTAssertGreaterThan(v("6.18.0"), v("6.12.0-3-amd64"))
        XCTAssertEqual(v("6.1.0-56-amd64"), v("6.1.0-40-cloud-amd64"), "only the numbers compare")
        XCTAssertTrue(v("6.1.0-56-amd64").isAtLeast(6, 1))
        XCTAssertTrue(v("6.1.0-56-amd64").isAtLeast(5, 8))
        XCTAssertFalse(v("6.1.0-56-amd64").isAtLeast(6, 2))
        XCTAssertFalse(v("5.4.0").isAtLeast(5, 5))
        XCTAssertTrue(v("6.18.0").isAtLeast(6, 18))
    }

    func testRunningKernelMatchesUname() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/uname")
        process.arguments = ["-r"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let release = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(KernelVersion.running.release, release)
        XCTAssertGreaterThanOrEqual(KernelVersion.running.numbers.count, 2)
    }
}

final class KernelHeadersTests: XCTestCase {
    private var directory = ""
    private let arch = KernelHeaders.debianArchitecture

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "kernel-headers-test-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Creates `DIRECTORY/name`, with an `include/` when `include` is set.
    private func makeTree(_ name: String, include: Bool = true, files: [String: String] = [:]) throws {
        let path = "\(directory)/\(name)"
        try FileManager.default.createDirectory(atPath: path + (include ? "/include" : ""), withIntermediateDirectories: true)
        for (file, text) in files {
            let url = URL(fileURLWithPath: "\(path)/\(file)")
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
    }

    private func installDebianHeaders() throws {
        for stem in ["5.10.0-30", "6.1.0-56", "6.12.0-3"] {
            try makeTree("linux-headers-\(stem)-\(arch)")
            try makeTree("linux-headers-\(stem)-common")
        }
        try makeTree("linux-headers-6.16.0-1-\(arch)", include: false)  // half-installed: ignored
        try makeTree("linux-kbuild-6.1")
    }

    func testPicksNewestNotNewerThanRunning() throws {
        try installDebianHeaders()
        let found = try XCTUnwrap(KernelHeaders.nearestDistributionHeaders(in: directory, running: "6.18.0"))
        XCTAssertEqual(found.release, "6.12.0-3-\(arch)")
        XCTAssertEqual(found.archDirectory, "\(directory)/linux-headers-6.12.0-3-\(arch)")
        XCTAssertEqual(found.commonDirectory, "\(directory)/linux-headers-6.12.0-3-common")

        let older = try XCTUnwrap(KernelHeaders.nearestDistributionHeaders(in: directory, running: "6.5.0-1-\(arch)"))
        XCTAssertEqual(older.release, "6.1.0-56-\(arch)")

        let exact = try XCTUnwrap(KernelHeaders.nearestDistributionHeaders(in: directory, running: "6.1.0-56-\(arch)"))
        XCTAssertEqual(exact.release, "6.1.0-56-\(arch)")
    }

    /// The order in which trees are tried when one does not compile: nearest first, older ones
    /// going down, then newer ones going up.
    func testTreesAreTriedNearestFirstThenOlderThenNewer() throws {
        try installDebianHeaders()
        let order = KernelHeaders.distributionHeaders(in: directory, running: "6.5.0-1-\(arch)").map(\.release)
        XCTAssertEqual(order, ["6.1.0-56-\(arch)", "5.10.0-30-\(arch)", "6.12.0-3-\(arch)"])
        let newest = KernelHeaders.distributionHeaders(in: directory, running: "6.18.0").map(\.release)
        XCTAssertEqual(newest, ["6.12.0-3-\(arch)", "6.1.0-56-\(arch)", "5.10.0-30-\(arch)"])
    }

    func testFallsBackToOldestNewerWhenAllAreNewer() throws {
        try installDebianHeaders()
        let found = try XCTUnwrap(KernelHeaders.nearestDistributionHeaders(in: directory, running: "5.4.0"))
        XCTAssertEqual(found.release, "5.10.0-30-\(arch)")
    }

    func testCommonHalfIsNeverChosenAlone() throws {
        try makeTree("linux-headers-6.1.0-56-common")
        XCTAssertNil(KernelHeaders.nearestDistributionHeaders(in: directory, running: "6.18.0"))
    }

    func testTreeWithoutCommonHalf() throws {
        try makeTree("linux-headers-6.1.0-custom")
        let found = try XCTUnwrap(KernelHeaders.nearestDistributionHeaders(in: directory, running: "6.18.0"))
        XCTAssertEqual(found.release, "6.1.0-custom")
        XCTAssertNil(found.commonDirectory)
        // Nothing to merge: the tree is used as it is.
        XCTAssertEqual(try KernelHeaders.merge(found, into: directory + "/cache"), found.archDirectory)
    }

    func testNothingInstalled() {
        XCTAssertNil(KernelHeaders.nearestDistributionHeaders(in: directory, running: "6.18.0"))
        XCTAssertNil(KernelHeaders.nearestDistributionHeaders(in: directory + "/missing", running: "6.18.0"))
    }

    func testMergeOverlaysArchOnCommon() throws {
        try makeTree("linux-headers-6.1.0-56-common", files: ["include/linux/a.h": "common a", "include/linux/c.h": "common c"])
        try makeTree("linux-headers-6.1.0-56-\(arch)", files: ["include/linux/a.h": "arch a", "include/generated/b.h": "arch b"])
        let candidate = try XCTUnwrap(KernelHeaders.nearestDistributionHeaders(in: directory, running: "6.18.0"))
        let cache = directory + "/cache"
        let merged = try KernelHeaders.merge(candidate, into: cache)
        XCTAssertEqual(merged, "\(cache)/kernel-headers-6.1.0-56-\(arch)")
        func read(_ file: String) throws -> String { try String(contentsOfFile: "\(merged)/\(file)", encoding: .utf8) }
        XCTAssertEqual(try read("include/linux/a.h"), "arch a", "the arch half wins")
        XCTAssertEqual(try read("include/linux/c.h"), "common c")
        XCTAssertEqual(try read("include/generated/b.h"), "arch b")
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "\(merged)/include/linux/a.h")
        XCTAssertEqual(
            URL(fileURLWithPath: link).standardizedFileURL.path,
            "\(directory)/linux-headers-6.1.0-56-\(arch)/include/linux/a.h", "a symbolic link into the arch half")
        XCTAssertTrue(FileManager.default.fileExists(atPath: merged + "/.merged"))

        // Done once: a second merge reuses the tree rather than copying again.
        try FileManager.default.removeItem(atPath: "\(merged)/include/linux/c.h")
        XCTAssertEqual(try KernelHeaders.merge(candidate, into: cache), merged)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(merged)/include/linux/c.h"))
    }

    func testEnvironmentOverride() throws {
        let saved = ProcessInfo.processInfo.environment["BCC_KERNEL_SOURCE"]
        defer {
            if let saved { setenv("BCC_KERNEL_SOURCE", saved, 1) } else { unsetenv("BCC_KERNEL_SOURCE") }
        }
        try makeTree("tree")
        setenv("BCC_KERNEL_SOURCE", "\(directory)/tree", 1)
        let headers = try KernelHeaders.locate(cacheDirectory: directory + "/cache", sourcesDirectory: directory)
        XCTAssertEqual(headers, KernelHeaders(path: "\(directory)/tree", source: .environment))
        XCTAssertFalse(headers.matchesRunningKernel)

        setenv("BCC_KERNEL_SOURCE", "\(directory)/no-such-tree", 1)
        XCTAssertThrowsError(try KernelHeaders.locate(cacheDirectory: directory + "/cache", sourcesDirectory: directory)) { error in
            guard case BPFError.invalidArgument(let message) = error else { return XCTFail("expected .invalidArgument, got \(error)") }
            XCTAssertTrue(message.contains("BCC_KERNEL_SOURCE"), message)
        }
    }

    func testMergeIntoAnUnwritablePlaceIsAFileSystemError() throws {
        try makeTree("linux-headers-6.1.0-56-common")
        try makeTree("linux-headers-6.1.0-56-\(arch)")
        let candidate = try XCTUnwrap(KernelHeaders.nearestDistributionHeaders(in: directory, running: "6.18.0"))
        // A regular file where the cache directory should be: ENOTDIR even for root.
        let file = directory + "/not-a-directory"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try KernelHeaders.merge(candidate, into: file + "/cache")) { error in
            guard case BPFError.fileSystemFailed(let path, let operation, let code) = error else {
                return XCTFail("expected .fileSystemFailed, got \(error)")
            }
            XCTAssertEqual(path, file + "/cache")
            XCTAssertTrue(operation.contains("merged kernel headers"), operation)
            XCTAssertEqual(code, .notDirectory)
        }
    }

    func testMakeDirectories() throws {
        XCTAssertNil(KernelHeaders.makeDirectories(directory + "/a/b/c"))
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/a/b/c", isDirectory: &isDirectory) && isDirectory.boolValue)
        XCTAssertNil(KernelHeaders.makeDirectories(directory + "/a/b/c"), "existing directories are fine")
        try Data("x".utf8).write(to: URL(fileURLWithPath: directory + "/file"))
        let failed = try XCTUnwrap(KernelHeaders.makeDirectories(directory + "/file"))
        XCTAssertEqual(failed.path, directory + "/file")
        XCTAssertEqual(failed.errno, .notDirectory, "a file is in the way")
    }

    func testMatchesRunningKernel() {
        XCTAssertTrue(KernelHeaders(path: nil, source: .runningKernel).matchesRunningKernel)
        XCTAssertTrue(KernelHeaders(path: nil, source: .kheaders).matchesRunningKernel)
        XCTAssertTrue(KernelHeaders(path: "/x", source: .distribution(release: KernelVersion.running.release)).matchesRunningKernel)
        XCTAssertFalse(KernelHeaders(path: "/x", source: .distribution(release: "2.6.32-5-\(arch)")).matchesRunningKernel)
    }
}

final class KernelFeatureAnswerTests: XCTestCase {
    func testAnswers() {
        XCTAssertEqual(KernelFeatures.Answer.no(reason: "x"), .no, "reasons do not affect equality")
        XCTAssertNotEqual(KernelFeatures.Answer.yes, .no)
        XCTAssertNotEqual(KernelFeatures.Answer.unknown(reason: "x"), .no)
        XCTAssertTrue(KernelFeatures.Answer.yes.isConclusive)
        XCTAssertTrue(KernelFeatures.Answer.no.isConclusive)
        XCTAssertFalse(KernelFeatures.Answer.unknown(reason: "not root").isConclusive)
        XCTAssertTrue(KernelFeatures.Answer.yes.isYes)
        XCTAssertFalse(KernelFeatures.Answer.no.isYes)
        XCTAssertEqual(KernelFeatures.Answer.no(reason: "r").description, "no (r)")
        XCTAssertEqual(KernelFeatures.Answer.unknown(reason: "r").description, "unknown (r)")
    }

    /// The probes that need no privileges agree with the filesystem.
    func testUnprivilegedProbes() {
        let features = KernelFeatures()
        XCTAssertEqual(features.btf, access("/sys/kernel/btf/vmlinux", R_OK) == 0 ? .yes : .no)
        if let tracefs = SystemChecks.tracefsPath {
            let exists = access(tracefs + "/events/sock/inet_sock_set_state", F_OK) == 0
            XCTAssertEqual(features.tracepoint("sock", "inet_sock_set_state"), exists ? .yes : .no)
            XCTAssertEqual(features.tracepoint("no_such_category", "no_such_event"), .no)
        } else {
            XCTAssertFalse(features.tracepoint("sock", "inet_sock_set_state").isConclusive)
        }
        if geteuid() != 0 {
            XCTAssertFalse(features.fentry().isConclusive, "probing fentry needs root")
            if SystemChecks.cgroup2Path != nil {
                XCTAssertFalse(features.cgroupSocketRelease.isConclusive, "probing sock_release programs needs root")
            }
        }
        if SystemChecks.cgroup2Path == nil {
            // Without a hierarchy there is nothing to attach to, whoever asks.
            guard case .no(let reason) = features.cgroupSocketRelease else {
                return XCTFail("expected no without cgroup v2, got \(features.cgroupSocketRelease)")
            }
            XCTAssertTrue(reason.contains("cgroup v2"), reason)
        }
        XCTAssertFalse(features.summary.isEmpty)
        XCTAssertTrue(features.summary.contains("cgroup sock_release: "), features.summary)
    }
}

/// The probes that load programs, as root, against what the kernel itself shows.
final class KernelFeatureProbeTests: XCTestCase {
    override func setUpWithError() throws {
        guard geteuid() != 0 else { return }
        let reason = "the feature probes load programs, which needs root"
        if ProcessInfo.processInfo.environment["REQUIRE_BPF"] == "1" {
            XCTFail("REQUIRE_BPF=1, but \(reason)")
        }
        print("skipping: \(reason)")
        throw XCTSkip(reason)
    }

    /// `BPF_CGROUP_INET_SOCK_RELEASE` exists from Linux 5.9; with a cgroup v2 hierarchy mounted,
    /// the probe says yes there (as on the reference host: 6.18, cgroup v2 at /sys/fs/cgroup/unified).
    func testCgroupSocketRelease() {
        let answer = KernelFeatures().cgroupSocketRelease
        print("cgroup sock_release: \(answer)")
        XCTAssertTrue(answer.isConclusive, "\(answer)")
        if SystemChecks.cgroup2Path == nil {
            XCTAssertEqual(answer, .no)
        } else if KernelVersion.running.isAtLeast(5, 9) {
            XCTAssertEqual(answer, .yes)
        } else {
            guard case .no(let reason) = answer else { return XCTFail("\(answer) before Linux 5.9") }
            XCTAssertTrue(reason.contains("5.9"), reason)
        }
        // Cached: the same answer again.
        XCTAssertEqual(KernelFeatures.shared.cgroupSocketRelease, KernelFeatures.shared.cgroupSocketRelease)
    }

    /// fentry is decided by loading and attaching, and a refusal names the errno and a way out.
    /// libbpf's own program-type probe (what `bpftool feature probe` prints) is the reference: when
    /// it finds the tracing type unavailable, as on the reference host, the answer is no, and there
    /// the errno is EPERM.
    func testFentryNamesTheErrnoAndTheFix() throws {
        let features = KernelFeatures()
        let answer = features.fentry("tcp_set_state")
        print("fentry tcp_set_state: \(answer)")
        XCTAssertTrue(answer.isConclusive, "\(answer)")
        let tracingType = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACING, nil)
        if tracingType == 0 { XCTAssertEqual(answer, .no, "libbpf finds no tracing programs, the probe said \(answer)") }
        if case .no(let reason) = answer {
            XCTAssertTrue(reason.contains("tcp_set_state"), reason)
            XCTAssertNotNil(reason.range(of: #"\(errno [0-9]+\)"#, options: .regularExpression), "names the errno: \(reason)")
            if reason.contains(Errno.notPermitted.withNumber) {
                XCTAssertTrue(reason.contains("lockdown"), reason)
                XCTAssertTrue(reason.contains("use the tracepoint or kprobe hook"), reason)
            }
            if tracingType == 0 {
                // The tracing type is refused at load, so the load step fails, with the errno a
                // plain load gets: EPERM on the reference host, which refuses trampolines to root.
                XCTAssertTrue(reason.hasPrefix("loading an fentry program"), reason)
                let refused = try XCTUnwrap(loadFentryProgram(on: "tcp_set_state"), "a plain fentry load succeeded")
                XCTAssertTrue(reason.contains(refused.withNumber), "\(reason) vs \(refused.withNumber)")
                print("a plain fentry load fails with \(refused.withNumber)")
            }
        }
        XCTAssertEqual(features.fentry("no_such_kernel_function_xyz"), .no)
        XCTAssertEqual(features.fentry("tcp_set_state"), answer, "cached")
    }

    /// Loads `r0 = 0; exit` as fentry on `function` through libbpf, here in the test; nil when it
    /// loads, else the errno.
    private func loadFentryProgram(on function: String) throws -> Errno? {
        let id = try XCTUnwrap(KernelBTF.vmlinux().functionID(function))
        var instructions = [bpf_insn](repeating: bpf_insn(), count: 2)
        instructions[0].code = 0xb7
        instructions[1].code = 0x95
        var options = bpf_prog_load_opts()
        options.sz = MemoryLayout<bpf_prog_load_opts>.size
        options.expected_attach_type = BPF_TRACE_FENTRY
        options.attach_btf_id = UInt32(id)
        let fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "test_fentry", "GPL", &instructions, 2, &options)
        guard fd < 0 else {
            close(fd)
            return nil
        }
        return Errno(rawValue: -fd)
    }
}

final class CompilerMemoryTests: XCTestCase {
    func testParsesSmapsHeadersAndAnonymousSizes() {
        let text = """
            7f0000000000-7f0000100000 r-xp 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
            Size:               1024 kB
            Anonymous:             0 kB
            7f0000100000-7f0000200000 r--p 00100000 08:01 123 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
            Anonymous:            12 kB
            7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
            Anonymous:           132 kB
            """
        let mappings = CompilerMemory.parseMappings(text)
        XCTAssertEqual(mappings.count, 3)
        XCTAssertEqual(mappings[0].start, 0x7f00_0000_0000)
        XCTAssertEqual(mappings[0].end, 0x7f00_0010_0000)
        XCTAssertEqual(mappings[0].permissions, "r-xp")
        XCTAssertEqual(mappings[0].anonymousKilobytes, 0)
        XCTAssertEqual(mappings[1].anonymousKilobytes, 12, "a RELRO mapping with relocated pages")
        XCTAssertEqual(mappings[2].path, "[stack]")
    }

    func testDroppingPagesOfALibraryNotLoadedDoesNothing() {
        XCTAssertEqual(CompilerMemory.dropCodePages(of: ["libdoes-not-exist"]), 0)
    }
}

final class KernelFileTests: XCTestCase {
    /// /proc files report size 0; the whole file must still be read, not its first 4 KB.
    func testReadsAProcFileToItsEnd() throws {
        let text = try XCTUnwrap(SystemChecks.readKernelFile("/proc/self/smaps"))
        XCTAssertGreaterThan(text.utf8.count, 4096, "smaps of a Swift test process is far longer than one page")
        XCTAssertTrue(text.hasSuffix("\n"))
        XCTAssertEqual(text.split(separator: "\n").first { $0.contains("[stack]") }.map { _ in true }, true, "reaches the stack mapping near the end")
        XCTAssertNil(SystemChecks.readKernelFile("/proc/self/does-not-exist"))
    }
}
