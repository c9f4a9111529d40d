// UDP traffic counted in the kernel per (socket, process): packets and payload bytes as the
// send/receive calls returned them. No sample per datagram: the hot path is one hash lookup and
// four atomic adds. User space reads the counters every interval and at stop; a socket's close
// sends one sample with its final counts.
//
// Compile-time switches (passed by the UDPEvent module as -D flags):
//   COUNT_TRACEPOINT | COUNT_KPROBE | COUNT_FENTRY   which hooks see sends and receives
//   CLOSE_CGROUP | CLOSE_KPROBE                      which hook sees a socket's release (or none)
//   RECVMSG_FLAGS_ARG                                position (1-based) of `flags` in udp_recvmsg
//   USE_RINGBUF, RINGBUF_PAGES                       ring buffer instead of a perf buffer
//   MAX_FLOWS                                        size of the (socket, process) map
//   FILTER_PID, FILTER_UID, FILTER_PORT, FILTER_FAMILY   in-kernel filters
//   OFF_*                                            struct member offsets resolved from kernel BTF
//   OFFSETS_FROM_HEADERS                             no BTF: take offsets from the kernel headers
#ifdef OFFSETS_FROM_HEADERS
#include <linux/sched.h>
#include <linux/in.h>
#include <linux/socket.h>
#include <net/sock.h>
#define OFF_SKC_FAMILY offsetof(struct sock_common, skc_family)
#define OFF_SKC_NUM offsetof(struct sock_common, skc_num)
#define OFF_SKC_DPORT offsetof(struct sock_common, skc_dport)
#define OFF_SKC_RCV_SADDR offsetof(struct sock_common, skc_rcv_saddr)
#define OFF_SKC_DADDR offsetof(struct sock_common, skc_daddr)
#define OFF_SKC_V6_RCV_SADDR offsetof(struct sock_common, skc_v6_rcv_saddr)
#define OFF_SKC_V6_DADDR offsetof(struct sock_common, skc_v6_daddr)
#define OFF_SKC_NET offsetof(struct sock_common, skc_net)
#define OFF_NET_NS_INUM (offsetof(struct net, ns) + offsetof(struct ns_common, inum))
#else
// abi_constants.h is prepended here by the UDPEvent module.
#endif

#if defined(COUNT_KPROBE) || defined(CLOSE_KPROBE)
#include <uapi/linux/ptrace.h>
#endif

#ifndef MAX_FLOWS
#define MAX_FLOWS 65536
#endif
#ifndef RINGBUF_PAGES
#define RINGBUF_PAGES 64
#endif
#ifndef RECVMSG_FLAGS_ARG
#define RECVMSG_FLAGS_ARG 4
#endif
#define PIDS_PER_SOCKET 4

// Counters, one slot each in the per-CPU `stats` array; mirrored by UDPMonitor.Statistics.
#define STAT_LOST 0
#define STAT_FLOWS 1
#define STAT_UNTRACKED_TX_PACKETS 2
#define STAT_UNTRACKED_TX_BYTES 3
#define STAT_UNTRACKED_RX_PACKETS 4
#define STAT_UNTRACKED_RX_BYTES 5
#define STAT_CLOSES 6
#define STAT_SHARED_OVERFLOW 7
#define STAT_COUNT 8

struct udp_key_t {
    u64 sk;
    u32 pid;
    u32 pad;
};

// 120 bytes; UDPFlowDecoder reads it at these offsets.
struct udp_flow_t {
    u64 start_ns;       //   0  first packet seen
    u64 close_ns;       //   8  set in the close sample
    u64 tx_bytes;       //  16
    u64 rx_bytes;       //  24
    u64 tx_packets;     //  32
    u64 rx_packets;     //  40
    u64 cgroup_id;      //  48
    u32 uid;            //  56
    u32 netns;          //  60
    u16 family;         //  64
    u16 sport;          //  66  host order
    u16 dport;          //  68  host order, 0 unless connected
    u8 filtered;        //  70  counted by no one: an in-kernel filter rejected it
    u8 pad;             //  71
    u8 saddr[16];       //  72
    u8 daddr[16];       //  88
    char comm[TASK_COMM_LEN]; // 104
};

// The close sample: 136 bytes.
struct udp_close_t {
    struct udp_key_t key;
    struct udp_flow_t flow;
};

// Which processes used a socket, so its close can find every (socket, process) entry.
struct udp_users_t {
    u32 pids[PIDS_PER_SOCKET];
    u32 count;
    u32 overflow;
};

BPF_HASH(flows, struct udp_key_t, struct udp_flow_t, MAX_FLOWS);
BPF_HASH(users, u64, struct udp_users_t, MAX_FLOWS);
BPF_PERCPU_ARRAY(stats, u64, STAT_COUNT);
#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(closes, RINGBUF_PAGES);
#else
BPF_PERF_OUTPUT(closes);
#endif

#define READ(dst, base, off) bpf_probe_read_kernel(&(dst), sizeof(dst), (void *)(base) + (off))

static __always_inline void add_stat(int slot, u64 amount) {
    u64 *value = stats.lookup(&slot);
    if (value)
        *value += amount;
}

