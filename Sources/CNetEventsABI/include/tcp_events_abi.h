// The TCP kind's contract: bpf/tcp_events.c writes these, TCPEvent reads them.
#ifndef NETEVENTS_TCP_EVENTS_ABI_H
#define NETEVENTS_TCP_EVENTS_ABI_H

#include "netevents_common.h"

/// How the owner of a socket was found, most reliable first (TCPConnectionEvent.OwnerSource).
enum ne_tcp_owner_source {
    NE_TCP_OWNER_NONE = 0,
    NE_TCP_OWNER_CONNECT = 1,
    NE_TCP_OWNER_ACCEPT = 2,
    NE_TCP_OWNER_IO = 3,
    NE_TCP_OWNER_CLOSING_TASK = 4,
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
    unsigned char pad[7];
};
NE_STATIC_ASSERT(sizeof(struct ne_tcp_owner) == 64, "struct ne_tcp_owner is 64 bytes");

/// One sample per socket that reaches TCP_CLOSE.
struct ne_tcp_event {
    unsigned long long ts_ns;      // bpf_ktime_get_ns() at TCP_CLOSE
    unsigned long long start_ns;   // first state change seen, 0 if unknown
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
    unsigned short family;         // AF_INET or AF_INET6
    unsigned short sport;          // host order
    unsigned short dport;          // host order
    unsigned char oldstate;        // the state left for TCP_CLOSE
    unsigned char owner_source;    // enum ne_tcp_owner_source
    unsigned char saddr[NE_ADDR_LEN];
    unsigned char daddr[NE_ADDR_LEN];
    unsigned char comm[NE_COMM_LEN];    // the process's name: its thread-group leader's comm
    unsigned char thread[NE_COMM_LEN];  // the owning thread's name (equal to comm for one thread)
    unsigned int pad;
};
NE_STATIC_ASSERT(sizeof(struct ne_tcp_event) == 144, "struct ne_tcp_event is 144 bytes");

#endif
