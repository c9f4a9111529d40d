// One event per TCP connect, accept, failed connect and close, attributed to the process that
// connected or accepted the socket (or first did I/O on it).
//
// Compile-time switches (passed by the TCPEvent kind as -D flags), besides netevents_bpf.h's:
//   HOOK_TRACEPOINT | HOOK_KPROBE | HOOK_FENTRY   which hook sees state changes (exactly one)
//   RAW_STATE_CHANGE                               the tracepoint attached raw (Linux 5.6+)
//   MAX_SOCKETS                                    size of the LRU map of live sockets
//   TRACK_ACCEPT                                   claim passive sockets at accept(2)/accept4(2) exit
//   TRACK_IO                                       claim unowned sockets at their first send/recv
//   EVENT_KINDS                                    bit (1 << kind) per enum ne_tcp_event_kind reported
//   PASS_UNKNOWN_OWNERS                            a close whose owner is unknown skips the owner filters
//                                                  (pid, uid, cgroup): user space, polling open
//                                                  connections, may know the owner and filters it then
#ifdef HOOK_KPROBE
// Before our headers: the kernel headers it pulls in define READ and ntohs, which ours must not
// be overridden by (ours are NE_READ, and ntohs only where the kernel has none).
#include <uapi/linux/ptrace.h>
#endif
#include "tcp_events_abi.h"
#define NE_STAT_COUNT NE_TCP_STAT_COUNT
#include "netevents_bpf.h"

#ifdef OFFSETS_FROM_HEADERS
#include <linux/tcp.h>
#include <linux/fdtable.h>
#include <linux/net.h>
#define OFF_TCP_BYTES_RECEIVED offsetof(struct tcp_sock, bytes_received)
#define OFF_TCP_BYTES_ACKED offsetof(struct tcp_sock, bytes_acked)
#define OFF_TCP_SEGS_IN offsetof(struct tcp_sock, segs_in)
#define OFF_TCP_SEGS_OUT offsetof(struct tcp_sock, segs_out)
#define OFF_TCP_DATA_SEGS_IN offsetof(struct tcp_sock, data_segs_in)
#define OFF_TCP_DATA_SEGS_OUT offsetof(struct tcp_sock, data_segs_out)
#define OFF_TASK_FILES offsetof(struct task_struct, files)
#define OFF_FILES_FDT offsetof(struct files_struct, fdt)
#define OFF_FDTABLE_FD offsetof(struct fdtable, fd)
#define OFF_FDTABLE_MAX_FDS offsetof(struct fdtable, max_fds)
#define OFF_FILE_PRIVATE_DATA offsetof(struct file, private_data)
#define OFF_SOCKET_SK offsetof(struct socket, sk)
#define OFF_TCP_SRTT_US offsetof(struct tcp_sock, srtt_us)
#define OFF_TCP_MDEV_US offsetof(struct tcp_sock, mdev_us)
#define OFF_TCP_RTT_MIN offsetof(struct tcp_sock, rtt_min)
#define OFF_TCP_TOTAL_RETRANS offsetof(struct tcp_sock, total_retrans)
#define OFF_SK_ERR offsetof(struct sock, sk_err)
#define OFF_INET_SPORT offsetof(struct inet_sock, inet_sport)
#endif

#ifndef EVENT_KINDS
#define EVENT_KINDS ((1 << NE_TCP_EVENT_CLOSE) | (1 << NE_TCP_EVENT_CONNECT) | (1 << NE_TCP_EVENT_ACCEPT) | (1 << NE_TCP_EVENT_FAIL))
#endif
// Whether events of `kind` are reported: a constant, so the code of an unreported kind is dropped.
#define REPORTS(kind) ((EVENT_KINDS) & (1 << (kind)))

#ifndef MAX_SOCKETS
#define MAX_SOCKETS 65536
#endif

// TCP states (include/net/tcp_states.h), stable kernel ABI.
#define ST_ESTABLISHED 1
#define ST_SYN_SENT 2
#define ST_SYN_RECV 3
#define ST_CLOSE 7
#define ST_LISTEN 10

