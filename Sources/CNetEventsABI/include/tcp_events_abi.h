// The TCP kind's contract: bpf/tcp_events.c writes these, TCPEvent reads them.
#ifndef NETEVENTS_TCP_EVENTS_ABI_H
#define NETEVENTS_TCP_EVENTS_ABI_H

#include "netevents_common.h"

/// How the owner of a socket was found, most reliable first (TCPConnectionEvent.OwnerSource).
/// NONE in a sample: the owner is unknown (never claimed, opened before tracing, or evicted), and
/// the sample's pid is 0 and its uid NE_UID_UNKNOWN, never whichever task ran the close.
enum ne_tcp_owner_source {
    NE_TCP_OWNER_NONE = 0,
    NE_TCP_OWNER_CONNECT = 1,
    NE_TCP_OWNER_ACCEPT = 2,
    NE_TCP_OWNER_IO = 3,
};

/// The uid of an unknown owner: (uid_t)-1, which no user has.
#define NE_UID_UNKNOWN 0xFFFFFFFFu

/// What a sample reports (TCPConnectionEvent.Kind). Zero is no kind: a sample that says it is malformed.
enum ne_tcp_event_kind {
    /// A socket reached TCP_CLOSE after it was established (or while a passive open was in progress).
    NE_TCP_EVENT_CLOSE = 1,
    /// An active open completed: SYN_SENT -> ESTABLISHED.
    NE_TCP_EVENT_CONNECT = 2,
    /// A passive socket was claimed by the process that accepted it (or first did I/O on it).
    NE_TCP_EVENT_ACCEPT = 3,
    /// An active open that never established: SYN_SENT -> TCP_CLOSE, with the socket's error.
    NE_TCP_EVENT_FAIL = 4,
};

/// Slots of the per-CPU `stats` array.
enum ne_tcp_stat {
    /// Samples the program could not output (buffer full).
    NE_TCP_STAT_LOST = 0,
    /// Sockets that started being tracked (connect, or a passive open).
    NE_TCP_STAT_TRACKED,
    /// Tracked sockets that reached TCP_CLOSE.
    NE_TCP_STAT_CLOSED_TRACKED,
    /// Sockets that reached TCP_CLOSE without being tracked.
    NE_TCP_STAT_CLOSED_UNTRACKED,
    /// Events the in-kernel filters discarded.
    NE_TCP_STAT_FILTERED,
    /// Sockets no entry knew (opened before tracing began, or evicted) that the process doing
    /// I/O on them claimed (counted in TRACKED too).
    NE_TCP_STAT_ADOPTED,
    /// Runs of the state-change tracepoint's program for a TCP socket reaching TCP_CLOSE (any
    /// socket, reported or not): held against the kernel's own count of those hits.
    NE_TCP_STAT_CLOSE_RUNS,
    NE_TCP_STAT_COUNT
};

/// The value of the `owners` LRU map, keyed by the socket's address: who owns a live socket.
struct ne_tcp_owner {
    unsigned long long start_ns;
    unsigned long long cgroup_id;
    unsigned int pid;
    unsigned int uid;
    unsigned char comm[NE_COMM_LEN];    // the process's name: its thread-group leader's comm
    unsigned char thread[NE_COMM_LEN];  // the name of the thread that claimed the socket
    unsigned char source;          // enum ne_tcp_owner_source
    unsigned char in_cgroups;      // the claiming task was inside a filtered cgroup (1 when no cgroup filter)
    unsigned char pad[6];
    unsigned char exe[NE_EXE_LEN]; // the file name of the claiming process's executable
};
NE_STATIC_ASSERT(sizeof(struct ne_tcp_owner) == 128, "struct ne_tcp_owner is 128 bytes");

/// One sample per connect, accept, failed connect or close of a socket (`kind`).
struct ne_tcp_event {
    unsigned long long ts_ns;      // bpf_ktime_get_ns() at the event
    unsigned long long start_ns;   // first state change seen (SYN sent, passive open), 0 if unknown
    unsigned long long cgroup_id;
    unsigned long long rx_bytes;   // tcp_sock.bytes_received
    unsigned long long tx_bytes;   // tcp_sock.bytes_acked
    unsigned int segs_in;
    unsigned int segs_out;
    unsigned int data_segs_in;
    unsigned int data_segs_out;
    unsigned int pid;
    unsigned int uid;
    unsigned int netns;
    unsigned int srtt_us;          // tcp_sock.srtt_us >> 3, as tcp_info's tcpi_rtt
    unsigned int rttvar_us;        // tcp_sock.mdev_us >> 2, as tcpi_rttvar
    unsigned int min_rtt_us;       // tcp_sock.rtt_min's current minimum, as tcpi_min_rtt
    unsigned int retransmits;      // tcp_sock.total_retrans, as tcpi_total_retrans
    int error;                     // sock.sk_err of a failed connect (an errno), else 0
    unsigned short family;         // AF_INET or AF_INET6
    unsigned short sport;          // host order
    unsigned short dport;          // host order
    unsigned char oldstate;        // the state left (for TCP_CLOSE, ESTABLISHED); 0 for accept
    unsigned char owner_source;    // enum ne_tcp_owner_source
    unsigned char kind;            // enum ne_tcp_event_kind
    unsigned char pad0;
    unsigned char saddr[NE_ADDR_LEN];
    unsigned char daddr[NE_ADDR_LEN];
    unsigned char comm[NE_COMM_LEN];    // the process's name: its thread-group leader's comm
    unsigned char thread[NE_COMM_LEN];  // the owning thread's name (equal to comm for one thread)
    unsigned char pad[6];
    unsigned long long socket_id;  // the socket's kernel cookie (sock_common.skc_cookie), 0 if none
    unsigned char exe[NE_EXE_LEN]; // the file name of the owner's executable, empty if none (a kernel thread)
};
NE_STATIC_ASSERT(sizeof(struct ne_tcp_event) == 240, "struct ne_tcp_event is 240 bytes");

#endif
