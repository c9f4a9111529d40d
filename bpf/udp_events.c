// UDP traffic counted in the kernel per (socket, process): packets and payload bytes as the
// send/receive calls returned them. No sample per datagram: the hot path is one hash lookup and
// four atomic adds. User space reads the counters every interval and at stop; a socket's close
// sends one sample with its final counts.
//
// Compile-time switches (passed by the UDPEvent kind as -D flags), besides netevents_bpf.h's:
//   COUNT_TRACEPOINT | COUNT_KPROBE | COUNT_FENTRY   which hooks see sends and receives
//   CLOSE_CGROUP | CLOSE_KPROBE                      which hook sees a socket's release (or none)
//   RECVMSG_FLAGS_ARG                                position (1-based) of `flags` in udp_recvmsg
//   MAX_FLOWS                                        size of the (socket, process) map
#if defined(COUNT_KPROBE) || defined(CLOSE_KPROBE)
// Before our headers: the kernel headers it pulls in define READ and ntohs, which ours must not
// be overridden by (ours are NE_READ, and ntohs only where the kernel has none).
#include <uapi/linux/ptrace.h>
#endif
#include "udp_events_abi.h"
#define NE_STAT_COUNT NE_UDP_STAT_COUNT
#include "netevents_bpf.h"

#ifndef MAX_FLOWS
#define MAX_FLOWS 65536
#endif
#ifndef RECVMSG_FLAGS_ARG
#define RECVMSG_FLAGS_ARG 4
#endif

BPF_HASH(flows, struct ne_udp_key, struct ne_udp_flow, MAX_FLOWS);
BPF_HASH(users, u64, struct ne_udp_users, MAX_FLOWS);

static __always_inline void remember_user(u64 sk, u32 pid) {
    struct ne_udp_users *known = users.lookup(&sk);
    if (!known) {
        struct ne_udp_users fresh = {};
        fresh.pids[0] = pid;
        fresh.count = 1;
        if (users.insert(&sk, &fresh) == 0)
            return;
        known = users.lookup(&sk);
        if (!known)
            return;
    }
    u32 count = known->count;
    // A pair freed when idle comes back with the same pid: keep each pid once.
#pragma unroll
    for (int i = 0; i < NE_UDP_PIDS_PER_SOCKET; i++) {
        if (i < count && known->pids[i] == pid)
            return;
    }
    if (count < NE_UDP_PIDS_PER_SOCKET) {
        known->pids[count & (NE_UDP_PIDS_PER_SOCKET - 1)] = pid;
        known->count = count + 1;
    } else {
        known->overflow = 1;
        add_stat(NE_UDP_STAT_SHARED_OVERFLOW, 1);
    }
}

// The first packet of a (socket, process): everything that does not change per packet.
static __always_inline struct ne_udp_flow *new_flow(struct ne_udp_key *key, void *sk) {
    struct ne_udp_flow flow = {};
    flow.start_ns = bpf_ktime_get_ns();
    flow.uid = (u32)bpf_get_current_uid_gid();
    flow.cgroup_id = bpf_get_current_cgroup_id();
    read_task_names(flow.comm, flow.thread);
    read_exe(flow.exe);
    read_endpoints(sk, &flow.family, &flow.sport, &flow.dport, flow.saddr, flow.daddr);
    flow.netns = read_netns(sk);
    flow.cookie = read_cookie(sk);
    if (flows.insert(key, &flow) == 0) {
        add_stat(NE_UDP_STAT_FLOWS, 1);
        remember_user(key->sk, key->pid);
    }
    // Inserted by us or, in a race, by another CPU; nil only when the map is full.
    return flows.lookup(key);
}

