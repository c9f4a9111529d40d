// Pieces of the contract that every event kind shares.
#ifndef NETEVENTS_COMMON_H
#define NETEVENTS_COMMON_H

/// Bytes of a task's `comm`, NUL included (the kernel's TASK_COMM_LEN).
#define NE_COMM_LEN 16
/// Bytes reserved for an address: IPv4 uses the first 4, IPv6 all 16.
#define NE_ADDR_LEN 16
/// Bytes of the executable's file name (task->mm->exe_file), NUL included: longer names keep
/// their first NE_EXE_LEN - 1 bytes.
#define NE_EXE_LEN 64

/// The other end of a UDP datagram: the address a send went to or a receive came from, as the
/// process gave or got it (the cgroup sendmsg/recvmsg hooks), else the socket's connected peer;
/// all zero when neither is known (an unconnected socket whose call named no address).
struct ne_udp_peer {
    unsigned short port;           // host order
    unsigned short family;         // AF_INET or AF_INET6 (a v6 socket may send to a v4 peer); 0 if unknown
    unsigned char addr[NE_ADDR_LEN];
};

/// Bits of ne_filter_config.active: which in-kernel filters are on (netevents_bpf.h).
enum ne_filter_kind {
    NE_FILTER_PID = 1 << 0,
    NE_FILTER_UID = 1 << 1,
    NE_FILTER_PORT = 1 << 2,
    NE_FILTER_FAMILY = 1 << 3,
    NE_FILTER_CGROUP = 1 << 4,
    NE_FILTER_NETNS = 1 << 5,
};
/// Entries of each filter's value set (pids, ports, network namespaces).
#define NE_FILTER_MAX_VALUES 1024
/// cgroups (with everything below them) a filter may name.
#define NE_FILTER_MAX_CGROUPS 16

/// The one entry of the `filter_config` array: which filters are on, and the single-valued ones.
/// The values of the others live in maps, so choosing them needs no compile.
struct ne_filter_config {
    unsigned int active;           // enum ne_filter_kind bits
    unsigned int uid;
    unsigned int family;           // AF_INET or AF_INET6
    unsigned int cgroups;          // slots of `filter_cgroups` in use
};

#ifndef __cplusplus
#define NE_STATIC_ASSERT(condition, message) _Static_assert(condition, message)
#else
#define NE_STATIC_ASSERT(condition, message) static_assert(condition, message)
#endif

#endif
