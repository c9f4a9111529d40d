@testable import BCCRuntime
import Glibc
import SystemPackage
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

    /// The whole documented set: CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN where cgroup v2 is mounted,
    /// CAP_DAC_READ_SEARCH as a user other than root.
    func testNotPrivilegedNamesTheDocumentedCapabilities() {
        assertDescription(
            .notPrivileged(operation: "loading eBPF programs"),
            contains: [
                "loading eBPF programs", "as root", "CAP_BPF and CAP_PERFMON", "CAP_NET_ADMIN (cgroup socket programs) where cgroup v2 is mounted",
                "CAP_DAC_READ_SEARCH (reading tracefs", "as a user other than root",
            ])
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
            .loadFailed(program: "probe", errno: .permissionDenied, verifierLog: "R1 invalid mem access 'scalar'"),
            contains: ["probe", "Permission denied (errno 13)", "R1 invalid mem access 'scalar'", "verifier log"])
        let text = BPFError.loadFailed(program: "probe", errno: .invalidArgument, verifierLog: "").description
        XCTAssertFalse(text.contains("verifier log"), text)
        XCTAssertTrue(text.contains("Invalid argument (errno 22)"), text)
        assertDescription(.loadFailed(program: "big", errno: .argListTooLong, verifierLog: ""), contains: ["too large"])
        if geteuid() == 0 {
            // Root refused: not a privilege problem the user can fix with sudo.
            assertDescription(.loadFailed(program: "kfunc__x", errno: .notPermitted, verifierLog: ""), contains: ["lockdown"])
        }
    }

    func testAttachFailedOnKprobeHintsAtKprobeSupport() {
        assertDescription(
            .attachFailed(target: "kprobe tcp_set_state", errno: .noSuchFileOrDirectory),
            contains: ["kprobe tcp_set_state", "No such file or directory (errno 2)", "CONFIG_KPROBES"])
        assertDescription(.attachFailed(target: "kretprobe udp_recvmsg", errno: .invalidArgument), contains: ["CONFIG_KPROBES"])
        let text = BPFError.attachFailed(target: "tracepoint sock:inet_sock_set_state", errno: .resourceBusy).description
        XCTAssertFalse(text.contains("CONFIG_KPROBES"), text)
        XCTAssertTrue(text.contains("Device or resource busy (errno 16)"), text)
        XCTAssertTrue(text.contains("detach it first"), text)
    }

    func testHeadersMissingSaysHowToInstallThem() {
        assertDescription(
            .headersMissing(searched: ["/lib/modules/6.18.0/build", "/usr/src/linux-headers-*"]),
            contains: ["apt-get install linux-headers", "BCC_KERNEL_SOURCE", "/lib/modules/6.18.0/build", "/usr/src/linux-headers-*"])
    }

    func testLibraryMissingNamesTheLibraryTheReasonAndThePackage() {
        assertDescription(
            .libraryMissing(name: "libbcc.so.0", reason: "libbcc.so.0: cannot open shared object file: No such file or directory"),
            contains: ["libbcc.so.0", "cannot open shared object file", "apt-get install libbpfcc", "dnf install bcc"])
    }

    func testTracefsNotMountedSaysHowToMountIt() {
        assertDescription(.tracefsNotMounted, contains: ["mount -t tracefs", "/sys/kernel/tracing"])
    }

    func testMapAndBufferErrorsNameTheMap() {
        assertDescription(
            .mapOperationFailed(map: "owners", operation: "update", errno: .argListTooLong),
            contains: ["owners", "update", "Argument list too long (errno 7)", "the map is full"])
        let lookup = BPFError.mapOperationFailed(map: "owners", operation: "lookup", errno: .badFileDescriptor).description
        XCTAssertTrue(lookup.contains("Bad file descriptor (errno 9)"), lookup)
        XCTAssertFalse(lookup.contains("full"), lookup)
        assertDescription(.bufferFailed(map: "events", errno: .noMemory), contains: ["events", "Cannot allocate memory (errno 12)", "fewer pages"])
        assertDescription(.bufferFailed(map: "events", errno: .tooManyOpenFiles), contains: ["ulimit -n"])
        assertDescription(.noSuchObject(kind: "table", name: "evnets"), contains: ["table", "evnets"])
        assertDescription(.btf("no member x"), contains: ["BTF", "no member x"])
        assertDescription(.invalidArgument("page count must be a power of two"), contains: ["power of two"])
        assertDescription(.malformedSample(expectedSize: 40, actualSize: 12, detail: "tcp close"), contains: ["40", "12", "tcp close"])
    }

    func testAlreadyStartedNamesWhatAndTheFix() {
        assertDescription(.alreadyStarted("perf buffer events"), contains: ["perf buffer events", "already started", "close it first"])
    }

    func testFileSystemFailedNamesPathOperationAndErrno() {
        assertDescription(
            .fileSystemFailed(path: "/var/cache/x", operation: "create the directory for the merged kernel headers", errno: .permissionDenied),
            contains: ["could not create the directory for the merged kernel headers /var/cache/x", "Permission denied (errno 13)", "permissions of /var/cache/x"])
        assertDescription(.fileSystemFailed(path: "/ro", operation: "create", errno: .readOnlyFileSystem), contains: ["read-only", "writable directory"])
        // From a helper process: no errno, the operation carries the exit status.
        let text = BPFError.fileSystemFailed(path: "/tmp/t", operation: "merge /usr/src/a (cp -rs exited 1) into", errno: nil).description
        XCTAssertEqual(text, "could not merge /usr/src/a (cp -rs exited 1) into /tmp/t")
    }

    func testSystemCallFailedNamesCallPurposeAndLimit() {
        assertDescription(
            .systemCallFailed(call: "pthread_create", purpose: "the poll thread of perf buffer events", errno: .resourceTemporarilyUnavailable),
            contains: ["pthread_create", "the poll thread of perf buffer events", "Resource temporarily unavailable (errno 11)", "ulimit -u"])
        assertDescription(
            .systemCallFailed(call: "pipe", purpose: "waking the poll thread", errno: .tooManyOpenFiles),
            contains: ["pipe", "Too many open files (errno 24)", "ulimit -n"])
    }

    /// Every errno is spelled one way: the C library's message, then the number.
    func testErrnoSpelling() {
        XCTAssertEqual(Errno.notPermitted.withNumber, "\(String(cString: strerror(EPERM))) (errno 1)")
        XCTAssertEqual(Errno(rawValue: ENOENT).withNumber, "No such file or directory (errno 2)")
        XCTAssertTrue(Errno(rawValue: 9999).withNumber.hasSuffix("(errno 9999)"), Errno(rawValue: 9999).withNumber)
        errno = EBUSY
        XCTAssertEqual(Errno.current, .resourceBusy)
    }

    func testPayloadsAreErrnoValues() {
        // Equality goes through the errno's value, whichever way it was written.
        XCTAssertEqual(BPFError.attachFailed(target: "x", errno: Errno(rawValue: EPERM)), .attachFailed(target: "x", errno: .notPermitted))
        XCTAssertNotEqual(BPFError.attachFailed(target: "x", errno: .notPermitted), .attachFailed(target: "x", errno: .permissionDenied))
        guard case .loadFailed(_, let code, _) = BPFError.loadFailed(program: "p", errno: .permissionDenied, verifierLog: "") else {
            return XCTFail("not .loadFailed")
        }
        XCTAssertEqual(code.rawValue, EACCES)
    }

    func testPrivilegedMapping() {
        let mapped = BPFError.privileged(.notPermitted, operation: "loading x") { .attachFailed(target: "x", errno: $0) }
        if geteuid() == 0 {
            // Root got EPERM anyway: the kernel refused for another reason, keep the errno.
            XCTAssertEqual(mapped, .attachFailed(target: "x", errno: .notPermitted))
        } else {
            XCTAssertEqual(mapped, .notPrivileged(operation: "loading x"))
        }
        // Other errors are never a privilege problem.
        XCTAssertEqual(
            BPFError.privileged(.noSuchFileOrDirectory, operation: "loading x") { .attachFailed(target: "x", errno: $0) },
            .attachFailed(target: "x", errno: .noSuchFileOrDirectory))
    }

    func testRequirePrivileges() {
        // The effective capabilities decide, not the user id: root without them is refused too.
        if SystemChecks.holds(SystemChecks.monitorNeeds) {
            XCTAssertNoThrow(try SystemChecks.requirePrivileges(for: "testing"))
        } else {
            XCTAssertThrowsError(try SystemChecks.requirePrivileges(for: "testing")) { error in
                guard case .missingCapabilities(let operation, let missing, _) = error as? BPFError else { return XCTFail("\(error)") }
                XCTAssertEqual(operation, "testing")
                XCTAssertFalse(missing.isEmpty)
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