BPF_TABLE("lru_hash", u64, struct ne_tcp_owner, owners, MAX_SOCKETS);

static __always_inline void fill_owner(struct ne_tcp_owner *owner, u8 source) {
    owner->pid = bpf_get_current_pid_tgid() >> 32;
    owner->uid = (u32)bpf_get_current_uid_gid();
    owner->cgroup_id = bpf_get_current_cgroup_id();
    owner->source = source;
    owner->in_cgroups = current_in_cgroups();
    read_task_names(owner->comm, owner->thread);
    read_exe(owner->exe);
}

// Where a sample is built: in place in the ring buffer (no stack copy, no copy into the buffer),
// or with a perf buffer in a per-CPU scratch slot that perf_submit copies out: slot 0 for the
// state-change hook (softirq or process context), slot 1 for the claims made in system calls, so
// a softirq that interrupts a claim on the same CPU cannot write over its sample. Zeroed first: no
// byte of an earlier sample or of the stack reaches user space. A full ring buffer counts the
// sample lost. (BCC rewrites map calls only outside macros, hence two functions.)
#define SLOT_STATE_CHANGE 0
#define SLOT_CLAIM 1
#ifdef USE_RINGBUF
static __always_inline struct ne_tcp_event *reserve_event(int slot) {
    struct ne_tcp_event *event = events.ringbuf_reserve(sizeof(struct ne_tcp_event));
    if (!event) {
        add_stat(NE_STAT_LOST, 1);
        return 0;
    }
    __builtin_memset(event, 0, sizeof(*event));
    return event;
}
static __always_inline void submit_event(void *ctx, struct ne_tcp_event *event) {
    events.ringbuf_submit(event, 0);
}
#else
BPF_PERCPU_ARRAY(event_slot, struct ne_tcp_event, 2);
static __always_inline struct ne_tcp_event *reserve_event(int slot) {
    struct ne_tcp_event *event = event_slot.lookup(&slot);
    if (event)
        __builtin_memset(event, 0, sizeof(*event));
    return event;
}
static __always_inline void submit_event(void *ctx, struct ne_tcp_event *event) {
    submit(ctx, event, sizeof(*event));
}
#endif

// A state change that is neither reported nor a close: only a connect and a passive open need
// map work; every other transition returns here, before any sample exists.
static __always_inline int on_open_transition(struct sock *sk, int oldstate, int newstate) {
    u64 key = (u64)sk;
    if (oldstate == ST_CLOSE && newstate == ST_SYN_SENT) {
        // connect(2): runs in the connecting process.
        struct ne_tcp_owner owner = {};
        owner.start_ns = bpf_ktime_get_ns();
        fill_owner(&owner, NE_TCP_OWNER_CONNECT);
        owners.update(&key, &owner);
        add_stat(NE_TCP_STAT_TRACKED, 1);
    } else if (newstate == ST_SYN_RECV || (oldstate == ST_SYN_RECV && newstate == ST_ESTABLISHED)) {
        // A passive child socket is born, in softirq: whoever runs now (on loopback, the
        // client) is not its owner. The owner is claimed at accept or first I/O.
        // The tracepoint sees the birth (LISTEN->SYN_RECV, from inet_csk_clone_lock); the
        // kprobe and fentry hooks on tcp_set_state do not, as the clone sets the state
        // directly, so they start tracking at SYN_RECV->ESTABLISHED, which precedes accept.
        // The birth replaces any entry at the socket's address: one left by an earlier socket
        // whose close the kernel skipped (a missed run) must not name this socket's owner, which
        // accept would then not claim. ESTABLISHED keeps the birth's entry, and a simultaneous
        // open (SYN_SENT -> SYN_RECV) its connect's. The kprobe and fentry hooks, which see no
        // birth, only insert: at ESTABLISHED a Fast Open child may already be accepted and
        // used, and its owner must stay (a stale entry there is left as it was).
#ifdef HOOK_TRACEPOINT
        int replaces = newstate == ST_SYN_RECV && oldstate != ST_SYN_SENT;
#else
        int replaces = 0;
#endif
        struct ne_tcp_owner owner = {};
        owner.start_ns = bpf_ktime_get_ns();
        if (replaces) {
            owners.update(&key, &owner);
            add_stat(NE_TCP_STAT_TRACKED, 1);
        } else if (owners.insert(&key, &owner) == 0) {
            add_stat(NE_TCP_STAT_TRACKED, 1);
        }
    }
    return 0;
}

