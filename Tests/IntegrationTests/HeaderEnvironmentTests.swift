import Foundation
import TCPEvent
import XCTest

/// A compile points BCC at merged distribution headers through `BCC_KERNEL_SOURCE` for the compile
/// alone: the process's environment, and what its children inherit, stay as they were.
final class HeaderEnvironmentTests: XCTestCase {
    func testACompileLeavesTheEnvironmentAsItWas() throws {
        try requireBPF()
        let saved = getenv("BCC_KERNEL_SOURCE").map { String(cString: $0) }
        defer { if let saved { setenv("BCC_KERNEL_SOURCE", saved, 1) } else { unsetenv("BCC_KERNEL_SOURCE") } }
        unsetenv("BCC_KERNEL_SOURCE")
        let headers = try KernelHeaders.locate()

        let monitor = try TCPMonitor()
        try monitor.start { _ in }
        defer { monitor.stop() }
        XCTAssertEqual(monitor.report?.headers, headers, "compiled against the tree located")
        XCTAssertNil(getenv("BCC_KERNEL_SOURCE").map { String(cString: $0) }, "a monitor's start left BCC_KERNEL_SOURCE set")
        let (_, status, environment) = try spawnToEnd(["/usr/bin/env"])
        XCTAssertEqual(status, 0)
        XCTAssertFalse(environment.contains("BCC_KERNEL_SOURCE="), "a child started after the compile inherited it")

        // A tree the caller names (here the same one) is used, and left named.
        guard case .distribution = headers.source, let path = headers.path else {
            print("headers \(headers.name): BCC finds them by itself, nothing to name")
            return
        }
        setenv("BCC_KERNEL_SOURCE", path, 1)
        let module = try BPFModule(source: "int nothing(void *ctx) { return 0; }")
        XCTAssertEqual(module.headers.path, path)
        XCTAssertEqual(getenv("BCC_KERNEL_SOURCE").map { String(cString: $0) }, path)
    }
}
