// The UDP kind's contract: bpf/udp_events.c writes these, UDPEvent reads them.
#ifndef NETEVENTS_UDP_EVENTS_ABI_H
#define NETEVENTS_UDP_EVENTS_ABI_H

#include "netevents_common.h"

/// (process, peer) pairs remembered per socket, so its close can find their entries; a socket
/// with more (a server answering many clients) is flushed by a scan in user space.
#define NE_UDP_PAIRS_PER_SOCKET 4

/// Slots of the per-CPU `stats` array.
enum ne_udp_stat {
    /// Close samples the program could not output (buffer full).
    NE_UDP_STAT_LOST = 0,
    /// (socket, process, peer) flows that started being counted.
    NE_UDP_STAT_FLOWS,
    /// Traffic counted while the flow map was full, so attributed to no socket.
    NE_UDP_STAT_UNTRACKED_TX_PACKETS,
    NE_UDP_STAT_UNTRACKED_TX_BYTES,
    NE_UDP_STAT_UNTRACKED_RX_PACKETS,
    NE_UDP_STAT_UNTRACKED_RX_BYTES,
    /// Sockets whose release the close hook saw.
    NE_UDP_STAT_CLOSES,
    /// Sockets with more (process, peer) pairs than NE_UDP_PAIRS_PER_SOCKET.
    NE_UDP_STAT_SHARED_OVERFLOW,
    /// Datagrams the in-kernel filters discarded.
    NE_UDP_STAT_FILTERED,
    /// Closes that found the buffer full (a mass close): their final counts (or, for a socket
    /// with more pairs than the kernel tracks, its flush request) wait in `closed_flows`
    /// (`closed_sockets`) for user space's next scan.
    NE_UDP_STAT_DEFERRED_CLOSES,
    NE_UDP_STAT_COUNT
};

/// The key of the `flows` map: one (socket, process, peer) flow.
struct ne_udp_key {
    unsigned long long sk;         // the socket's kernel address
    unsigned int pid;
    struct ne_udp_peer peer;
};
NE_STATIC_ASSERT(sizeof(struct ne_udp_key) == 32, "struct ne_udp_key is 32 bytes");

/// The value of the `flows` map: what a flow moved, and who and where it is.
struct ne_udp_flow {
    unsigned long long start_ns;   // first packet seen
    unsigned long long close_ns;   // set in the close sample
    unsigned long long tx_bytes;
    unsigned long long rx_bytes;
    unsigned long long tx_packets;
    unsigned long long rx_packets;
    unsigned long long cgroup_id;
    unsigned int uid;
    unsigned int netns;
    unsigned short family;
    unsigned short sport;          // host order
    unsigned short dport;          // host order: the connected peer's when the flow began, 0 if none (the key has the flow's peer)
    unsigned char pad[2];
    unsigned char saddr[NE_ADDR_LEN];
    unsigned char daddr[NE_ADDR_LEN];
    unsigned char comm[NE_COMM_LEN];    // the process's name: its thread-group leader's comm
    unsigned char thread[NE_COMM_LEN];  // the name of the thread of the flow's first datagram
    unsigned long long cookie;     // the socket's kernel cookie (sock_common.skc_cookie), 0 if none yet
    unsigned char exe[NE_EXE_LEN]; // the file name of the process's executable
};
NE_STATIC_ASSERT(sizeof(struct ne_udp_flow) == 208, "struct ne_udp_flow is 208 bytes");

/// The close sample: a flow's key and final counts. A pid of 0 asks user space to flush every
/// flow of the socket (it had more than the kernel remembers per socket).
struct ne_udp_close {
    struct ne_udp_key key;
    struct ne_udp_flow flow;
};
NE_STATIC_ASSERT(sizeof(struct ne_udp_close) == 240, "struct ne_udp_close is 240 bytes");

/// The key of the `closed_flows` map: a flow whose close found the buffer full, and when it closed
/// (a socket made at the same address may close again before the scan).
struct ne_udp_closed_key {
    struct ne_udp_key key;
    unsigned long long close_ns;
};
NE_STATIC_ASSERT(sizeof(struct ne_udp_closed_key) == 40, "struct ne_udp_closed_key is 40 bytes");

/// A flow of a socket known: its key without the socket.
struct ne_udp_pair {
    unsigned int pid;
    struct ne_udp_peer peer;
};

/// The value of the `users` map, keyed by socket: its flows' (process, peer) pairs.
struct ne_udp_users {
    struct ne_udp_pair pairs[NE_UDP_PAIRS_PER_SOCKET];
    unsigned int count;
    unsigned int overflow;
};

#endif
