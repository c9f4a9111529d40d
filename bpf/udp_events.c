// UDP traffic counted in the kernel per (socket, process, peer): packets and payload bytes as the
// send/receive calls returned them. No sample per datagram: the hot path is two hash lookups and
// four atomic adds. User space reads the counters every interval and at stop; a socket's close
// sends one sample per flow with its final counts.
//
// Compile-time switches (passed by the UDPEvent kind as -D flags), besides netevents_bpf.h's and
// udp_datagrams.h's:
//   CLOSE_CGROUP | CLOSE_KPROBE                      which hook sees a socket's release (or none)
//   MAX_FLOWS                                        size of the (socket, process, peer) map
#if defined(COUNT_KPROBE) || defined(CLOSE_KPROBE)
// Before our headers: the kernel headers it pulls in define READ and ntohs, which ours must not
// be overridden by (ours are NE_READ, and ntohs only where the kernel has none).
#include <uapi/linux/ptrace.h>
#endif
#include "udp_events_abi.h"
#define NE_STAT_COUNT NE_UDP_STAT_COUNT
#include "netevents_bpf.h"
#include "udp_datagrams.h"

#ifndef MAX_FLOWS
#define MAX_FLOWS 65536
#endif

BPF_HASH(flows, struct ne_udp_key, struct ne_udp_flow, MAX_FLOWS);
BPF_HASH(users, u64, struct ne_udp_users, MAX_FLOWS);
// Where a close that finds the buffer full leaves its sample's content, for user space's next
// scan (a process exiting with tens of thousands of sockets outruns the reader). Allocated as
// used: empty but for such bursts. A full one counts the sample as lost.
BPF_F_TABLE("hash", struct ne_udp_closed_key, struct ne_udp_flow, closed_flows, MAX_FLOWS, BPF_F_NO_PREALLOC);
BPF_F_TABLE("hash", u64, u64, closed_sockets, MAX_FLOWS, BPF_F_NO_PREALLOC);  // flush requests: socket -> close_ns

// Field by field: BPF has no memcmp to call.
static __always_inline int same_pair(struct ne_udp_pair *a, struct ne_udp_key *key) {
    u64 a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    __builtin_memcpy(&a0, a->peer.addr, 8);
    __builtin_memcpy(&a1, a->peer.addr + 8, 8);
    __builtin_memcpy(&b0, key->peer.addr, 8);
    __builtin_memcpy(&b1, key->peer.addr + 8, 8);
    return a->pid == key->pid && a->peer.port == key->peer.port && a->peer.family == key->peer.family && a0 == b0 && a1 == b1;
}

// Remembers a new flow under its socket, for the close to find.
static __always_inline void remember_flow(struct ne_udp_key *key) {
    u64 sk = key->sk;
    struct ne_udp_users *known = users.lookup(&sk);
    if (!known) {
        struct ne_udp_users fresh = {};
        fresh.pairs[0].pid = key->pid;
        __builtin_memcpy(&fresh.pairs[0].peer, &key->peer, sizeof(key->peer));
        fresh.count = 1;
        if (users.insert(&sk, &fresh) == 0)
            return;
        known = users.lookup(&sk);
        if (!known)
            return;
    }
    u32 count = known->count;
    // A flow freed when idle comes back with the same pair: keep each pair once.
#pragma unroll
    for (int i = 0; i < NE_UDP_PAIRS_PER_SOCKET; i++) {
        if (i < count && same_pair(&known->pairs[i], key))
            return;
    }
    if (count < NE_UDP_PAIRS_PER_SOCKET) {
        struct ne_udp_pair *slot = &known->pairs[count & (NE_UDP_PAIRS_PER_SOCKET - 1)];
        slot->pid = key->pid;
        __builtin_memcpy(&slot->peer, &key->peer, sizeof(key->peer));
        known->count = count + 1;
    } else if (!known->overflow) {
        known->overflow = 1;
        add_stat(NE_UDP_STAT_SHARED_OVERFLOW, 1);
    }
}

// The first packet of a flow: everything that does not change per packet.
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
        remember_flow(key);
    }
    // Inserted by us or, in a race, by another CPU; nil only when the map is full.
    return flows.lookup(key);
}

static __always_inline int on_datagram(void *ctx, void *sk, long bytes, int tx, struct ne_udp_peer *peer) {
    if (bytes <= 0)
        return 0;
    struct ne_udp_key key = {};
    key.sk = (u64)sk;
    key.pid = bpf_get_current_pid_tgid() >> 32;
    __builtin_memcpy(&key.peer, peer, sizeof(key.peer));
    if (datagram_rejected(key.pid, sk, peer)) {
        add_stat(NE_UDP_STAT_FILTERED, 1);
        return 0;
    }
    struct ne_udp_flow *flow = flows.lookup(&key);
    if (!flow) {
        // The counting hook checked the socket's type and protocol; its family is read here,
        // once per flow (a packet socket may carry protocol number 17 too).
        u16 family = 0;
        NE_READ(family, sk, OFF_SKC_FAMILY);
        if (family != AF_INET && family != AF_INET6)
            return 0;
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

// A socket is being released: send the final counts of each of its flows and forget them.
static __always_inline void emit_close(void *ctx, u64 sk, struct ne_udp_pair *pair) {
    struct ne_udp_close event = {};
    event.key.sk = sk;
    event.key.pid = pair->pid;
    __builtin_memcpy(&event.key.peer, &pair->peer, sizeof(pair->peer));
    struct ne_udp_flow *flow = flows.lookup(&event.key);
    if (!flow)
        return;
    __builtin_memcpy(&event.flow, flow, sizeof(event.flow));
    event.flow.close_ns = bpf_ktime_get_ns();
    flows.delete(&event.key);
    if (try_submit(ctx, &event, sizeof(event)) == 0)
        return;
    // The buffer is full: the sample waits in closed_flows for the next scan (within a second).
    struct ne_udp_closed_key closed = {};
    __builtin_memcpy(&closed.key, &event.key, sizeof(closed.key));
    closed.close_ns = event.flow.close_ns;
    add_stat(closed_flows.insert(&closed, &event.flow) == 0 ? NE_UDP_STAT_DEFERRED_CLOSES : NE_STAT_LOST, 1);
}

static __always_inline void on_release(void *ctx, u64 sk) {
    struct ne_udp_users *known = users.lookup(&sk);
    if (!known)
        return;
    struct ne_udp_users copy = *known;
    users.delete(&sk);
    add_stat(NE_UDP_STAT_CLOSES, 1);
#pragma unroll
    for (int i = 0; i < NE_UDP_PAIRS_PER_SOCKET; i++) {
        if (i < copy.count)
            emit_close(ctx, sk, &copy.pairs[i]);
    }
    if (copy.overflow) {
        // More flows than slots: a close sample with pid 0 asks user space to flush the rest.
        struct ne_udp_close event = {};
        event.key.sk = sk;
        event.flow.close_ns = bpf_ktime_get_ns();
        if (try_submit(ctx, &event, sizeof(event)) != 0) {
            // The buffer is full: the scan flushes it. A later close at the same address replaces
            // the time: the flush takes every flow begun before it, of both sockets.
            u64 when = event.flow.close_ns;
            add_stat(closed_sockets.update(&sk, &when) == 0 ? NE_UDP_STAT_DEFERRED_CLOSES : NE_STAT_LOST, 1);
        }
    }
}

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
