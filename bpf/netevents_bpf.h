// What every program in bpf/ shares, so that each rule exists once: where struct offsets come
// from, how a kernel field is read, the per-CPU counters, the output buffer and the in-kernel
// filters. A program defines NE_STAT_COUNT (its counter enum's size) before including this.
//
// Compile-time switches (set by the monitor core as -D flags):
//   USE_RINGBUF, RINGBUF_PAGES                     ring buffer instead of a perf buffer
//   FILTER_PID, FILTER_UID, FILTER_PORT, FILTER_FAMILY   in-kernel filters, the same for every kind
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
static __always_inline void submit(void *ctx, void *sample, u32 size) {
#ifdef USE_RINGBUF
    if (events.ringbuf_output(sample, size, 0) != 0)
#else
    if (events.perf_submit(ctx, sample, size) != 0)
#endif
        add_stat(NE_STAT_LOST, 1);
}

// Whether the in-kernel filters reject a record of this process and these endpoints. One
// definition, so a filter means the same for every kind: the pid and uid of the owner, a port
// that is either the local or the remote one, the socket's address family.
static __always_inline int filter_rejects(u32 pid, u32 uid, u16 family, u16 sport, u16 dport) {
#ifdef FILTER_PID
    if (pid != FILTER_PID) return 1;
#endif
#ifdef FILTER_UID
    if (uid != FILTER_UID) return 1;
#endif
#ifdef FILTER_PORT
    if (sport != FILTER_PORT && dport != FILTER_PORT) return 1;
#endif
#ifdef FILTER_FAMILY
    if (family != FILTER_FAMILY) return 1;
#endif
    return 0;
}

#if defined(FILTER_PORT) || defined(FILTER_FAMILY)
#define FILTER_NEEDS_ENDPOINTS 1
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

// The inode number of the socket's network namespace (as in /proc/PID/ns/net).
static __always_inline u32 read_netns(void *sk) {
    void *net = 0;
    u32 inum = 0;
    NE_READ(net, sk, OFF_SKC_NET);
    if (net)
        NE_READ(inum, net, OFF_NET_NS_INUM);
    return inum;
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
