// Every UDP datagram a process sends or receives, seen once, in the process's own context, with
// the peer it went to or came from: the hooks the UDP programs share. The including program
// defines on_datagram (declared below), which runs after each send or receive (bytes <= 0: the
// call failed; it is called all the same). Included after netevents_bpf.h.
//
// Compile-time switches (set by the kind as -D flags):
//   COUNT_TRACEPOINT | COUNT_KPROBE | COUNT_FENTRY   which hooks see sends and receives
//   RAW_COUNTING                                     the tracepoints attached raw (offsets from BTF)
//   RECVMSG_FLAGS_ARG                                position (1-based) of `flags` in udp_recvmsg
//   PEERS_CGROUP                                     cgroup sendmsg/recvmsg programs give the peer
//                                                    of unconnected sockets (ne_peer_* below)
#ifndef NETEVENTS_UDP_DATAGRAMS_H
#define NETEVENTS_UDP_DATAGRAMS_H

#ifndef RECVMSG_FLAGS_ARG
#define RECVMSG_FLAGS_ARG 4
#endif

static __always_inline int on_datagram(void *ctx, void *sk, long bytes, int tx, struct ne_udp_peer *peer);

#ifdef PEERS_CGROUP
// The address of an unconnected send or receive is known only inside udp_sendmsg/udp_recvmsg,
// where the kernel runs the cgroup sendmsg/recvmsg programs. They leave it here, per thread, for
// the hook that sees the same datagram's length a moment later on the same thread.
struct ne_peer_stash {
    u64 sk;
    u32 armed;  // set by the cgroup program, cleared by the next datagram of the thread
    struct ne_udp_peer peer;
};
BPF_TABLE("lru_hash", u32, struct ne_peer_stash, peer_stash, 16384);

