// One event per TCP socket that reaches TCP_CLOSE, attributed to the process that connected or
// accepted it (or first did I/O on it).
//
// Compile-time switches (passed by the TCPEvent module as -D flags):
//   HOOK_TRACEPOINT | HOOK_KPROBE | HOOK_FENTRY   which hook sees state changes (exactly one)
//   USE_RINGBUF, RINGBUF_PAGES                     ring buffer instead of a perf buffer
//   MAX_SOCKETS                                    size of the LRU map of live sockets
//   TRACK_ACCEPT                                   claim passive sockets at accept(2)/accept4(2) exit
//   TRACK_IO                                       claim unowned sockets at their first send/recv
//   FILTER_PID, FILTER_UID, FILTER_PORT, FILTER_FAMILY   in-kernel filters on the event
//   OFF_*                                          struct member offsets resolved from kernel BTF
//   OFFSETS_FROM_HEADERS                           no BTF: take offsets from the kernel headers
//
// Every kernel struct field is read with bpf_probe_read_kernel at an OFF_* offset, because the
// header tree BCC compiles against may belong to another kernel version.
#ifdef OFFSETS_FROM_HEADERS
#include <linux/sched.h>
#include <linux/in.h>
#include <linux/socket.h>
#include <net/sock.h>
#include <linux/tcp.h>
#include <linux/fdtable.h>
#include <linux/net.h>
#define OFF_TCP_BYTES_RECEIVED offsetof(struct tcp_sock, bytes_received)
#define OFF_TCP_BYTES_ACKED offsetof(struct tcp_sock, bytes_acked)
#define OFF_TCP_SEGS_IN offsetof(struct tcp_sock, segs_in)
#define OFF_TCP_SEGS_OUT offsetof(struct tcp_sock, segs_out)
#define OFF_TCP_DATA_SEGS_IN offsetof(struct tcp_sock, data_segs_in)
#define OFF_TCP_DATA_SEGS_OUT offsetof(struct tcp_sock, data_segs_out)
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
#define OFF_TASK_FILES offsetof(struct task_struct, files)
#define OFF_FILES_FDT offsetof(struct files_struct, fdt)
#define OFF_FDTABLE_FD offsetof(struct fdtable, fd)
#define OFF_FDTABLE_MAX_FDS offsetof(struct fdtable, max_fds)
#define OFF_FILE_PRIVATE_DATA offsetof(struct file, private_data)
#define OFF_SOCKET_SK offsetof(struct socket, sk)
#else
// abi_constants.h is prepended here by the TCPEvent module.
#endif

#ifdef HOOK_KPROBE
#include <uapi/linux/ptrace.h>
#endif

#ifndef MAX_SOCKETS
#define MAX_SOCKETS 65536
#endif
#ifndef RINGBUF_PAGES
#define RINGBUF_PAGES 256
#endif

// TCP states (include/net/tcp_states.h), stable kernel ABI.
#define ST_ESTABLISHED 1
#define ST_SYN_SENT 2
#define ST_SYN_RECV 3
#define ST_CLOSE 7
#define ST_LISTEN 10

// How the owner of a socket was found; mirrored by TCPConnectionEvent.OwnerSource.
#define OWNER_NONE 0
#define OWNER_CONNECT 1
#define OWNER_ACCEPT 2
#define OWNER_IO 3
#define OWNER_CLOSING_TASK 4

// Counters, one slot each in the per-CPU `stats` array; mirrored by TCPMonitor.Statistics.
#define STAT_LOST 0
#define STAT_TRACKED 1
#define STAT_CLOSED_TRACKED 2
#define STAT_CLOSED_UNTRACKED 3
#define STAT_FILTERED 4
#define STAT_COUNT 5

struct owner_t {
    u64 start_ns;
    u64 cgroup_id;
    u32 pid;
    u32 uid;
    char comm[TASK_COMM_LEN];
    u8 source;
    u8 pad[7];
};

// The sample layout. 128 bytes; TCPEventDecoder reads it at these offsets.
struct tcp_event_t {
    u64 ts_ns;          //   0  bpf_ktime_get_ns() at TCP_CLOSE
    u64 start_ns;       //   8  first state change seen, 0 if unknown
    u64 cgroup_id;      //  16
    u64 rx_bytes;       //  24  tcp_sock.bytes_received
    u64 tx_bytes;       //  32  tcp_sock.bytes_acked
    u32 segs_in;        //  40
    u32 segs_out;       //  44
    u32 data_segs_in;   //  48
    u32 data_segs_out;  //  52
    u32 pid;            //  56
    u32 uid;            //  60
    u32 netns;          //  64
    u16 family;         //  68
    u16 sport;          //  70  host order
    u16 dport;          //  72  host order
    u8 oldstate;        //  74
    u8 owner_source;    //  75
    u8 saddr[16];       //  76
    u8 daddr[16];       //  92
    char comm[TASK_COMM_LEN]; // 108
    u32 pad;            // 124
};

