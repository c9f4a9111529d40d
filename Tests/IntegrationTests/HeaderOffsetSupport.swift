import BCCRuntime
import Foundation
import NetEventsCore
import XCTest

/// The header-offset path (the one for kernels without BTF) of a monitor of `Kind`: where the
/// headers found are the running kernel's own, `exchange` checks real traffic through them (not
/// applicable where this BCC cannot compile them); where they are another kernel's, their offsets
/// would be wrong: the start is refused (`BPFError.untrustedOffsets`) unless the configuration
/// accepts estimates, and then either they do not even compile (a typed error with clang's
/// diagnostics) or the report must flag them.
func checkHeaderOffsets<Kind: EventKind>(
    of kind: Kind.Type, file: StaticString = #filePath, line: UInt = #line, whereTheyMatch exchange: () throws -> Void
) throws {
    try requireBPF(file: file, line: line)
    let headers = try KernelHeaders.locate()
    guard headers.matchesRunningKernel else {
        var configuration = EventMonitor<Kind>.Configuration()
        configuration.offsetSource = .headers
        do {
            try EventMonitor<Kind>(configuration: configuration).start { _ in }
            XCTFail("another kernel's header offsets (\(headers.source)) were not refused", file: file, line: line)
        } catch BPFError.untrustedOffsets(let named, let running) {
            XCTAssertEqual(named, headers.name, file: file, line: line)
            XCTAssertEqual(running, KernelVersion.running.release, file: file, line: line)
        }
        configuration.acceptsEstimatedOffsets = true
        let monitor = try EventMonitor<Kind>(configuration: configuration)
        do {
            try monitor.start { _ in }
            monitor.stop()
            let report = try XCTUnwrap(monitor.report, file: file, line: line)
            XCTAssertEqual(report.offsetSource, .headers, file: file, line: line)
            XCTAssertTrue(report.description.contains("WARNING"), "\(report)", file: file, line: line)
            print("header offsets not checkable against BTF here (\(headers.source)); flagged: \(report)")
        } catch BPFError.compileFailed(let diagnostics) {
            XCTAssertFalse(diagnostics.isEmpty, file: file, line: line)
            print("header offsets not checkable here: another kernel's headers (\(headers.source)) do not compile")
        }
        return
    }
    try skipIfBCCCannotCompileTheseHeaders(exchange)
}

/// Where this BCC cannot compile the running kernel's own headers, the header-offset path is not
/// applicable: BCC 0.26 bundles a uapi `linux/bpf.h` older than the kernel's internal `linux/bpf.h`
/// of 6.12 and later (`sizeof(struct bpf_wq)` and friends), the failure BCC's own tools hit too.
/// The path exists for kernels without BTF, which are older than that. Any other error stays one.
private func skipIfBCCCannotCompileTheseHeaders(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch BPFError.compileFailed(let diagnostics) where diagnostics.contains("include/linux/bpf.h") && diagnostics.contains("incomplete type 'struct bpf_") {
        let first = diagnostics.split(separator: "\n").first { $0.contains("error:") } ?? ""
        throw XCTSkip("not applicable: this BCC cannot compile the kernel's own headers (\(first))")
    }
}