static __always_inline int stash_peer(struct bpf_sock_addr *ctx, u16 family) {
    if (ctx->type != 2 /* SOCK_DGRAM */ || ctx->protocol != IPPROTO_UDP)
        return 1;
    struct ne_udp_peer peer = {};
    peer.port = ntohs((u16)ctx->user_port);
    if (family == AF_INET) {
        u32 address = ctx->user_ip4;
        if (ctx->family == AF_INET6) {
            // A v4-mapped send from an IPv6 socket runs the IPv4 program: keep the peer as the
            // socket's receives and its connected peer show it (::ffff:a.b.c.d), one flow.
            peer.addr[10] = 0xff;
            peer.addr[11] = 0xff;
            __builtin_memcpy(peer.addr + 12, &address, 4);
            family = AF_INET6;
        } else {
            __builtin_memcpy(peer.addr, &address, 4);
        }
    } else {
        u32 words[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
        __builtin_memcpy(peer.addr, words, 16);
    }
    peer.family = family;
    u64 sk = (u64)ctx->sk;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    // Written in place when the thread has an entry: no allocation per datagram.
    struct ne_peer_stash *stash = peer_stash.lookup(&tid);
    if (stash) {
        stash->sk = sk;
        __builtin_memcpy(&stash->peer, &peer, sizeof(peer));
        stash->armed = 1;
    } else {
        struct ne_peer_stash fresh = {};
        fresh.sk = sk;
        fresh.armed = 1;
        __builtin_memcpy(&fresh.peer, &peer, sizeof(peer));
        peer_stash.update(&tid, &fresh);
    }
#ifdef SOCKET_COOKIES
    // A socket made before tracing began (a server's) has no cookie yet: ask for it here.
    bpf_get_socket_cookie(ctx);
#endif
    return 1;  // never refuse: these programs only look
}

// Attached at the root of the cgroup v2 hierarchy (sendmsg: Linux 4.18, recvmsg: 5.2). A send
// to a v4-mapped address from an IPv6 socket runs the IPv4 program.
int ne_peer_sendmsg4(struct bpf_sock_addr *ctx) { return stash_peer(ctx, AF_INET); }
int ne_peer_sendmsg6(struct bpf_sock_addr *ctx) { return stash_peer(ctx, AF_INET6); }
int ne_peer_recvmsg4(struct bpf_sock_addr *ctx) { return stash_peer(ctx, AF_INET); }
int ne_peer_recvmsg6(struct bpf_sock_addr *ctx) { return stash_peer(ctx, AF_INET6); }
#endif

// The peer of the datagram just sent or received on `sk` by this thread: the address the call
// named (left by the cgroup programs), else the socket's connected peer, else all zero.
static __always_inline void datagram_peer(void *sk, struct ne_udp_peer *peer) {
#ifdef PEERS_CGROUP
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct ne_peer_stash *stash = peer_stash.lookup(&tid);
    if (stash && stash->armed) {
        // Consumed by the thread's next datagram whatever its socket: one left by a call that
        // never reached this hook must not name the peer of a later one.
        stash->armed = 0;
        if (stash->sk == (u64)sk) {
            __builtin_memcpy(peer, &stash->peer, sizeof(*peer));
            return;
        }
    }
#endif
    u16 remote = 0;
    NE_READ(remote, sk, OFF_SKC_DPORT);
    if (!remote)
        return;  // not connected
    NE_READ(peer->family, sk, OFF_SKC_FAMILY);
    peer->port = ntohs(remote);
    if (peer->family == AF_INET)
        bpf_probe_read_kernel(peer->addr, 4, sk + OFF_SKC_DADDR);
    else
        bpf_probe_read_kernel(peer->addr, 16, sk + OFF_SKC_V6_DADDR);
}

// The in-kernel filters, applied per datagram before any map work, so traffic they reject takes
// no map slot. Only what a filter needs is read, and the settings are looked up once. The remote
// port a port filter matches is the datagram's peer's, so unconnected sockets match too.
static __always_inline int datagram_rejected(u32 pid, void *sk, struct ne_udp_peer *peer) {
#ifdef FILTERS
    struct ne_filter_config *config = filter_settings();
    if (!config)
        return 0;
    u16 family = 0, sport = 0, dport = 0;
    if (config->active & (NE_FILTER_PORT | NE_FILTER_FAMILY))
        read_ports(sk, &family, &sport, &dport);
    return config_rejects(config, pid, (u32)bpf_get_current_uid_gid(), family, sport, peer->port, sk, NE_CGROUPS_OF_CURRENT);
#else
    return 0;
#endif
}

static __always_inline int datagram(void *ctx, void *sk, long bytes, int tx, int peek) {
    struct ne_udp_peer peer = {};
    datagram_peer(sk, &peer);
    if (peek)  // the datagram stays queued; it is seen when really read
        return 0;
    return on_datagram(ctx, sk, bytes, tx, &peer);
}

#if defined(COUNT_TRACEPOINT) && defined(RAW_COUNTING)
// sock:sock_send_length / sock_recv_length (Linux 6.3+), after each sendmsg/recvmsg, attached raw
// (sk, ret, flags): no trace record is built for the many sends of other protocols, and a run is
// skipped only while this same program runs on the CPU, not while any program does. Only with
// offsets from BTF: the socket's kind is read from the socket.
// A raw IP socket of protocol UDP is SOCK_RAW: not counted.
static __always_inline int udp_socket(void *sk) {
    return sock_is(sk, 2 /* SOCK_DGRAM */, IPPROTO_UDP);
}

RAW_TRACEPOINT_PROBE(sock_send_length) {
    void *sk = (void *)ctx->args[0];
    if (!udp_socket(sk))
        return 0;
    return datagram(ctx, sk, (int)ctx->args[1], 1, 0);
}

RAW_TRACEPOINT_PROBE(sock_recv_length) {
    void *sk = (void *)ctx->args[0];
    if (!udp_socket(sk))
        return 0;
    return datagram(ctx, sk, (int)ctx->args[1], 0, (int)ctx->args[2] & MSG_PEEK);
}
#elif defined(COUNT_TRACEPOINT)
// The same tracepoints with their records, where offsets come from a header tree (which may be
// another kernel's): the record's protocol and family are the kernel's own. The record carries
// no socket type, so a raw IP socket of protocol UDP is counted here too.
TRACEPOINT_PROBE(sock, sock_send_length) {
    if (args->protocol != IPPROTO_UDP || (args->family != AF_INET && args->family != AF_INET6))
        return 0;
    return datagram(args, args->sk, args->ret, 1, 0);
}

TRACEPOINT_PROBE(sock, sock_recv_length) {
    if (args->protocol != IPPROTO_UDP || (args->family != AF_INET && args->family != AF_INET6))
        return 0;
    return datagram(args, args->sk, args->ret, 0, args->flags & MSG_PEEK);
}
#endif

#if defined(COUNT_KPROBE)
// The reference system's path: kprobes on the UDP send/receive functions, with the socket kept
// per thread from entry to return, where the byte count is known.
struct ne_inflight {
    u64 sk;
    u32 peek;
};
BPF_HASH(inflight, u32, struct ne_inflight, 10240);

static __always_inline int stash(void *sk, u32 peek) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct ne_inflight call = {(u64)sk, peek};
    inflight.update(&tid, &call);
    return 0;
}

