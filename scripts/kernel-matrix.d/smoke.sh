#!/bin/bash
# Guest-side plumbing check for scripts/kernel-matrix --smoke (runs inside the chroot).
# Prints facts as "KM-FACT key=value" lines that the host summarises, and fails only when the
# plumbing itself is broken (not when a kernel simply lacks a feature).
rel=$(uname -r)
fact() { echo "KM-FACT $1=$2"; }
echo "uname -r: $rel"
fact release "$rel"

echo "--- cat /sys/bus/event_source/devices/kprobe/type"
if cat /sys/bus/event_source/devices/kprobe/type; then fact kprobe_pmu yes; else fact kprobe_pmu no; fi

echo "--- ls /lib/modules/$rel/build"
if ls -d "/lib/modules/$rel/build/" && ls "/lib/modules/$rel/build/" | head -20 \
   && [ -e "/lib/modules/$rel/build/include/generated/autoconf.h" ]; then
    fact headers yes
else
    fact headers no
fi

echo "--- BTF"
if [ -r /sys/kernel/btf/vmlinux ]; then ls -l /sys/kernel/btf/vmlinux; fact btf yes; else fact btf no; fi

echo "--- tracefs"
if [ -d /sys/kernel/tracing/events/sock ]; then
    ls /sys/kernel/tracing/events/sock | tr '\n' ' '; echo
    fact tracefs yes
    for tp in inet_sock_set_state sock_send_length sock_recv_length; do
        if [ -d "/sys/kernel/tracing/events/sock/$tp" ]; then fact "tp_$tp" yes; else fact "tp_$tp" no; fi
    done
else
    fact tracefs no
fi
if cut -d" " -f1 /sys/kernel/tracing/available_filter_functions 2>/dev/null | grep -qx tcp_set_state; then
    fact kprobe_target_tcp_set_state yes
else
    fact kprobe_target_tcp_set_state no
fi

echo "--- userland through 9p"
ok=1
ip -brief addr show lo || ok=0
if command -v swift >/dev/null 2>&1 || [ -x /opt/swift/usr/bin/swift ]; then fact swift_toolchain yes; else fact swift_toolchain no; fi
if ls /usr/lib/x86_64-linux-gnu/libbcc.so.0* >/dev/null 2>&1; then fact libbcc yes; else fact libbcc no; fi
touch /tmp/km-write-test && rm /tmp/km-write-test || ok=0
mount | grep -E ' on /(tmp|sys/kernel/tracing|sys/kernel/debug|sys/fs/bpf) ' || true
[ "$ok" = 1 ]
