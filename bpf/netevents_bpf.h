// What every program in bpf/ shares, so that each rule exists once: where struct offsets come
// from, how a kernel field is read, the per-CPU counters, the output buffer and the in-kernel
// filters. A program defines NE_STAT_COUNT (its counter enum's size) before including this.
//
// Compile-time switches (set by the monitor core as -D flags):
//   USE_RINGBUF, RINGBUF_PAGES                     ring buffer instead of a perf buffer
//   FILTERS                                        in-kernel filters are on: which, and their values,
//                                                  are in maps (filter_config, ...), so choosing a
//                                                  value costs no compile
//   SOCKET_COOKIES                                 every socket gets its kernel cookie as it is made
//   OFF_*                                          struct member offsets resolved from kernel BTF
//   OFFSETS_FROM_HEADERS                           no BTF: take offsets from the kernel headers
#ifndef NETEVENTS_BPF_H
#define NETEVENTS_BPF_H

#ifdef OFFSETS_FROM_HEADERS
#include <linux/sched.h>
#include <linux/in.h>
#include <linux/socket.h>
#include <net/sock.h>
#include <linux/mm_types.h>
#include <linux/fs.h>
#include <linux/dcache.h>
#define OFF_SKC_FAMILY offsetof(struct sock_common, skc_family)
#define OFF_SKC_STATE offsetof(struct sock_common, skc_state)
#define OFF_SKC_NUM offsetof(struct sock_common, skc_num)
#define OFF_SKC_DPORT offsetof(struct sock_common, skc_dport)
#define OFF_SKC_RCV_SADDR offsetof(struct sock_common, skc_rcv_saddr)
#define OFF_SKC_DADDR offsetof(struct sock_common, skc_daddr)
#define OFF_SKC_V6_RCV_SADDR offsetof(struct sock_common, skc_v6_rcv_saddr)
#define OFF_SKC_V6_DADDR offsetof(struct sock_common, skc_v6_daddr)
#define OFF_SKC_NET offsetof(struct sock_common, skc_net)
#define OFF_NET_NS_INUM (offsetof(struct net, ns) + offsetof(struct ns_common, inum))
#define OFF_TASK_GROUP_LEADER offsetof(struct task_struct, group_leader)
#define OFF_TASK_COMM offsetof(struct task_struct, comm)
#define OFF_SKC_COOKIE offsetof(struct sock_common, skc_cookie)
#define OFF_SK_PROTOCOL offsetof(struct sock, sk_protocol)
#define OFF_SK_TYPE offsetof(struct sock, sk_type)
#define OFF_TASK_MM offsetof(struct task_struct, mm)
#define OFF_MM_EXE_FILE offsetof(struct mm_struct, exe_file)
#define OFF_FILE_DENTRY (offsetof(struct file, f_path) + offsetof(struct path, dentry))
#define OFF_DENTRY_NAME (offsetof(struct dentry, d_name) + offsetof(struct qstr, name))
#else
// With BTF offsets the programs need no kernel struct definitions, only stable ABI constants.
#include "abi_constants.h"
#endif

#ifndef RINGBUF_PAGES
#define RINGBUF_PAGES 64
#endif

// Every kernel struct field is read at an OFF_* offset: the header tree BCC compiles against may
// belong to another kernel version (DESIGN.md, "Kernel struct offsets come from BTF").
#define NE_READ(dst, base, off) bpf_probe_read_kernel(&(dst), sizeof(dst), (void *)(base) + (off))

// Slot 0 of every kind's counter enum is "lost": samples the buffer refused.
#define NE_STAT_LOST 0
BPF_PERCPU_ARRAY(stats, u64, NE_STAT_COUNT);

static __always_inline void add_stat(int slot, u64 amount) {
    u64 *value = stats.lookup(&slot);
    if (value)
        *value += amount;
}

#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
#else
BPF_PERF_OUTPUT(events);
#endif

// Hands one sample to user space; a refusal is counted, never silent.
// 0 when the sample was output; else the buffer is full, and the caller decides what is lost.
static __always_inline int try_submit(void *ctx, void *sample, u32 size) {
#ifdef USE_RINGBUF
    return events.ringbuf_output(sample, size, 0);
#else
    return events.perf_submit(ctx, sample, size);
#endif
}

static __always_inline void submit(void *ctx, void *sample, u32 size) {
    if (try_submit(ctx, sample, size) != 0)
        add_stat(NE_STAT_LOST, 1);
}

