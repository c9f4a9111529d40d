// The DNS kind's contract: bpf/dns_events.c writes these, DNSEvent reads them.
#ifndef NETEVENTS_DNS_EVENTS_ABI_H
#define NETEVENTS_DNS_EVENTS_ABI_H

#include "netevents_common.h"

/// Room for a datagram's payload in a sample, a power of two; a sample carries at most one byte
/// less (EDNS answers up to 1232 bytes, the size DNS Flag Day 2020 recommends, fit whole; longer
/// ones are cut, and their events say the answers are incomplete).
#define NE_DNS_MAX_PAYLOAD 2048

/// Slots of the per-CPU `stats` array.
enum ne_dns_stat {
    /// Samples the program could not output (buffer full).
    NE_DNS_STAT_LOST = 0,
    /// Datagrams to or from a DNS port that were sampled.
    NE_DNS_STAT_SAMPLES,
    /// Of those, datagrams whose payload could not be read (sent or received by a call the
    /// program cannot find the buffer of: io_uring, sendfile, a kernel socket, a 32-bit process).
    NE_DNS_STAT_NO_PAYLOAD,
    /// Datagrams the in-kernel filters discarded.
    NE_DNS_STAT_FILTERED,
    NE_DNS_STAT_COUNT
};

/// Where a sample's payload came from.
enum ne_dns_payload {
    /// Read from the calling process's buffer.
    NE_DNS_PAYLOAD_READ = 0,
    /// The system call is not one whose buffer the program knows.
    NE_DNS_PAYLOAD_UNKNOWN_CALL,
    /// The buffer could not be read (unmapped, or the process changed it).
    NE_DNS_PAYLOAD_FAULT,
};

/// One datagram to or from a DNS port, sent or received by a process.
struct ne_dns_sample {
    unsigned long long time_ns;    // monotonic, after the call moved the datagram
    unsigned long long sk;         // the socket's kernel address
    unsigned long long cookie;     // the socket's cookie, 0 if none
    unsigned long long cgroup_id;
    unsigned int pid;
    unsigned int tid;
    unsigned int uid;
    unsigned int netns;
    unsigned int length;           // the datagram's payload length
    unsigned short captured;       // bytes of `payload` filled
    unsigned char sent;            // 1: the process sent it; 0: received it
    unsigned char payload_source;  // enum ne_dns_payload
    unsigned short family;         // the socket's
    unsigned short sport;          // host order
    unsigned char saddr[NE_ADDR_LEN];
    struct ne_udp_peer peer;       // the datagram's other end
    unsigned char comm[NE_COMM_LEN];
    unsigned char thread[NE_COMM_LEN];
    unsigned char exe[NE_EXE_LEN];
    unsigned char payload[NE_DNS_MAX_PAYLOAD];
};
/// Bytes of a sample before its payload: a sample is output with only the captured bytes after it.
#define NE_DNS_HEADER_SIZE 192
NE_STATIC_ASSERT(sizeof(struct ne_dns_sample) == NE_DNS_HEADER_SIZE + NE_DNS_MAX_PAYLOAD, "struct ne_dns_sample's header is 192 bytes");

#endif
