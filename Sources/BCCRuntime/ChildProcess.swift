import Glibc
import SystemPackage

/// Runs helper programs (`cp` for the merged header tree) with the signal state of a fresh process.
///
/// Foundation's `Process` hands the child the caller's signal mask and ignored signals. The
/// tools block SIGINT and SIGTERM from their first instruction (until their handlers are in
/// place) and ignore SIGPIPE, and Swift concurrency's threads block signals too: a `cp` started
/// from there could not be interrupted. `posix_spawn` with an empty mask and every signal at its
/// default action gives the child what a shell would.
package enum ChildProcess {
    /// Runs `path` with `arguments` (standard input, output and error inherited) and waits for it.
    /// - Returns: its exit status, or 128 + the signal that ended it.
    /// - Throws: `BPFError.systemCallFailed` when it cannot be started or waited for.
    static func run(_ path: String, _ arguments: [String]) throws(BPFError) -> Int32 {
        var pid: pid_t = 0
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let spawned = withFreshSignals { posix_spawn(&pid, path, nil, &$0, argv, environ) }
        guard spawned == 0 else {
            throw BPFError.systemCallFailed(call: "posix_spawn", purpose: "running \(path)", errno: Errno(rawValue: spawned))
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else {
                throw BPFError.systemCallFailed(call: "waitpid", purpose: "waiting for \(path)", errno: .current)
            }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import (they are macros).
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Calls `body` with spawn attributes that give the child an empty signal mask and every
    /// signal at its default action (the tests' tool launcher uses them too).
    package static func withFreshSignals<Result>(_ body: (inout posix_spawnattr_t) -> Result) -> Result {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        return body(&attributes)
    }
}
