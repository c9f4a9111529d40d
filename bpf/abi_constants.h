// Included by the programs when their struct offsets come from BTF (no OFFSETS_FROM_HEADERS).
// They then need no kernel struct definitions, only these constants of the stable kernel ABI, and
// skipping <linux/sched.h> and friends cuts BCC's compile (most of a monitor's start-up) from
// about 1.3 s to about 0.4 s on these machines.
//
// BCC does not resolve #include of files next to the program text, so the Swift side prepends
// this file's text (EmbeddedBPF.abiConstantsHeader) to the program instead.
#ifndef NETEVENTS_ABI_CONSTANTS_H
#define NETEVENTS_ABI_CONSTANTS_H

struct sock;
struct task_struct;
struct msghdr;

#define TASK_COMM_LEN 16
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define MSG_PEEK 2

#ifndef ntohs  // the kernel's own, when a hook's headers (ptrace.h) brought it
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ntohs(x) __builtin_bswap16(x)
#else
#define ntohs(x) (x)
#endif
#endif

#endif
