// A minimal program for the runtime's own integration tests: one sample per TCP state change
// on sock:inet_sock_set_state, through a perf buffer or (with -DUSE_RINGBUF) a ring buffer.
#include <linux/sched.h>
#include <linux/in.h>

struct state_change_t {
    u64 skaddr;
    u32 pid;
    s32 oldstate;
    s32 newstate;
    u16 sport;
    u16 dport;
    u16 family;
    u16 pad;
    u32 pad2;
};

#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(events, 8);
#else
BPF_PERF_OUTPUT(events);
#endif
BPF_PERCPU_ARRAY(lost, u64, 1);

TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != IPPROTO_TCP)
        return 0;
#ifdef FILTER_PORT
    if (args->sport != FILTER_PORT && args->dport != FILTER_PORT)
        return 0;
#endif
    struct state_change_t event = {};
    event.skaddr = (u64)args->skaddr;
    event.pid = bpf_get_current_pid_tgid() >> 32;
    event.oldstate = args->oldstate;
    event.newstate = args->newstate;
    event.sport = args->sport;
    event.dport = args->dport;
    event.family = args->family;
#ifdef USE_RINGBUF
    if (events.ringbuf_output(&event, sizeof(event), 0) != 0) {
#else
    if (events.perf_submit(args, &event, sizeof(event)) != 0) {
#endif
        int zero = 0;
        u64 *count = lost.lookup(&zero);
        if (count)
            (*count)++;
    }
    return 0;
}