// The file name of the current process's executable (task->mm->exe_file's dentry name), what
// actually runs whatever `comm` says; empty for a kernel thread (no mm).
static __always_inline void read_exe(unsigned char *exe) {
    void *task = (void *)bpf_get_current_task();
    void *mm = 0, *file = 0, *dentry = 0;
    const unsigned char *name = 0;
    NE_READ(mm, task, OFF_TASK_MM);
    if (!mm) return;
    NE_READ(file, mm, OFF_MM_EXE_FILE);
    if (!file) return;
    NE_READ(dentry, file, OFF_FILE_DENTRY);
    if (!dentry) return;
    NE_READ(name, dentry, OFF_DENTRY_NAME);
    if (name)
        bpf_probe_read_kernel_str(exe, NE_EXE_LEN, name);
}

// The inode number of the socket's network namespace (as in /proc/PID/ns/net).
static __always_inline u32 read_netns(void *sk) {
    void *net = 0;
    u32 inum = 0;
    NE_READ(net, sk, OFF_SKC_NET);
    if (net)
        NE_READ(inum, net, OFF_NET_NS_INUM);
    return inum;
}

#ifdef FILTERS
// The filters' settings and values, written by user space between load and attach.
BPF_ARRAY(filter_config, struct ne_filter_config, 1);
BPF_HASH(filter_pids, u32, u8, NE_FILTER_MAX_VALUES);
BPF_HASH(filter_ports, u32, u8, NE_FILTER_MAX_VALUES);
BPF_HASH(filter_netns, u32, u8, NE_FILTER_MAX_VALUES);
BPF_CGROUP_ARRAY(filter_cgroups, NE_FILTER_MAX_CGROUPS);

static __always_inline struct ne_filter_config *filter_settings() {
    int zero = 0;
    return filter_config.lookup(&zero);
}

// Whether the current task is inside one of the filtered cgroups, or below one (cgroups made
// after the monitor started count too). Every slot up to the count in use is tried: a fixed trip
// count, which the compiler unrolls (a loop that breaks at the runtime count is not unrolled, and
// the 6.1 verifier cannot bound it).
static __always_inline int current_in_cgroups_of(struct ne_filter_config *config) {
    u32 used = config->cgroups;
    int inside = 0;
#pragma unroll
    for (int i = 0; i < NE_FILTER_MAX_CGROUPS; i++) {
        if (!inside && i < used && filter_cgroups.check_current_task(i) == 1)
            inside = 1;
    }
    return inside;
}

// current_in_cgroups_of for a TCP owner, recorded when the socket is claimed (in the process's own
// context): 1 when no cgroup filter is on.
static __always_inline u8 current_in_cgroups() {
    struct ne_filter_config *config = filter_settings();
    if (!config || !(config->active & NE_FILTER_CGROUP))
        return 1;
    return current_in_cgroups_of(config);
}

// Whether the in-kernel filters reject a record of this process and this socket. One definition,
// so a filter means the same for every kind: the owner's pid and uid, a port that is either the
// local or the remote one, the socket's family and network namespace, and the owner's cgroup:
// `in_cgroups` as recorded for it, or NE_CGROUPS_OF_CURRENT to test the current task (last, as
// the dearest test). Endpoints are read by the caller only when `config` has a port or family filter.
#define NE_CGROUPS_OF_CURRENT (-1)
static __always_inline int config_rejects(struct ne_filter_config *config, u32 pid, u32 uid, u16 family, u16 sport,
                                          u16 dport, void *sk, int in_cgroups) {
    u32 active = config->active;
    if ((active & NE_FILTER_PID) && !filter_pids.lookup(&pid)) return 1;
    if ((active & NE_FILTER_UID) && uid != config->uid) return 1;
    if ((active & NE_FILTER_FAMILY) && family != config->family) return 1;
    if (active & NE_FILTER_PORT) {
        u32 local = sport, remote = dport;
        if (!filter_ports.lookup(&local) && !filter_ports.lookup(&remote)) return 1;
    }
    if (active & NE_FILTER_NETNS) {
        u32 inum = read_netns(sk);
        if (!filter_netns.lookup(&inum)) return 1;
    }
    if (active & NE_FILTER_CGROUP) {
        if (in_cgroups == NE_CGROUPS_OF_CURRENT)
            in_cgroups = current_in_cgroups_of(config);
        if (!in_cgroups) return 1;
    }
    return 0;
}

static __always_inline int filter_rejects(u32 pid, u32 uid, u16 family, u16 sport, u16 dport, void *sk, int in_cgroups) {
    struct ne_filter_config *config = filter_settings();
    return config ? config_rejects(config, pid, uid, family, sport, dport, sk, in_cgroups) : 0;
}
#else
static __always_inline u8 current_in_cgroups() { return 1; }
static __always_inline int filter_rejects(u32 pid, u32 uid, u16 family, u16 sport, u16 dport, void *sk, int in_cgroups) {
    return 0;
}
#endif

