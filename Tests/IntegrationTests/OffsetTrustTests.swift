import Foundation
import XCTest

/// Offsets that cannot be trusted are refused: with the kernel's BTF hidden (a tmpfs over
/// /sys/kernel/btf in a mount namespace of the tool's own), the only offsets left are those of
/// the installed headers, another kernel's; each tool must stop before tracing, naming the fixes,
/// rather than print fields read at the wrong place.
final class OffsetTrustTests: XCTestCase {
    func testHiddenBTFIsRefusedWithTheFixes() throws {
        try requireBPF()
        guard FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") else {
            throw XCTSkip("this kernel has no BTF to hide")
        }
        for tool in ["tcp-events", "udp-events", "dns-events"] {
            let path = try builtExecutable(tool).path
            // unshare(1) makes the mount private; the tool runs in that namespace only.
            let (process, output, errors) = try startProcess(
                URL(fileURLWithPath: "/usr/bin/unshare"),
                ["-m", "/bin/sh", "-c", "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" --json", path])
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let printed = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 1, "\(tool): \(text)")
            XCTAssertTrue(printed.isEmpty, "\(tool) printed events: \(String(decoding: printed, as: UTF8.self))")
            XCTAssertFalse(text.contains("Tracing"), "\(tool) traced: \(text)")
            for fix in ["no kernel BTF", "CONFIG_DEBUG_INFO_BTF=y", "linux-headers-", "--accept-estimated-offsets", "offsets_estimated"] {
                XCTAssertTrue(text.contains(fix), "\(tool): the error does not say '\(fix)': \(text)")
            }
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux"), "the BTF was hidden outside the tool's namespace")
    }
}
