@testable import BCCRuntime
import Glibc
import XCTest

/// Helper programs start as a shell's children would: nothing blocked, nothing ignored, whatever
/// the thread that starts them blocks or the process ignores (Foundation's `Process` passes both on).
final class ChildProcessTests: XCTestCase {
    func testAHelperStartsWithNoSignalBlockedOrIgnored() throws {
        var blocked = sigset_t()
        sigemptyset(&blocked)
        for number in [SIGINT, SIGTERM] { sigaddset(&blocked, number) }
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previousMask)
        defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
        let previousAction = signal(SIGUSR2, SIG_IGN)
        defer { signal(SIGUSR2, previousAction) }

        // The shell reads its own masks with builtins only (while it waits for a child, it blocks
        // signals itself): signals 1-31. glibc's posix_spawn ignores its internal 32 and 33.
        let check = #"while read key value; do case $key in SigBlk:|SigIgn:) [ $((0x$value & 0x7fffffff)) -eq 0 ] || exit 1;; esac; done < /proc/$$/status"#
        XCTAssertEqual(try ChildProcess.run("/bin/sh", ["-c", check]), 0)
        XCTAssertEqual(try ChildProcess.run("/bin/sh", ["-c", "exit 3"]), 3)
        XCTAssertEqual(try ChildProcess.run("/bin/sh", ["-c", "kill -TERM $$"]), 128 + SIGTERM, "ended by a signal at its default action")
        XCTAssertThrowsError(try ChildProcess.run("/nonexistent/helper", [])) { error in
            guard case .systemCallFailed(let call, _, let code) = error as? BPFError else { return XCTFail("\(error)") }
            XCTAssertEqual(call, "posix_spawn")
            XCTAssertEqual(code, .noSuchFileOrDirectory)
        }
    }
}
