@testable import BCCRuntime
import Glibc
import XCTest

/// Each error's description says what went wrong and, where there is one, the fix.
final class BPFErrorTests: XCTestCase {
    private func assertDescription(
        _ error: BPFError, contains fragments: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        let text = error.description
        for fragment in fragments {
            XCTAssertTrue(text.contains(fragment), "\(error): \"\(text)\" lacks \"\(fragment)\"", file: file, line: line)
        }
    }

    func testNotPrivilegedSaysSudo() {
        assertDescription(.notPrivileged(operation: "loading eBPF programs"), contains: ["loading eBPF programs", "sudo", "CAP_BPF"])
    }

    func testNotSupportedNamesFeatureKernelAndReason() {
        assertDescription(
            .notSupported(feature: "ring buffer", minimumKernel: "5.8", reason: "no BPF_MAP_TYPE_RINGBUF"),
            contains: ["ring buffer", "Linux 5.8", "no BPF_MAP_TYPE_RINGBUF"])
        let text = BPFError.notSupported(feature: "tracepoint x:y", minimumKernel: nil, reason: "absent").description
        XCTAssertFalse(text.contains("Linux"), text)
    }

    func testCompileFailedCarriesDiagnostics() {
        let diagnostics = "/virtual/main.c:3:5: error: use of undeclared identifier 'nope'"
        assertDescription(.compileFailed(diagnostics: diagnostics), contains: ["compile", diagnostics])
    }

    func testLoadFailedCarriesErrnoAndVerifierLog() {
        assertDescription(
            .loadFailed(program: "probe", errno: EACCES, verifierLog: "R1 invalid mem access 'scalar'"),
            contains: ["probe", "EACCES", "R1 invalid mem access 'scalar'", "verifier log"])
        let text = BPFError.loadFailed(program: "probe", errno: EINVAL, verifierLog: "").description
        XCTAssertFalse(text.contains("verifier log"), text)
        XCTAssertTrue(text.contains("EINVAL"), text)
    }

    func testAttachFailedOnKprobeHintsAtKprobeSupport() {
        assertDescription(.attachFailed(target: "kprobe tcp_set_state", errno: ENOENT), contains: ["kprobe tcp_set_state", "ENOENT", "CONFIG_KPROBES"])
        assertDescription(.attachFailed(target: "kretprobe udp_recvmsg", errno: EINVAL), contains: ["CONFIG_KPROBES"])
        let text = BPFError.attachFailed(target: "tracepoint sock:inet_sock_set_state", errno: EBUSY).description
        XCTAssertFalse(text.contains("CONFIG_KPROBES"), text)
        XCTAssertTrue(text.contains("EBUSY"), text)
    }

    func testHeadersMissingSaysHowToInstallThem() {
        assertDescription(
            .headersMissing(searched: ["/lib/modules/6.18.0/build", "/usr/src/linux-headers-*"]),
            contains: ["apt-get install linux-headers", "BCC_KERNEL_SOURCE", "/lib/modules/6.18.0/build", "/usr/src/linux-headers-*"])
    }

    func testTracefsNotMountedSaysHowToMountIt() {
        assertDescription(.tracefsNotMounted, contains: ["mount -t tracefs", "/sys/kernel/tracing"])
    }

    func testMapAndBufferErrorsNameTheMap() {
        assertDescription(.mapOperationFailed(map: "owners", operation: "update", errno: E2BIG), contains: ["owners", "update", "E2BIG"])
        assertDescription(.bufferFailed(map: "events", errno: ENOMEM), contains: ["events", "ENOMEM"])
        assertDescription(.noSuchObject(kind: "table", name: "evnets"), contains: ["table", "evnets"])
        assertDescription(.btf("no member x"), contains: ["BTF", "no member x"])
        assertDescription(.invalidArgument("page count must be a power of two"), contains: ["power of two"])
        assertDescription(.malformedSample(expectedSize: 40, actualSize: 12, detail: "tcp close"), contains: ["40", "12", "tcp close"])
    }

    func testErrnoNames() {
        XCTAssertTrue(errnoName(EPERM).hasPrefix("EPERM ("), errnoName(EPERM))
        XCTAssertTrue(errnoName(EPERM).contains(String(cString: strerror(EPERM))))
        XCTAssertTrue(errnoName(ENOENT).hasPrefix("ENOENT ("))
        XCTAssertTrue(errnoName(9999).hasPrefix("errno 9999"), errnoName(9999))
    }

    func testPrivilegedMapping() {
        let mapped = BPFError.privileged(EPERM, operation: "loading x") { .attachFailed(target: "x", errno: $0) }
        if geteuid() == 0 {
            // Root got EPERM anyway: the kernel refused for another reason, keep the errno.
            XCTAssertEqual(mapped, .attachFailed(target: "x", errno: EPERM))
        } else {
            XCTAssertEqual(mapped, .notPrivileged(operation: "loading x"))
        }
        // Other errors are never a privilege problem.
        XCTAssertEqual(
            BPFError.privileged(ENOENT, operation: "loading x") { .attachFailed(target: "x", errno: $0) },
            .attachFailed(target: "x", errno: ENOENT))
    }

    func testRequirePrivileges() {
        if geteuid() == 0 {
            XCTAssertNoThrow(try SystemChecks.requirePrivileges(for: "testing"))
        } else {
            // Unprivileged runs must get the typed error, unless the test runner holds CAP_BPF or CAP_SYS_ADMIN.
            do {
                try SystemChecks.requirePrivileges(for: "testing")
                print("note: not root, but the process holds CAP_BPF or CAP_SYS_ADMIN")
            } catch {
                XCTAssertEqual(error as? BPFError, .notPrivileged(operation: "testing"))
            }
        }
    }

    func testTracefsCheckAgreesWithTheFilesystem() {
        let mounted = SystemChecks.tracefsCandidates.contains { access($0 + "/events", F_OK) == 0 }
        XCTAssertEqual(SystemChecks.tracefsPath != nil, mounted)
        if mounted {
            XCTAssertNoThrow(try SystemChecks.requireTracefs())
        } else {
            XCTAssertThrowsError(try SystemChecks.requireTracefs()) { XCTAssertEqual($0 as? BPFError, .tracefsNotMounted) }
        }
    }
}
