// The kernel/user contract of every event kind: the sample, map key, map value and counter
// layouts, written once. The eBPF programs in bpf/ include these headers (the Swift side expands
// the #include, since BCC compiles from a string and resolves no relative include), and Swift
// imports them through the CNetEventsABI module, so decoders and test sample builders read the
// very same structs.
//
// Plain C integer types only: they have the same sizes on the BPF target and on x86-64/arm64
// Linux, and neither side needs the other's typedefs (u64 and friends exist only in BCC).
#ifndef NETEVENTS_ABI_H
#define NETEVENTS_ABI_H

#include "tcp_events_abi.h"
#include "udp_events_abi.h"
#include "dns_events_abi.h"

#endif