static __always_inline int finish(void *ctx, long ret, int tx) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct ne_inflight *call = inflight.lookup(&tid);
    if (!call)
        return 0;
    struct ne_inflight copy = *call;
    inflight.delete(&tid);
    return datagram(ctx, (void *)copy.sk, ret, tx, copy.peek);
}

static __always_inline int stash_recv(struct pt_regs *ctx) {
#if RECVMSG_FLAGS_ARG == 5
    long flags = PT_REGS_PARM5(ctx);
#else
    long flags = PT_REGS_PARM4(ctx);
#endif
    return stash((void *)PT_REGS_PARM1(ctx), flags & MSG_PEEK);
}

// The functions return int: only the register's low 32 bits are theirs (an -EAGAIN read as the
// whole register is 4294967285, which would count as that many bytes).
int kprobe_udp_sendmsg(struct pt_regs *ctx) { return stash((void *)PT_REGS_PARM1(ctx), 0); }
int kretprobe_udp_sendmsg(struct pt_regs *ctx) { return finish(ctx, (int)PT_REGS_RC(ctx), 1); }
int kprobe_udp_recvmsg(struct pt_regs *ctx) { return stash_recv(ctx); }
int kretprobe_udp_recvmsg(struct pt_regs *ctx) { return finish(ctx, (int)PT_REGS_RC(ctx), 0); }
#endif

#if defined(COUNT_FENTRY)
// fexit on the UDP send/receive functions (Linux 5.5+ with BTF): the return value is an argument.
KRETFUNC_PROBE(udp_sendmsg, struct sock *sk, struct msghdr *msg, size_t len, int ret) {
    // udpv6_sendmsg hands a v4-mapped send to udp_sendmsg: its own exit counts that datagram.
    u16 family = 0;
    NE_READ(family, sk, OFF_SKC_FAMILY);
    if (family == AF_INET6)
        return 0;
    return datagram(ctx, sk, ret, 1, 0);
}
KRETFUNC_PROBE(udpv6_sendmsg, struct sock *sk, struct msghdr *msg, size_t len, int ret) {
    return datagram(ctx, sk, ret, 1, 0);
}
#if RECVMSG_FLAGS_ARG == 5
KRETFUNC_PROBE(udp_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int noblock, int flags, int *addr_len, int ret) {
    return datagram(ctx, sk, ret, 0, flags & MSG_PEEK);
}
KRETFUNC_PROBE(udpv6_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int noblock, int flags, int *addr_len, int ret) {
    return datagram(ctx, sk, ret, 0, flags & MSG_PEEK);
}
#else
KRETFUNC_PROBE(udp_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int flags, int *addr_len, int ret) {
    return datagram(ctx, sk, ret, 0, flags & MSG_PEEK);
}
KRETFUNC_PROBE(udpv6_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int flags, int *addr_len, int ret) {
    return datagram(ctx, sk, ret, 0, flags & MSG_PEEK);
}
#endif
#endif

#endif
