#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "CBCCLoader.h"

// Why libbcc is opened, not linked: linked, the dynamic loader maps and relocates libbcc with its
// LLVM and clang (about 150 MB of code) before any code of the executable can run, about 14 ms
// here (a release tool blocked its signals 18.5 to 19 ms after exec, 4.3 ms without libbcc), and
// runs LLVM's initializers before main. During that time a tool cannot block SIGINT
// and SIGTERM yet (CEarlySignals does it from .preinit_array, the earliest point), so a signal
// inherited as ignored was discarded by the kernel. Opened here, that cost moves to the first
// compile, after the block. It also lets a program that links the runtime start, and report a
// missing libbcc as an error naming the package, on a machine without BCC.

// Debian's package installs only the versioned name outside its -dev package.
static const char *const libraryName = "libbcc.so.0";

static struct CBCCFunctions functions;
static const struct CBCCFunctions *opened;
static char failure[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void CBCCLoader_load(void) {
    // Local: BCC's symbols stay out of the global scope, where they would take precedence over
    // a same-named function of another library loaded later.
    void *handle = dlopen(libraryName, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *reason = dlerror();
        snprintf(failure, sizeof failure, "%s", reason != NULL ? reason : libraryName);
        return;
    }
    void *symbol;
#define CBCC_LOOKUP(name)                                                                              \
    symbol = dlsym(handle, #name);                                                                     \
    if (symbol == NULL) {                                                                              \
        snprintf(failure, sizeof failure, "%s has no function %s (BCC too old?)", libraryName, #name); \
        return;                                                                                        \
    }                                                                                                  \
    functions.name = (__typeof__(functions.name))symbol;
    CBCC_FUNCTIONS(CBCC_LOOKUP)
#undef CBCC_LOOKUP
    __atomic_store_n(&opened, &functions, __ATOMIC_RELEASE);
}

const struct CBCCFunctions *CBCCLoader_open(char *error, size_t errorSize) {
    pthread_once(&once, CBCCLoader_load);
    const struct CBCCFunctions *result = __atomic_load_n(&opened, __ATOMIC_ACQUIRE);
    if (result == NULL && errorSize > 0) snprintf(error, errorSize, "%s", failure);
    return result;
}

const struct CBCCFunctions *CBCCLoader_opened(void) {
    // Set once, after the table is complete: NULL means not opened (yet), and a caller that
    // has no table has nothing of BCC's to release either.
    return __atomic_load_n(&opened, __ATOMIC_ACQUIRE);
}
