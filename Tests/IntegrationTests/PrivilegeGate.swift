import BCCRuntime
import Foundation
import XCTest

/// Gates a test that loads eBPF programs into the running kernel.
///
/// Without the privileges for that (root, or `CAP_BPF`/`CAP_SYS_ADMIN`), the test is skipped with
/// the reason printed. With `REQUIRE_BPF=1` in the environment (set by `.ci/run`, where root is
/// available), a skip would hide a broken setup, so it is a failure instead.
///
/// Call it first: `try requireBPF()`.
/// - Throws: `XCTSkip` when the test cannot run here; ``RequiredBPFUnavailable`` after recording
///   the failure under `REQUIRE_BPF=1`, so the test stops.
func requireBPF(file: StaticString = #filePath, line: UInt = #line) throws {
    let reason: String
    do {
        try SystemChecks.requirePrivileges(for: "the eBPF integration tests")
        try SystemChecks.requireTracefs()
        return
    } catch {
        reason = error.description
    }
    throw cannotRun(reason, file: file, line: line)
}

/// What stops a test that cannot run here for `reason`: an `XCTSkip`, with the reason printed; under
/// `REQUIRE_BPF=1`, where a skip would hide a broken setup, a ``RequiredBPFUnavailable`` after
/// recording the failure. Use it as `throw cannotRun(reason)`.
func cannotRun(_ reason: String, file: StaticString = #filePath, line: UInt = #line) -> any Error {
    if ProcessInfo.processInfo.environment["REQUIRE_BPF"] == "1" {
        XCTFail("REQUIRE_BPF=1, but this test cannot run: \(reason)", file: file, line: line)
        return RequiredBPFUnavailable(reason: reason)
    }
    print("skipping: \(reason) (set REQUIRE_BPF=1 to make this a failure)")
    return XCTSkip(reason, file: file, line: line)
}

/// Thrown by ``requireBPF(file:line:)`` and ``cannotRun(_:file:line:)`` under `REQUIRE_BPF=1` to
/// stop a test that cannot run, after it has recorded the failure.
struct RequiredBPFUnavailable: Error, CustomStringConvertible {
    var reason: String
    var description: String { "this test cannot run: \(reason)" }
}
