#include <signal.h>
#include <string.h>

#include "CEarlySignals.h"

static int blockedAtStart = 0;

// Runs from the executable's .preinit_array, the first code of the executable's that the dynamic
// loader runs: once it has loaded and relocated the libraries (1.5 to 2 ms after exec here for a
// release tool built with --static-swift-stdlib, 4.3 ms with Swift's runtime as shared
// libraries; libbcc, with LLVM and clang, is opened at the first compile, CBCCLoader.c), but
// before any library initializer and before Swift's runtime starts a thread. A constructor would
// run only after those. Every thread made later inherits the mask.
//
// The kernel queues a blocked signal even when its disposition is SIG_IGN (it checks the
// disposition again at delivery), so a SIGINT inherited as ignored is kept, not discarded.
static void CEarlySignals_block(int argc, char **argv, char **envp) {
    (void)envp;
    // The test runner links the executables' modules to test their types; its signals (and those
    // of the processes it spawns) are not ours to change. (argv, not program_invocation_name:
    // the C library sets that in its own initializer, which has not run yet.)
    if (argc > 0 && argv[0] != NULL) {
        size_t length = strlen(argv[0]);
        if (length >= 7 && strcmp(argv[0] + length - 7, ".xctest") == 0) return;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    // One thread so far: the process's mask.
    blockedAtStart = sigprocmask(SIG_BLOCK, &set, NULL) == 0;
}

// Only an executable's .preinit_array is run (a shared library may not have one): this target is
// linked by executables alone.
__attribute__((section(".preinit_array"), used)) static void (*const CEarlySignals_preinit)(int, char **, char **) =
    CEarlySignals_block;

int CEarlySignals_blockedAtStart(void) { return blockedAtStart; }
