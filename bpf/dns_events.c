// DNS over UDP as processes send and receive it: each datagram to or from a DNS port (the local
// or the peer's), sampled with its process, socket, peer and payload, in the process's own
// context right after the call moved it. The payload is read from the process's buffer, which
// the system call's saved registers point to (bpf_task_pt_regs, Linux 5.15+): for a send the
// data is still there, for a receive it has just been copied there. User space parses it.
//
// Compile-time switches, besides netevents_bpf.h's and udp_datagrams.h's: none. Which ports are
// DNS ports is a map (`dns_ports`), so choosing them costs no compile.
#if defined(COUNT_KPROBE)
// struct pt_regs for the kprobe hooks, before our headers (see udp_events.c).
#include <uapi/linux/ptrace.h>
#endif
#include "dns_events_abi.h"
#define NE_STAT_COUNT NE_DNS_STAT_COUNT
#include "netevents_bpf.h"
#include "udp_datagrams.h"

// x86-64: where the system call's number and arguments sit in the saved user registers
// (struct pt_regs: orig_ax, si, dx), and the numbers of the calls that move datagrams.
#define NE_REGS_ORIG_AX 120
#define NE_REGS_SI 104
#define NE_REGS_DX 96
#define NE_SYS_READ 0
#define NE_SYS_WRITE 1
#define NE_SYS_READV 19
#define NE_SYS_WRITEV 20
#define NE_SYS_SENDTO 44
#define NE_SYS_RECVFROM 45
#define NE_SYS_SENDMSG 46
#define NE_SYS_RECVMSG 47
#define NE_SYS_RECVMMSG 299
#define NE_SYS_SENDMMSG 307
#define NE_SYS_UNKNOWN (~0ULL)
// The user-space ABI of struct msghdr (msg_iov at 16) and struct mmsghdr (64 bytes).
#define NE_MSGHDR_IOV 16
#define NE_MMSGHDR_SIZE 64
// UIO_MAXIOV: the most messages one sendmmsg/recvmmsg moves.
#define NE_MAX_MMSG 1024

BPF_ARRAY(dns_ports, u8, 65536);
BPF_PERCPU_ARRAY(scratch, struct ne_dns_sample, 1);
// The next message of the thread's sendmmsg/recvmmsg: each message's datagram is seen in turn.
BPF_TABLE("lru_hash", u32, u32, mmsg_next, 16384);

static __always_inline void restart_mmsg() {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u32 zero = 0;
    mmsg_next.update(&tid, &zero);
}

TRACEPOINT_PROBE(syscalls, sys_enter_sendmmsg) {
    restart_mmsg();
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_recvmmsg) {
    restart_mmsg();
    return 0;
}

// The saved user registers of the current system call.
static __always_inline void *call_registers() {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
    return (void *)bpf_task_pt_regs(task);
}

// The current system call's number; a sendmmsg/recvmmsg moves on to its next message here, for
// every datagram it moves, whatever its port.
static __always_inline u64 call_number(void *regs, u32 *message) {
    u64 number = 0;
    NE_READ(number, regs, NE_REGS_ORIG_AX);
    if (number == NE_SYS_SENDMMSG || number == NE_SYS_RECVMMSG) {
        u32 tid = (u32)bpf_get_current_pid_tgid();
        u32 *next = mmsg_next.lookup(&tid);
        if (!next)
            return NE_SYS_UNKNOWN;  // began before the program attached: no message index
        *message = *next;
        *next += 1;
    }
    return number;
}

// The buffer of the datagram the current system call moves: its address and size in the calling
// process, or 0 when the call is not one this knows.
static __always_inline u64 call_buffer(void *regs, u64 number, u32 message, u64 *size) {
    u64 argument = 0, length = 0;
    NE_READ(argument, regs, NE_REGS_SI);
    void *iov = 0;
    switch (number) {
    case NE_SYS_READ:
    case NE_SYS_WRITE:
    case NE_SYS_SENDTO:
    case NE_SYS_RECVFROM:
        NE_READ(length, regs, NE_REGS_DX);
        *size = length;
        return argument;
    case NE_SYS_READV:
    case NE_SYS_WRITEV:
        iov = (void *)argument;
        break;
    case NE_SYS_SENDMSG:
    case NE_SYS_RECVMSG:
        bpf_probe_read_user(&iov, sizeof(iov), (void *)argument + NE_MSGHDR_IOV);
        break;
    case NE_SYS_SENDMMSG:
    case NE_SYS_RECVMMSG:
        if (message >= NE_MAX_MMSG)
            return 0;
        bpf_probe_read_user(&iov, sizeof(iov), (void *)argument + (u64)message * NE_MMSGHDR_SIZE + NE_MSGHDR_IOV);
        break;
    default:
        return 0;
    }
    // The first iovec: DNS clients and servers put a datagram in one buffer.
    u64 vector[2] = {};
    if (!iov || bpf_probe_read_user(vector, sizeof(vector), iov) != 0)
        return 0;
    *size = vector[1];
    return vector[0];
}