BPF_TABLE("lru_hash", u64, struct owner_t, owners, MAX_SOCKETS);
BPF_PERCPU_ARRAY(stats, u64, STAT_COUNT);
#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
#else
BPF_PERF_OUTPUT(events);
#endif

static __always_inline void count(int slot) {
    u64 *value = stats.lookup(&slot);
    if (value)
        (*value)++;
}

static __always_inline void fill_owner(struct owner_t *owner, u8 source) {
    owner->pid = bpf_get_current_pid_tgid() >> 32;
    owner->uid = (u32)bpf_get_current_uid_gid();
    owner->cgroup_id = bpf_get_current_cgroup_id();
    owner->source = source;
    bpf_get_current_comm(&owner->comm, sizeof(owner->comm));
}

#define READ(dst, base, off) bpf_probe_read_kernel(&(dst), sizeof(dst), (void *)(base) + (off))

// A state change seen by any of the hooks. Addresses are filled by the hook.
static __always_inline int on_state_change(void *ctx, struct sock *sk, int oldstate, int newstate,
                                           struct tcp_event_t *event) {
    u64 key = (u64)sk;
    if (newstate != ST_CLOSE) {
        if (oldstate == ST_CLOSE && newstate == ST_SYN_SENT) {
            // connect(2): runs in the connecting process.
            struct owner_t owner = {};
            owner.start_ns = bpf_ktime_get_ns();
            fill_owner(&owner, OWNER_CONNECT);
            owners.update(&key, &owner);
            count(STAT_TRACKED);
        } else if (newstate == ST_SYN_RECV || (oldstate == ST_SYN_RECV && newstate == ST_ESTABLISHED)) {
            // A passive child socket is born, in softirq: whoever runs now (on loopback, the
            // client) is not its owner. The owner is claimed at accept or first I/O.
            // The tracepoint sees the birth (LISTEN->SYN_RECV, from inet_csk_clone_lock); the
            // kprobe and fentry hooks on tcp_set_state do not, as the clone sets the state
            // directly, so they start tracking at SYN_RECV->ESTABLISHED, which precedes accept.
            struct owner_t owner = {};
            owner.start_ns = bpf_ktime_get_ns();
            if (owners.insert(&key, &owner) == 0)
                count(STAT_TRACKED);
        }
        return 0;
    }

    struct owner_t *owner = owners.lookup(&key);
    if (oldstate == ST_LISTEN) {
        // A listening socket closing is not a connection.
        if (owner)
            owners.delete(&key);
        return 0;
    }

    event->ts_ns = bpf_ktime_get_ns();
    event->oldstate = oldstate;
    if (owner && owner->source != OWNER_NONE) {
        event->pid = owner->pid;
        event->uid = owner->uid;
        event->cgroup_id = owner->cgroup_id;
        event->owner_source = owner->source;
        __builtin_memcpy(event->comm, owner->comm, sizeof(event->comm));
    } else {
        // Unclaimed (never accepted, or opened before tracing began): the closing task is the
        // best remaining guess, and the event says so.
        event->pid = bpf_get_current_pid_tgid() >> 32;
        event->uid = (u32)bpf_get_current_uid_gid();
        event->cgroup_id = bpf_get_current_cgroup_id();
        event->owner_source = OWNER_CLOSING_TASK;
        bpf_get_current_comm(&event->comm, sizeof(event->comm));
    }
    if (owner) {
        event->start_ns = owner->start_ns;
        owners.delete(&key);
        count(STAT_CLOSED_TRACKED);
    } else {
        count(STAT_CLOSED_UNTRACKED);
    }

#ifdef FILTER_PID
    if (event->pid != FILTER_PID) { count(STAT_FILTERED); return 0; }
#endif
#ifdef FILTER_UID
    if (event->uid != FILTER_UID) { count(STAT_FILTERED); return 0; }
#endif
#ifdef FILTER_PORT
    if (event->sport != FILTER_PORT && event->dport != FILTER_PORT) { count(STAT_FILTERED); return 0; }
#endif
#ifdef FILTER_FAMILY
    if (event->family != FILTER_FAMILY) { count(STAT_FILTERED); return 0; }
#endif

    READ(event->rx_bytes, sk, OFF_TCP_BYTES_RECEIVED);
    READ(event->tx_bytes, sk, OFF_TCP_BYTES_ACKED);
    READ(event->segs_in, sk, OFF_TCP_SEGS_IN);
    READ(event->segs_out, sk, OFF_TCP_SEGS_OUT);
    READ(event->data_segs_in, sk, OFF_TCP_DATA_SEGS_IN);
    READ(event->data_segs_out, sk, OFF_TCP_DATA_SEGS_OUT);
    void *net = 0;
    READ(net, sk, OFF_SKC_NET);
    if (net)
        READ(event->netns, net, OFF_NET_NS_INUM);

#ifdef USE_RINGBUF
    if (events.ringbuf_output(event, sizeof(*event), 0) != 0)
#else
    if (events.perf_submit(ctx, event, sizeof(*event)) != 0)
#endif
        count(STAT_LOST);
    return 0;
}