// What a state change reports: a close (or a failed connect) on TCP_CLOSE, a connect on
// SYN_SENT -> ESTABLISHED, else nothing (0).
static __always_inline u8 reported_kind(int oldstate, int newstate) {
    if (newstate == ST_CLOSE)
        return oldstate == ST_SYN_SENT ? NE_TCP_EVENT_FAIL : NE_TCP_EVENT_CLOSE;
    if (oldstate == ST_SYN_SENT && newstate == ST_ESTABLISHED)
        return NE_TCP_EVENT_CONNECT;
    return 0;
}

// The first half of a report: who owned the socket (into `owner`), the filters applied. A close
// or failure also forgets the socket, and an unclaimed one gets the closing task as the best
// remaining guess; a connect is reported only for a socket whose connect(2) was seen. Returns 0
// when there is nothing to report (a listener closing, an unreported kind, a filtered record),
// before any sample is reserved.
static __always_inline int begin_report(struct sock *sk, u8 kind, int oldstate, u16 family, u16 sport, u16 dport,
                                        struct ne_tcp_owner *owner) {
    u64 key = (u64)sk;
    if (kind == NE_TCP_EVENT_CONNECT) {
        if (!REPORTS(NE_TCP_EVENT_CONNECT))
            return 0;
        struct ne_tcp_owner *tracked = owners.lookup(&key);
        if (!tracked)
            return 0;
        __builtin_memcpy(owner, tracked, sizeof(*owner));
    } else {
        struct ne_tcp_owner *tracked = owners.lookup(&key);
        if (oldstate == ST_LISTEN) {
            // A listening socket closing is not a connection.
            if (tracked)
                owners.delete(&key);
            return 0;
        }
        if (tracked) {
            __builtin_memcpy(owner, tracked, sizeof(*owner));
            owners.delete(&key);
            add_stat(NE_TCP_STAT_CLOSED_TRACKED, 1);
        } else {
            add_stat(NE_TCP_STAT_CLOSED_UNTRACKED, 1);
        }
        if (!REPORTS(kind))
            return 0;
        if (owner->source == NE_TCP_OWNER_NONE) {
            // Unclaimed (never accepted or used, opened before tracing began, or evicted from a
            // full map): the owner is unknown. Whoever runs the close (softirq: any task, a
            // kernel thread, this tracer) is not named: pid 0, no user, and an unknown owner
            // passes no pid, uid or cgroup filter (start_ns is kept).
            owner->pid = 0;
            owner->uid = NE_UID_UNKNOWN;
            owner->in_cgroups = 0;
        }
    }
#if defined(PASS_UNKNOWN_OWNERS) && defined(FILTERS)
    if (kind != NE_TCP_EVENT_CONNECT && owner->source == NE_TCP_OWNER_NONE) {
        struct ne_filter_config *config = filter_settings();
        if (config) {
            struct ne_filter_config endpoints_only = *config;
            endpoints_only.active &= ~(NE_FILTER_PID | NE_FILTER_UID | NE_FILTER_CGROUP);
            if (config_rejects(&endpoints_only, 0, 0, family, sport, dport, sk, 1)) {
                add_stat(NE_TCP_STAT_FILTERED, 1);
                return 0;
            }
        }
        return 1;
    }
#endif
    if (filter_rejects(owner->pid, owner->uid, family, sport, dport, sk, owner->in_cgroups)) {
        add_stat(NE_TCP_STAT_FILTERED, 1);
        return 0;
    }
    return 1;
}

