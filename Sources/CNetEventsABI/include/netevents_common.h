// Pieces of the contract that every event kind shares.
#ifndef NETEVENTS_COMMON_H
#define NETEVENTS_COMMON_H

/// Bytes of a task's `comm`, NUL included (the kernel's TASK_COMM_LEN).
#define NE_COMM_LEN 16
/// Bytes reserved for an address: IPv4 uses the first 4, IPv6 all 16.
#define NE_ADDR_LEN 16

#ifndef __cplusplus
#define NE_STATIC_ASSERT(condition, message) _Static_assert(condition, message)
#else
#define NE_STATIC_ASSERT(condition, message) static_assert(condition, message)
#endif

#endif