// Whether a socket is of `type` (SOCK_STREAM 1, SOCK_DGRAM 2) and `protocol`, for raw tracepoints
// every socket reaches (their record-free arguments carry no protocol). sk_type and sk_protocol
// are neighbours in struct sock since Linux 5.6 (a bitfield before): one read (a probe read costs
// about 25 ns) when they are. Defined where OFF_SK_TYPE and OFF_SK_PROTOCOL are
// (MemberOffset.socketKind, passed for the raw hooks alone).
#ifdef OFF_SK_TYPE
static __always_inline int sock_is(void *sk, u16 want_type, u16 want_protocol) {
    u16 type = 0, protocol = 0;
    if (OFF_SK_TYPE == OFF_SK_PROTOCOL + 2 || OFF_SK_PROTOCOL == OFF_SK_TYPE + 2) {
        u16 pair[2] = {};
        bpf_probe_read_kernel(pair, sizeof(pair), sk + (OFF_SK_TYPE < OFF_SK_PROTOCOL ? OFF_SK_TYPE : OFF_SK_PROTOCOL));
        type = OFF_SK_TYPE < OFF_SK_PROTOCOL ? pair[0] : pair[1];
        protocol = OFF_SK_TYPE < OFF_SK_PROTOCOL ? pair[1] : pair[0];
    } else {
        NE_READ(type, sk, OFF_SK_TYPE);
        NE_READ(protocol, sk, OFF_SK_PROTOCOL);
    }
    return type == want_type && protocol == want_protocol;
}
#endif

// Family, local port and (host-order) remote port of a socket.
static __always_inline void read_ports(void *sk, u16 *family, u16 *sport, u16 *dport) {
    u16 remote = 0;
    NE_READ(*family, sk, OFF_SKC_FAMILY);
    NE_READ(*sport, sk, OFF_SKC_NUM);
    NE_READ(remote, sk, OFF_SKC_DPORT);
    *dport = ntohs(remote);
}

// Both addresses of a socket of `family`, into a sample's fields.
static __always_inline void read_addresses(void *sk, u16 family, unsigned char *saddr, unsigned char *daddr) {
    if (family == AF_INET) {
        bpf_probe_read_kernel(saddr, 4, sk + OFF_SKC_RCV_SADDR);
        bpf_probe_read_kernel(daddr, 4, sk + OFF_SKC_DADDR);
    } else {
        bpf_probe_read_kernel(saddr, 16, sk + OFF_SKC_V6_RCV_SADDR);
        bpf_probe_read_kernel(daddr, 16, sk + OFF_SKC_V6_DADDR);
    }
}

// Family, ports and both addresses of a socket, into a sample's fields.
static __always_inline void read_endpoints(void *sk, u16 *family, u16 *sport, u16 *dport,
                                           unsigned char *saddr, unsigned char *daddr) {
    read_ports(sk, family, sport, dport);
    read_addresses(sk, *family, saddr, daddr);
}

// The process's name into `comm` (its thread-group leader's comm: what ps shows for it, not the
// name one of its worker threads gave itself) and the calling thread's into `thread`.
static __always_inline void read_task_names(unsigned char *comm, unsigned char *thread) {
    bpf_get_current_comm(thread, NE_COMM_LEN);
    void *task = (void *)bpf_get_current_task();
    void *leader = 0;
    NE_READ(leader, task, OFF_TASK_GROUP_LEADER);
    if (!leader || bpf_probe_read_kernel(comm, NE_COMM_LEN, leader + OFF_TASK_COMM) != 0)
        __builtin_memcpy(comm, thread, NE_COMM_LEN);
}

#ifdef SOCKET_COOKIES
// The kernel gives a socket its cookie (sock_common.skc_cookie: the id sock_diag and `ss -e`
// report) on the first request only, and tracing programs cannot request it. These two,
// attached at the root of the cgroup v2 hierarchy, request it as each socket is made: at
// socket(2), and for a passive TCP socket (made by the listener, not by socket(2)) when its
// handshake completes. The tracing programs then read it.
int ne_cookie_at_create(struct bpf_sock *ctx) {
    bpf_get_socket_cookie(ctx);
    return 1;
}
int ne_cookie_at_passive_open(struct bpf_sock_ops *ops) {
    if (ops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
        bpf_get_socket_cookie(ops);
    return 1;
}

// The socket's cookie; 0 for a socket made before the programs above were attached, until
// someone (sock_diag) asks for it.
static __always_inline u64 read_cookie(void *sk) {
    u64 cookie = 0;
    NE_READ(cookie, sk, OFF_SKC_COOKIE);
    return cookie;
}
#else
static __always_inline u64 read_cookie(void *sk) { return 0; }
#endif

#endif