// The second half: the sample's owner fields and the socket's counters and health, read only
// now that the event is reported. Endpoints are already in `event`.
static __always_inline void finish_report(struct sock *sk, u8 kind, int oldstate, const struct ne_tcp_owner *owner,
                                          struct ne_tcp_event *event) {
    event->ts_ns = bpf_ktime_get_ns();
    event->start_ns = owner->start_ns;
    event->kind = kind;
    event->oldstate = oldstate;
    event->pid = owner->pid;
    event->uid = owner->uid;
    event->cgroup_id = owner->cgroup_id;
    event->owner_source = owner->source;
    __builtin_memcpy(event->comm, owner->comm, sizeof(event->comm));
    __builtin_memcpy(event->thread, owner->thread, sizeof(event->thread));
    __builtin_memcpy(event->exe, owner->exe, sizeof(event->exe));
    NE_READ(event->rx_bytes, sk, OFF_TCP_BYTES_RECEIVED);
    NE_READ(event->tx_bytes, sk, OFF_TCP_BYTES_ACKED);
    NE_READ(event->segs_in, sk, OFF_TCP_SEGS_IN);
    NE_READ(event->segs_out, sk, OFF_TCP_SEGS_OUT);
    NE_READ(event->data_segs_in, sk, OFF_TCP_DATA_SEGS_IN);
    NE_READ(event->data_segs_out, sk, OFF_TCP_DATA_SEGS_OUT);
    // Health as tcp_info reports it (tcp_get_info): srtt_us holds 8x the smoothed RTT and
    // mdev_us 4x its mean deviation; rtt_min is a struct minmax whose first sample
    // {u32 t; u32 v;} holds the current minimum, so its value is 4 bytes in.
    u32 srtt8 = 0, mdev4 = 0;
    NE_READ(srtt8, sk, OFF_TCP_SRTT_US);
    NE_READ(mdev4, sk, OFF_TCP_MDEV_US);
    event->srtt_us = srtt8 >> 3;
    event->rttvar_us = mdev4 >> 2;
    NE_READ(event->min_rtt_us, sk, OFF_TCP_RTT_MIN + 4);
    NE_READ(event->retransmits, sk, OFF_TCP_TOTAL_RETRANS);
    if (kind == NE_TCP_EVENT_FAIL)
        NE_READ(event->error, sk, OFF_SK_ERR);  // set before tcp_done() moves it to TCP_CLOSE
    event->netns = read_netns(sk);
    event->socket_id = read_cookie(sk);
}

#if defined(HOOK_TRACEPOINT) && !defined(RAW_STATE_CHANGE)
// sock:inet_sock_set_state, Linux 4.16+, where it cannot be attached raw. The record carries the
// endpoints: nothing is read from the socket until an event is reported.
TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != IPPROTO_TCP)
        return 0;
    if (args->newstate == ST_CLOSE)
        add_stat(NE_TCP_STAT_CLOSE_RUNS, 1);
    struct sock *sk = (struct sock *)args->skaddr;
    int oldstate = args->oldstate;
    u8 kind = reported_kind(oldstate, args->newstate);
    if (!kind)
        return on_open_transition(sk, oldstate, args->newstate);
    struct ne_tcp_owner owner = {};
    if (!begin_report(sk, kind, oldstate, args->family, args->sport, args->dport, &owner))
        return 0;
    struct ne_tcp_event *event = reserve_event(SLOT_STATE_CHANGE);
    if (!event)
        return 0;
    event->family = args->family;
    event->sport = args->sport;
    event->dport = args->dport;
    if (args->family == AF_INET) {
        __builtin_memcpy(event->saddr, args->saddr, 4);
        __builtin_memcpy(event->daddr, args->daddr, 4);
    } else {
        __builtin_memcpy(event->saddr, args->saddr_v6, 16);
        __builtin_memcpy(event->daddr, args->daddr_v6, 16);
    }
    finish_report(sk, kind, oldstate, &owner, event);
    submit_event(args, event);
    return 0;
}
#endif

