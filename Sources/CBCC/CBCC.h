// The BCC C API as one umbrella header.
// BCC ships no module map; this header lets Swift import the three headers the
// runtime uses. `bcc/libbpf.h` resolves `linux/bpf.h` to BCC's own copy through
// the `-I/usr/include/bcc/compat` flag from pkg-config `libbcc`.
#include <bcc/bcc_common.h>
#include <bcc/libbpf.h>
#include <bcc/perf_reader.h>
// bcc_free_memory(): releases memory BCC holds for its compiler (the C++ API calls it
// free_bcc_memory; it is plain C here).
#include <bcc/bcc_elf.h>