// `length` capped below NE_DNS_MAX_PAYLOAD (a power of two) in a way the verifier sees at the
// use: a mask after an empty asm, which the compiler can neither drop nor move to a copy.
static __always_inline u64 bounded_payload(u64 length) {
    if (length > NE_DNS_MAX_PAYLOAD - 1)
        length = NE_DNS_MAX_PAYLOAD - 1;
    asm volatile("" : "+r"(length));
    return length & (NE_DNS_MAX_PAYLOAD - 1);
}

static __always_inline int is_dns_port(u16 port) {
    u32 index = port;
    u8 *marked = dns_ports.lookup(&index);
    return marked && *marked;
}

static __always_inline int on_datagram(void *ctx, void *sk, long bytes, int tx, struct ne_udp_peer *peer) {
    void *regs = call_registers();
    u32 message = 0;
    // Before any return: a sendmmsg/recvmmsg moves on to its next message whatever this one was.
    u64 number = call_number(regs, &message);
    if (bytes <= 0)
        return 0;
    u16 family = 0, sport = 0, dport = 0;
    read_ports(sk, &family, &sport, &dport);
    if ((family != AF_INET && family != AF_INET6) || (!is_dns_port(sport) && !is_dns_port(peer->port)))
        return 0;
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (datagram_rejected(pid, sk, peer)) {
        add_stat(NE_DNS_STAT_FILTERED, 1);
        return 0;
    }
    int zero = 0;
    struct ne_dns_sample *sample = scratch.lookup(&zero);
    if (!sample)
        return 0;
    sample->time_ns = bpf_ktime_get_ns();
    sample->sk = (u64)sk;
    sample->cookie = read_cookie(sk);
    sample->cgroup_id = bpf_get_current_cgroup_id();
    u64 ids = bpf_get_current_pid_tgid();
    sample->pid = ids >> 32;
    sample->tid = (u32)ids;
    sample->uid = (u32)bpf_get_current_uid_gid();
    sample->netns = read_netns(sk);
    sample->length = bytes;
    sample->sent = tx;
    sample->family = family;
    sample->sport = sport;
    u8 ignored[NE_ADDR_LEN];
    read_addresses(sk, family, sample->saddr, ignored);
    __builtin_memcpy(&sample->peer, peer, sizeof(*peer));
    read_task_names(sample->comm, sample->thread);
    sample->exe[0] = 0;  // the per-CPU sample is reused: a task without one must not show the last one's
    read_exe(sample->exe);

    add_stat(NE_DNS_STAT_SAMPLES, 1);
    u64 size = 0;
    u64 buffer = call_buffer(regs, number, message, &size);
    u64 captured = 0;
    if (!buffer) {
        sample->payload_source = NE_DNS_PAYLOAD_UNKNOWN_CALL;
    } else {
        captured = bounded_payload((u64)bytes < size ? (u64)bytes : size);
        if (bpf_probe_read_user(sample->payload, captured, (void *)buffer) == 0) {
            sample->payload_source = NE_DNS_PAYLOAD_READ;
        } else {
            sample->payload_source = NE_DNS_PAYLOAD_FAULT;
            captured = 0;
        }
    }
    if (sample->payload_source != NE_DNS_PAYLOAD_READ)
        add_stat(NE_DNS_STAT_NO_PAYLOAD, 1);
    sample->captured = captured;
    u64 size_out = NE_DNS_HEADER_SIZE + bounded_payload(captured);
    submit(ctx, sample, size_out);
    return 0;
}