#if defined(HOOK_KPROBE) || defined(HOOK_FENTRY) || defined(RAW_STATE_CHANGE)
// A state change seen without a tracepoint record: the endpoints come from the socket, read only
// for an event that is reported.
static __always_inline int on_state_change(void *ctx, struct sock *sk, int oldstate, int newstate) {
    u8 kind = reported_kind(oldstate, newstate);
    if (!kind)
        return on_open_transition(sk, oldstate, newstate);
    u16 family = 0, sport = 0, dport = 0;
#ifdef RAW_STATE_CHANGE
    // The tracepoint runs after tcp_set_state unhashed a closing socket and released its port
    // (inet_num is 0 by then): the local port is read where the tracepoint's record takes it,
    // in place of read_ports' inet_num.
    u16 local = 0, remote = 0;
    NE_READ(family, sk, OFF_SKC_FAMILY);
    NE_READ(local, sk, OFF_INET_SPORT);
    NE_READ(remote, sk, OFF_SKC_DPORT);
    sport = ntohs(local);
    dport = ntohs(remote);
#else
    read_ports(sk, &family, &sport, &dport);
#endif
    struct ne_tcp_owner owner = {};
    if (!begin_report(sk, kind, oldstate, family, sport, dport, &owner))
        return 0;
    struct ne_tcp_event *event = reserve_event(SLOT_STATE_CHANGE);
    if (!event)
        return 0;
    event->family = family;
    event->sport = sport;
    event->dport = dport;
    read_addresses(sk, family, event->saddr, event->daddr);
    finish_report(sk, kind, oldstate, &owner, event);
    submit_event(ctx, event);
    return 0;
}
#endif

#ifdef RAW_STATE_CHANGE
// sock:inet_sock_set_state (sk, oldstate, newstate) attached raw: no trace record is built for
// the state changes of every socket. A run skipped while this same program runs on the CPU is
// counted (recursion_misses); yet the kernel also skipped a few with no count at all (as a
// tracepoint too: about 1 close in 3 million here, in a softirq at the timer tick), so the close
// runs counted here are held against the kernel's own count of those hits (unseen events).
RAW_TRACEPOINT_PROBE(inet_sock_set_state) {
    struct sock *sk = (struct sock *)ctx->args[0];
    if (!sock_is(sk, 1 /* SOCK_STREAM */, IPPROTO_TCP))
        return 0;
    if ((int)ctx->args[2] == ST_CLOSE)
        add_stat(NE_TCP_STAT_CLOSE_RUNS, 1);
    return on_state_change(ctx, sk, (int)ctx->args[1], (int)ctx->args[2]);
}
#endif

#if defined(HOOK_KPROBE) || defined(HOOK_FENTRY)
// tcp_set_state(sk, state) runs before the change, so the old state is still in the socket.
static __always_inline int on_tcp_set_state(void *ctx, struct sock *sk, int newstate) {
    u8 oldstate = 0;
    NE_READ(oldstate, sk, OFF_SKC_STATE);
    if (oldstate == newstate)
        return 0;
    return on_state_change(ctx, sk, oldstate, newstate);
}
#endif

#ifdef HOOK_KPROBE
// kprobe tcp_set_state(struct sock *sk, int state), Linux 4.1+.
int kprobe_tcp_set_state(struct pt_regs *ctx) {
    return on_tcp_set_state(ctx, (struct sock *)PT_REGS_PARM1(ctx), (int)PT_REGS_PARM2(ctx));
}
#endif

#ifdef HOOK_FENTRY
// fentry tcp_set_state, Linux 5.5+ with BTF.
KFUNC_PROBE(tcp_set_state, struct sock *sk, int state) {
    return on_tcp_set_state(ctx, sk, state);
}
#endif

#ifdef TRACK_IO
// TCP states in which a socket is open and can still reach TCP_CLOSE through the state-change
// hook: ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING.
#define ST_OPEN_MASK ((1 << 1) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 9) | (1 << 11))

