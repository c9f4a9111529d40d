// perf_event_open(2) and its ioctls, which Swift's Glibc module does not reach (a variadic
// syscall(2) and function-like _IO macros): for counting a tracepoint's hits per CPU.
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int ne_perf_event_open(struct perf_event_attr *attr, int pid, int cpu) {
    return (int)syscall(__NR_perf_event_open, attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

static inline int ne_perf_event_set_filter(int fd, const char *filter) {
    return ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter);
}

static inline int ne_perf_event_enable(int fd) { return ioctl(fd, PERF_EVENT_IOC_ENABLE, 0); }

static inline int ne_perf_event_disable(int fd) { return ioctl(fd, PERF_EVENT_IOC_DISABLE, 0); }
