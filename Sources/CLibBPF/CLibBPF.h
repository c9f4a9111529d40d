// libbpf's BTF and feature-probe API (Debian `libbpf-dev`). Debian's libbcc links
// this same shared libbpf, so this is the library BCC itself uses, not a second copy.
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