// The in-kernel filters, applied per datagram before any map work, so traffic they reject takes
// no map slot. Only what a filter needs is read, and the settings are looked up once.
static __always_inline int rejected(u32 pid, void *sk) {
#ifdef FILTERS
    struct ne_filter_config *config = filter_settings();
    if (!config)
        return 0;
    u16 family = 0, sport = 0, dport = 0;
    if (config->active & (NE_FILTER_PORT | NE_FILTER_FAMILY))
        read_ports(sk, &family, &sport, &dport);
    return config_rejects(config, pid, (u32)bpf_get_current_uid_gid(), family, sport, dport, sk, NE_CGROUPS_OF_CURRENT);
#else
    return 0;
#endif
}

static __always_inline int count_traffic(void *sk, long bytes, int tx) {
    if (bytes <= 0)
        return 0;
    struct ne_udp_key key = {};
    key.sk = (u64)sk;
    key.pid = bpf_get_current_pid_tgid() >> 32;
    if (rejected(key.pid, sk)) {
        add_stat(NE_UDP_STAT_FILTERED, 1);
        return 0;
    }
    struct ne_udp_flow *flow = flows.lookup(&key);
    if (!flow) {
        flow = new_flow(&key, sk);
        if (!flow) {
            // The map is full: the traffic is not attributed, but it is counted.
            add_stat(tx ? NE_UDP_STAT_UNTRACKED_TX_PACKETS : NE_UDP_STAT_UNTRACKED_RX_PACKETS, 1);
            add_stat(tx ? NE_UDP_STAT_UNTRACKED_TX_BYTES : NE_UDP_STAT_UNTRACKED_RX_BYTES, bytes);
            return 0;
        }
    }
#ifdef SOCKET_COOKIES
    if (!flow->cookie)  // made before tracing began; sock_diag may have given it one since
        flow->cookie = read_cookie(sk);
#endif
    if (tx) {
        __sync_fetch_and_add(&flow->tx_packets, 1);
        __sync_fetch_and_add(&flow->tx_bytes, bytes);
    } else {
        __sync_fetch_and_add(&flow->rx_packets, 1);
        __sync_fetch_and_add(&flow->rx_bytes, bytes);
    }
    return 0;
}

// A socket is being released: send the final counts of each (socket, process) and forget them.
static __always_inline void emit_close(void *ctx, u64 sk, u32 pid) {
    struct ne_udp_close event = {};
    event.key.sk = sk;
    event.key.pid = pid;
    struct ne_udp_flow *flow = flows.lookup(&event.key);
    if (!flow)
        return;
    __builtin_memcpy(&event.flow, flow, sizeof(event.flow));
    event.flow.close_ns = bpf_ktime_get_ns();
    flows.delete(&event.key);
    submit(ctx, &event, sizeof(event));
}

static __always_inline void on_release(void *ctx, u64 sk) {
    struct ne_udp_users *known = users.lookup(&sk);
    if (!known)
        return;
    struct ne_udp_users copy = *known;
    users.delete(&sk);
    add_stat(NE_UDP_STAT_CLOSES, 1);
#pragma unroll
    for (int i = 0; i < NE_UDP_PIDS_PER_SOCKET; i++) {
        if (i < copy.count)
            emit_close(ctx, sk, copy.pids[i]);
    }
    if (copy.overflow) {
        // More processes than slots: a close sample with pid 0 asks user space to flush the rest.
        struct ne_udp_close event = {};
        event.key.sk = sk;
        event.flow.close_ns = bpf_ktime_get_ns();
        submit(ctx, &event, sizeof(event));
    }
}

#ifdef COUNT_TRACEPOINT
// sock:sock_send_length / sock_recv_length (Linux 6.3+), after each sendmsg/recvmsg.
TRACEPOINT_PROBE(sock, sock_send_length) {
    if (args->protocol != IPPROTO_UDP || (args->family != AF_INET && args->family != AF_INET6))
        return 0;
    return count_traffic(args->sk, args->ret, 1);
}