static __always_inline void remember_user(u64 sk, u32 pid) {
    struct udp_users_t *known = users.lookup(&sk);
    if (!known) {
        struct udp_users_t fresh = {};
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
    for (int i = 0; i < PIDS_PER_SOCKET; i++) {
        if (i < count && known->pids[i] == pid)
            return;
    }
    if (count < PIDS_PER_SOCKET) {
        known->pids[count & (PIDS_PER_SOCKET - 1)] = pid;
        known->count = count + 1;
    } else {
        known->overflow = 1;
        add_stat(STAT_SHARED_OVERFLOW, 1);
    }
}

// The first packet of a (socket, process): everything that does not change per packet.
static __always_inline struct udp_flow_t *new_flow(struct udp_key_t *key, void *sk) {
    struct udp_flow_t flow = {};
    flow.start_ns = bpf_ktime_get_ns();
    flow.uid = (u32)bpf_get_current_uid_gid();
    flow.cgroup_id = bpf_get_current_cgroup_id();
    bpf_get_current_comm(&flow.comm, sizeof(flow.comm));
    READ(flow.family, sk, OFF_SKC_FAMILY);
    READ(flow.sport, sk, OFF_SKC_NUM);
    u16 dport = 0;
    READ(dport, sk, OFF_SKC_DPORT);
    flow.dport = ntohs(dport);
    if (flow.family == AF_INET) {
        bpf_probe_read_kernel(flow.saddr, 4, sk + OFF_SKC_RCV_SADDR);
        bpf_probe_read_kernel(flow.daddr, 4, sk + OFF_SKC_DADDR);
    } else {
        bpf_probe_read_kernel(flow.saddr, 16, sk + OFF_SKC_V6_RCV_SADDR);
        bpf_probe_read_kernel(flow.daddr, 16, sk + OFF_SKC_V6_DADDR);
    }
    void *net = 0;
    READ(net, sk, OFF_SKC_NET);
    if (net)
        READ(flow.netns, net, OFF_NET_NS_INUM);
#ifdef FILTER_UID
    if (flow.uid != FILTER_UID) flow.filtered = 1;
#endif
#ifdef FILTER_PORT
    if (flow.sport != FILTER_PORT && flow.dport != FILTER_PORT) flow.filtered = 1;
#endif
#ifdef FILTER_FAMILY
    if (flow.family != FILTER_FAMILY) flow.filtered = 1;
#endif
    if (flows.insert(key, &flow) == 0) {
        add_stat(STAT_FLOWS, 1);
        remember_user(key->sk, key->pid);
    }
    // Inserted by us or, in a race, by another CPU; nil only when the map is full.
    return flows.lookup(key);
}

static __always_inline int count_traffic(void *sk, long bytes, int tx) {
    if (bytes <= 0)
        return 0;
    struct udp_key_t key = {};
    key.sk = (u64)sk;
    key.pid = bpf_get_current_pid_tgid() >> 32;
#ifdef FILTER_PID
    if (key.pid != FILTER_PID)
        return 0;
#endif
    struct udp_flow_t *flow = flows.lookup(&key);
    if (!flow) {
        flow = new_flow(&key, sk);
        if (!flow) {
            // The map is full: the traffic is not attributed, but it is counted.
            add_stat(tx ? STAT_UNTRACKED_TX_PACKETS : STAT_UNTRACKED_RX_PACKETS, 1);
            add_stat(tx ? STAT_UNTRACKED_TX_BYTES : STAT_UNTRACKED_RX_BYTES, bytes);
            return 0;
        }
    }
    if (flow->filtered)
        return 0;
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
    struct udp_close_t event = {};
    event.key.sk = sk;
    event.key.pid = pid;
    struct udp_flow_t *flow = flows.lookup(&event.key);
    if (!flow)
        return;
    __builtin_memcpy(&event.flow, flow, sizeof(event.flow));
    event.flow.close_ns = bpf_ktime_get_ns();
    flows.delete(&event.key);
    if (event.flow.filtered)
        return;
#ifdef USE_RINGBUF
    if (closes.ringbuf_output(&event, sizeof(event), 0) != 0)
#else
    if (closes.perf_submit(ctx, &event, sizeof(event)) != 0)
#endif
        add_stat(STAT_LOST, 1);
}

static __always_inline void on_release(void *ctx, u64 sk) {
    struct udp_users_t *known = users.lookup(&sk);
    if (!known)
        return;
    struct udp_users_t copy = *known;
    users.delete(&sk);
    add_stat(STAT_CLOSES, 1);
#pragma unroll
    for (int i = 0; i < PIDS_PER_SOCKET; i++) {
        if (i < copy.count)
            emit_close(ctx, sk, copy.pids[i]);
    }
    if (copy.overflow) {
        // More processes than slots: a close sample with pid 0 asks user space to flush the rest.
        struct udp_close_t event = {};
        event.key.sk = sk;
        event.flow.close_ns = bpf_ktime_get_ns();
#ifdef USE_RINGBUF
        if (closes.ringbuf_output(&event, sizeof(event), 0) != 0)
#else
        if (closes.perf_submit(ctx, &event, sizeof(event)) != 0)
#endif
            add_stat(STAT_LOST, 1);
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
