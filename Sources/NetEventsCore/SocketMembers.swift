extension MemberOffset {
    /// The `struct sock_common` members of a socket's endpoints and namespace that
    /// `bpf/netevents_bpf.h` reads (`read_endpoints`, `read_netns`).
    public static let socketEndpoints: [MemberOffset] = [
        .init("OFF_SKC_FAMILY", "sock.__sk_common.skc_family", size: 2), .init("OFF_SKC_NUM", "sock.__sk_common.skc_num", size: 2),
        .init("OFF_SKC_DPORT", "sock.__sk_common.skc_dport", size: 2), .init("OFF_SKC_RCV_SADDR", "sock.__sk_common.skc_rcv_saddr", size: 4),
        .init("OFF_SKC_DADDR", "sock.__sk_common.skc_daddr", size: 4), .init("OFF_SKC_V6_RCV_SADDR", "sock.__sk_common.skc_v6_rcv_saddr", size: 16),
        .init("OFF_SKC_V6_DADDR", "sock.__sk_common.skc_v6_daddr", size: 16), .init("OFF_SKC_NET", "sock.__sk_common.skc_net", size: 8),
        .init("OFF_NET_NS_INUM", "net.ns.inum", size: 4),
    ]

    /// The `struct sock` members that tell a UDP socket from the others at a hook every socket's
    /// sends and receives reach (`bpf/udp_datagrams.h`'s raw `sock:sock_send_length` programs).
    public static let socketKind: [MemberOffset] = [
        .init("OFF_SK_TYPE", "sock.sk_type", size: 2), .init("OFF_SK_PROTOCOL", "sock.sk_protocol", size: 2),
    ]

    /// The members `bpf/netevents_bpf.h` reads for a process's names: `read_task_names` (the
    /// thread-group leader's `comm`) and `read_exe` (task → mm → exe_file → dentry name).
    public static let taskNames: [MemberOffset] = [
        .init("OFF_TASK_GROUP_LEADER", "task_struct.group_leader", size: 8), .init("OFF_TASK_COMM", "task_struct.comm", size: 16),
        .init("OFF_TASK_MM", "task_struct.mm", size: 8), .init("OFF_MM_EXE_FILE", "mm_struct.exe_file", size: 8),
        .init("OFF_FILE_DENTRY", "file.f_path.dentry", size: 8), .init("OFF_DENTRY_NAME", "dentry.d_name.name", size: 8),
    ]
}
