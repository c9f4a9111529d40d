#ifndef CEARLYSIGNALS_H
#define CEARLYSIGNALS_H

// Blocks SIGINT and SIGTERM before the executable's main runs (from its .preinit_array, before
// any library initializer: CEarlySignals.c),
// so that one sent while the tool parses its arguments or starts is kept pending until its
// handlers are in place (TerminationSignals then takes it), even when the tool was started with
// the signal ignored. Why C: Swift can declare no code that runs before main, let alone before the
// libraries' initializers.
//
// Only executables link this target: a library must not change its users' signal masks.

/// 1 when SIGINT and SIGTERM were blocked at the process's start; 0 when the mask was left alone
/// (in XCTest's runner, which links executable targets to test them).
int CEarlySignals_blockedAtStart(void);

#endif
