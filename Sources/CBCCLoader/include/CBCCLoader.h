#ifndef CBCCLOADER_H
#define CBCCLOADER_H

// BCC's C API (Debian `libbpfcc-dev`), from libbcc opened with dlopen at the first compile
// instead of being linked (CBCCLoader.c says why).
//
// Each function the runtime calls is a field of CBCCFunctions, typed from BCC's own declaration,
// so a signature cannot drift from the header. A direct call to BCC fails to link: nothing links
// libbcc. Its `linux/bpf.h` is the system's (linux-libc-dev), the one libbpf's headers use too.
// bcc_elf.h: bcc_free_memory (the C++ API's free_bcc_memory).

#include <stddef.h>
#if !__has_include(<bcc/bcc_common.h>)
#error "BCC's headers are missing: apt-get install libbpfcc-dev (scripts/setup installs it)"
#endif
#include <bcc/bcc_common.h>
#include <bcc/bcc_elf.h>
#include <bcc/libbpf.h>
#include <bcc/perf_reader.h>

// The libbcc functions the runtime calls, once: the table below and the lookups are made from it.
#define CBCC_FUNCTIONS(X) \
    X(bpf_module_create_c_from_string) \
    X(bpf_module_destroy) \
    X(bpf_module_license) \
    X(bpf_module_kern_version) \
    X(bpf_num_functions) \
    X(bpf_function_name) \
    X(bpf_function_start) \
    X(bpf_function_size) \
    X(bcc_func_load) \
    X(bcc_free_memory) \
    X(bpf_table_fd) \
    X(bpf_table_type) \
    X(bpf_table_key_size) \
    X(bpf_table_leaf_size) \
    X(bpf_table_max_entries) \
    X(bpf_lookup_elem) \
    X(bpf_update_elem) \
    X(bpf_delete_elem) \
    X(bpf_get_next_key) \
    X(bpf_attach_tracepoint) \
    X(bpf_attach_raw_tracepoint) \
    X(bpf_attach_kprobe) \
    X(bpf_detach_kprobe) \
    X(bpf_attach_kfunc) \
    X(bpf_open_perf_buffer_opts) \
    X(perf_reader_event_read) \
    X(perf_reader_fd) \
    X(perf_reader_free)

#define CBCC_FIELD(name) __typeof__(name) *_Nonnull name;

/// The libbcc functions the runtime calls.
struct CBCCFunctions {
    CBCC_FUNCTIONS(CBCC_FIELD)
};

#undef CBCC_FIELD

/// Opens libbcc (once; later calls return the first result) and looks up every function.
/// Returns the table, or NULL with the reason (dlerror's message) copied into `error`.
const struct CBCCFunctions *_Nullable CBCCLoader_open(char *_Nonnull error, size_t errorSize);

/// The table when an earlier `CBCCLoader_open` succeeded, else NULL. Never opens libbcc.
const struct CBCCFunctions *_Nullable CBCCLoader_opened(void);

#endif