TRACEPOINT_PROBE(sock, sock_recv_length) {
    if (args->protocol != IPPROTO_UDP || (args->family != AF_INET && args->family != AF_INET6))
        return 0;
    if (args->flags & MSG_PEEK)  // the datagram stays queued; it is counted when really read
        return 0;
    return count_traffic(args->sk, args->ret, 0);
}
#endif

#if defined(COUNT_KPROBE)
// The reference system's path: kprobes on the UDP send/receive functions, with the socket kept
// per thread from entry to return, where the byte count is known.
BPF_HASH(inflight, u32, u64, 10240);

static __always_inline int stash(void *sk) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 value = (u64)sk;
    inflight.update(&tid, &value);
    return 0;
}

static __always_inline int finish(long ret, int tx) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 *sk = inflight.lookup(&tid);
    if (!sk)
        return 0;
    u64 socket = *sk;
    inflight.delete(&tid);
    return count_traffic((void *)socket, ret, tx);
}

static __always_inline int stash_recv(struct pt_regs *ctx) {
#if RECVMSG_FLAGS_ARG == 5
    long flags = PT_REGS_PARM5(ctx);
#else
    long flags = PT_REGS_PARM4(ctx);
#endif
    if (flags & MSG_PEEK)
        return 0;
    return stash((void *)PT_REGS_PARM1(ctx));
}

int kprobe_udp_sendmsg(struct pt_regs *ctx) { return stash((void *)PT_REGS_PARM1(ctx)); }
int kretprobe_udp_sendmsg(struct pt_regs *ctx) { return finish(PT_REGS_RC(ctx), 1); }
int kprobe_udp_recvmsg(struct pt_regs *ctx) { return stash_recv(ctx); }
int kretprobe_udp_recvmsg(struct pt_regs *ctx) { return finish(PT_REGS_RC(ctx), 0); }
#endif

#if defined(COUNT_FENTRY)
// fexit on the UDP send/receive functions (Linux 5.5+ with BTF): the return value is an argument.
KRETFUNC_PROBE(udp_sendmsg, struct sock *sk, struct msghdr *msg, size_t len, int ret) {
    return count_traffic(sk, ret, 1);
}
KRETFUNC_PROBE(udpv6_sendmsg, struct sock *sk, struct msghdr *msg, size_t len, int ret) {
    return count_traffic(sk, ret, 1);
}
#if RECVMSG_FLAGS_ARG == 5
KRETFUNC_PROBE(udp_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int noblock, int flags, int *addr_len, int ret) {
    return (flags & MSG_PEEK) ? 0 : count_traffic(sk, ret, 0);
}
KRETFUNC_PROBE(udpv6_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int noblock, int flags, int *addr_len, int ret) {
    return (flags & MSG_PEEK) ? 0 : count_traffic(sk, ret, 0);
}
#else
KRETFUNC_PROBE(udp_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int flags, int *addr_len, int ret) {
    return (flags & MSG_PEEK) ? 0 : count_traffic(sk, ret, 0);
}
KRETFUNC_PROBE(udpv6_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int flags, int *addr_len, int ret) {
    return (flags & MSG_PEEK) ? 0 : count_traffic(sk, ret, 0);
}
#endif
#endif

#ifdef CLOSE_CGROUP
// cgroup sock_release (Linux 5.9+), attached at the root of the cgroup v2 hierarchy. The context
// is the kernel's struct sock; its address is the key the counting hooks used (privileged
// programs may use a pointer as a value).
int udp_sock_release(struct bpf_sock *ctx) {
    if (ctx->protocol == IPPROTO_UDP)
        on_release(ctx, (u64)ctx);
    return 1;
}
#endif

#ifdef CLOSE_KPROBE
// kprobe udp_destruct_sock / udpv6_destruct_sock (the reference system's close hook).
int kprobe_udp_destruct_sock(struct pt_regs *ctx) {
    on_release(ctx, (u64)PT_REGS_PARM1(ctx));
    return 0;
}
#endif