// A socket no entry knows (opened before tracing began, or evicted from a full map) is owned by
// the process doing I/O on it: its close then names that process (`io`), not "unknown". Only an
// open socket, whose close is still to come and deletes the entry. No event: it is no accept.
static __always_inline void adopt(struct sock *sk, u64 key) {
    u8 state = 0;
    NE_READ(state, sk, OFF_SKC_STATE);
    if (state >= 32 || !((1u << state) & ST_OPEN_MASK))
        return;
    struct ne_tcp_owner owner = {};
    fill_owner(&owner, NE_TCP_OWNER_IO);
    if (owners.insert(&key, &owner) == 0) {
        add_stat(NE_TCP_STAT_TRACKED, 1);
        add_stat(NE_TCP_STAT_ADOPTED, 1);
    }
}
#endif

#if defined(TRACK_ACCEPT) || defined(TRACK_IO)
// Claims a tracked socket that has no owner yet (a passive one: connects are owned from the
// start) for the current task, and reports the accept. At I/O, one no entry knows is adopted.
static __always_inline void claim(void *ctx, struct sock *sk, u8 source) {
    u64 key = (u64)sk;
    struct ne_tcp_owner *owner = owners.lookup(&key);
#ifdef TRACK_IO
    if (!owner && source == NE_TCP_OWNER_IO) {
        adopt(sk, key);
        return;
    }
#endif
    if (!owner || owner->source != NE_TCP_OWNER_NONE)
        return;
    fill_owner(owner, source);
    if (!REPORTS(NE_TCP_EVENT_ACCEPT))
        return;
    u16 family = 0, sport = 0, dport = 0;
    read_ports(sk, &family, &sport, &dport);
    if (filter_rejects(owner->pid, owner->uid, family, sport, dport, sk, owner->in_cgroups)) {
        add_stat(NE_TCP_STAT_FILTERED, 1);
        return;
    }
    struct ne_tcp_event *event = reserve_event(SLOT_CLAIM);
    if (!event)
        return;
    event->family = family;
    event->sport = sport;
    event->dport = dport;
    read_addresses(sk, family, event->saddr, event->daddr);
    finish_report(sk, NE_TCP_EVENT_ACCEPT, 0, owner, event);
    submit_event(ctx, event);
}
#endif

#ifdef TRACK_ACCEPT
// accept(2)/accept4(2) return the new descriptor: follow task->files->fdt->fd[fd]->private_data
// (a struct socket) ->sk to the socket the process now owns.
static __always_inline int on_accept_exit(void *ctx, long fd) {
    if (fd < 0)
        return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    void *files = 0, *fdt = 0, **fds = 0, *file = 0, *sock = 0, *sk = 0;
    unsigned int max_fds = 0;
    NE_READ(files, task, OFF_TASK_FILES);
    if (!files) return 0;
    NE_READ(fdt, files, OFF_FILES_FDT);
    if (!fdt) return 0;
    NE_READ(max_fds, fdt, OFF_FDTABLE_MAX_FDS);
    if ((unsigned long)fd >= max_fds) return 0;
    NE_READ(fds, fdt, OFF_FDTABLE_FD);
    if (!fds) return 0;
    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
    if (!file) return 0;
    NE_READ(sock, file, OFF_FILE_PRIVATE_DATA);
    if (!sock) return 0;
    NE_READ(sk, sock, OFF_SOCKET_SK);
    if (sk)
        claim(ctx, (struct sock *)sk, NE_TCP_OWNER_ACCEPT);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_accept4) { return on_accept_exit(args, args->ret); }
TRACEPOINT_PROBE(syscalls, sys_exit_accept) { return on_accept_exit(args, args->ret); }
#endif

#ifdef TRACK_IO
// sock:sock_send_length / sock_recv_length (Linux 6.3+) run in the process doing the I/O.
TRACEPOINT_PROBE(sock, sock_send_length) {
    if (args->protocol == IPPROTO_TCP)
        claim(args, (struct sock *)args->sk, NE_TCP_OWNER_IO);
    return 0;
}
TRACEPOINT_PROBE(sock, sock_recv_length) {
    if (args->protocol == IPPROTO_TCP)
        claim(args, (struct sock *)args->sk, NE_TCP_OWNER_IO);
    return 0;
}
#endif
