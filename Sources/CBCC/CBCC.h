// The BCC C API as one umbrella header.
// BCC ships no module map; this header lets Swift import the three headers the
// runtime uses. `bcc/libbpf.h` resolves `linux/bpf.h` to BCC's own copy through
// the `-I/usr/include/bcc/compat` flag from pkg-config `libbcc`.
#include <bcc/bcc_common.h>
#include <bcc/libbpf.h>
#include <bcc/perf_reader.h>