// Reads family, ports and addresses from the socket itself (the kprobe and fentry hooks, which
// get no tracepoint record).
static __always_inline void read_addresses(struct sock *sk, struct tcp_event_t *event) {
    READ(event->family, sk, OFF_SKC_FAMILY);
    READ(event->sport, sk, OFF_SKC_NUM);
    u16 dport = 0;
    READ(dport, sk, OFF_SKC_DPORT);
    event->dport = ntohs(dport);
    if (event->family == AF_INET) {
        bpf_probe_read_kernel(event->saddr, 4, (void *)sk + OFF_SKC_RCV_SADDR);
        bpf_probe_read_kernel(event->daddr, 4, (void *)sk + OFF_SKC_DADDR);
    } else {
        bpf_probe_read_kernel(event->saddr, 16, (void *)sk + OFF_SKC_V6_RCV_SADDR);
        bpf_probe_read_kernel(event->daddr, 16, (void *)sk + OFF_SKC_V6_DADDR);
    }
}

#ifdef HOOK_TRACEPOINT
// sock:inet_sock_set_state, Linux 4.16+.
TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != IPPROTO_TCP)
        return 0;
    struct tcp_event_t event = {};
    event.family = args->family;
    event.sport = args->sport;
    event.dport = args->dport;
    if (args->family == AF_INET) {
        __builtin_memcpy(event.saddr, args->saddr, 4);
        __builtin_memcpy(event.daddr, args->daddr, 4);
    } else {
        __builtin_memcpy(event.saddr, args->saddr_v6, 16);
        __builtin_memcpy(event.daddr, args->daddr_v6, 16);
    }
    return on_state_change(args, (struct sock *)args->skaddr, args->oldstate, args->newstate, &event);
}
#endif

#ifdef HOOK_KPROBE
// kprobe tcp_set_state(struct sock *sk, int state), Linux 4.1+: runs before the change, so the
// old state is still in the socket.
int kprobe_tcp_set_state(struct pt_regs *ctx) {
    struct sock *sk = (struct sock *)PT_REGS_PARM1(ctx);
    int newstate = (int)PT_REGS_PARM2(ctx);
    u8 oldstate = 0;
    READ(oldstate, sk, OFF_SKC_STATE);
    if (oldstate == newstate)
        return 0;
    struct tcp_event_t event = {};
    read_addresses(sk, &event);
    return on_state_change(ctx, sk, oldstate, newstate, &event);
}
#endif

#ifdef HOOK_FENTRY
// fentry tcp_set_state, Linux 5.5+ with BTF.
KFUNC_PROBE(tcp_set_state, struct sock *sk, int state) {
    u8 oldstate = 0;
    READ(oldstate, sk, OFF_SKC_STATE);
    if (oldstate == state)
        return 0;
    struct tcp_event_t event = {};
    read_addresses(sk, &event);
    return on_state_change(ctx, sk, oldstate, state, &event);
}
#endif

// Claims a socket for the current task if it is tracked and has no owner yet.
static __always_inline void claim(u64 key, u8 source) {
    struct owner_t *owner = owners.lookup(&key);
    if (!owner || owner->source != OWNER_NONE)
        return;
    fill_owner(owner, source);
}

#ifdef TRACK_ACCEPT
// accept(2)/accept4(2) return the new descriptor: follow task->files->fdt->fd[fd]->private_data
// (a struct socket) ->sk to the socket the process now owns.
static __always_inline int on_accept_exit(long fd) {
    if (fd < 0)
        return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    void *files = 0, *fdt = 0, **fds = 0, *file = 0, *sock = 0, *sk = 0;
    unsigned int max_fds = 0;
    READ(files, task, OFF_TASK_FILES);
    if (!files) return 0;
    READ(fdt, files, OFF_FILES_FDT);
    if (!fdt) return 0;
    READ(max_fds, fdt, OFF_FDTABLE_MAX_FDS);
    if ((unsigned long)fd >= max_fds) return 0;
    READ(fds, fdt, OFF_FDTABLE_FD);
    if (!fds) return 0;
    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
    if (!file) return 0;
    READ(sock, file, OFF_FILE_PRIVATE_DATA);
    if (!sock) return 0;
    READ(sk, sock, OFF_SOCKET_SK);
    if (sk)
        claim((u64)sk, OWNER_ACCEPT);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_accept4) { return on_accept_exit(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_exit_accept) { return on_accept_exit(args->ret); }
#endif

#ifdef TRACK_IO
// sock:sock_send_length / sock_recv_length (Linux 6.3+) run in the process doing the I/O.
TRACEPOINT_PROBE(sock, sock_send_length) {
    if (args->protocol == IPPROTO_TCP)
        claim((u64)args->sk, OWNER_IO);
    return 0;
}
TRACEPOINT_PROBE(sock, sock_recv_length) {
    if (args->protocol == IPPROTO_TCP)
        claim((u64)args->sk, OWNER_IO);
    return 0;
}
#endif
