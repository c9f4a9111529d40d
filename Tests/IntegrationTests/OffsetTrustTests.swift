import BCCRuntime
import Foundation
import Glibc
import XCTest

/// Offsets that cannot be trusted are refused: with the kernel's BTF hidden (a tmpfs over
/// /sys/kernel/btf in a mount namespace of the tool's own), the only offsets left are those of
/// the installed headers, another kernel's; each tool must stop before tracing, naming the fixes,
/// rather than print fields read at the wrong place. Where the headers are this kernel's own
/// (kheaders, a distribution kernel with its headers), their offsets are trusted and nothing is
/// refused: the test is skipped there.
final class OffsetTrustTests: XCTestCase {
    func testHiddenBTFIsRefusedWithTheFixes() throws {
        try requireBPF()
        guard FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") else {
            throw XCTSkip("this kernel has no BTF to hide")
        }
        // Located as the tools will (which leaves the environment as it was).
        let headers = try KernelHeaders.locate()
        guard !headers.matchesRunningKernel else {
            throw XCTSkip("the headers found (\(headers.name)) match this kernel, so header offsets are trusted and nothing is refused")
        }
        for tool in ["tcp-events", "udp-events", "dns-events"] {
            let path = try builtExecutable(tool).path
            // unshare(1) makes the mount private; the tool runs in that namespace only. Should it
            // trace after all, --duration ends it, and its events go to a file: a pipe left unread
            // while standard error is read to its end could fill and hold it.
            let events = NSTemporaryDirectory() + "offset-trust-\(getpid())-\(tool).json"
            defer { unlink(events) }
            let (process, _, errors) = try startProcess(
                URL(fileURLWithPath: "/usr/bin/unshare"),
                ["-m", "/bin/sh", "-c", "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" --json --duration 3 > \"$1\"", path, events])
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            waitUntilExit(process)
            let printed = FileManager.default.contents(atPath: events) ?? Data()
            XCTAssertEqual(process.terminationStatus, 1, "\(tool): \(text)")
            XCTAssertTrue(printed.isEmpty, "\(tool) printed events: \(String(decoding: printed, as: UTF8.self))")
            XCTAssertFalse(text.contains("Tracing"), "\(tool) traced: \(text)")
            for fix in ["no kernel BTF", "CONFIG_DEBUG_INFO_BTF=y", "linux-headers-", "--accept-estimated-offsets", "offsets_estimated"] {
                XCTAssertTrue(text.contains(fix), "\(tool): the error does not say '\(fix)': \(text)")
            }
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux"), "the BTF was hidden outside the tool's namespace")
    }

    /// Accepted explicitly (`--accept-estimated-offsets`), the same hidden BTF traces: on an
    /// installed header tree this compiler can build (the others are tried in turn when the
    /// nearest cannot: BCC 0.26 cannot build Debian 6.12's), with the warning in the Tracing line,
    /// and every event says its fields are estimates.
    func testAcceptedEstimatedOffsetsTraceAndMarkEveryEvent() throws {
        try requireBPF()
        guard FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") else {
            throw XCTSkip("this kernel has no BTF to hide")
        }
        let port = freePort()
        let events = NSTemporaryDirectory() + "offset-accepted-\(getpid()).json"
        defer { unlink(events) }
        // As from a fresh shell, whatever this process's environment holds: a tree named in
        // BCC_KERNEL_SOURCE is used as given, never replaced.
        let (process, _, errors) = try startProcess(
            URL(fileURLWithPath: "/usr/bin/unshare"),
            ["-m", "/bin/sh", "-c", "unset BCC_KERNEL_SOURCE; mount -t tmpfs none /sys/kernel/btf && exec \"$0\" --json --port \"$2\" --duration 8 --accept-estimated-offsets > \"$1\"",
             try builtExecutable("tcp-events").path, events, "\(port)"])
        let lines = Collector<String>(lines: errors.fileHandleForReading)
        let tracing = lines.first(timeout: 60) { $0.hasPrefix("Tracing") }
        XCTAssertTrue(tracing?.contains("offsets: headers") ?? false, "\(lines.events)")
        XCTAssertTrue(tracing?.contains("WARNING: header offsets from another kernel") ?? false, "\(lines.events)")
        let server = try TrafficProcess(["tcp-server", "--port", "\(port)", "--receive", "5", "--send", "7"])
        _ = try server.nextLine()
        try TrafficProcess(["tcp-client", "--port", "\(port)", "--send", "5", "--receive", "7"]).waitForSuccess()
        server.waitForSuccess()
        waitUntilExit(process)
        XCTAssertEqual(process.terminationStatus, 0, "\(lines.events)")
        let printed = String(decoding: FileManager.default.contents(atPath: events) ?? Data(), as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(printed.filter { $0.contains(#""event":"close""#) }.count, 2, "\(printed)")
        for line in printed { XCTAssertTrue(line.contains(#""offsets_estimated":true"#), "not marked: \(line)") }
    }
}
