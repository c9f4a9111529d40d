/// The kernel's socket cookies as event ids, for every kind: the id `sock_diag` reports for a
/// socket, unique while the system runs. The kernel fills a socket's cookie on first request only
/// and tracing programs cannot request it, so `bpf/netevents_bpf.h` has two programs, attached at
/// the root of the cgroup v2 hierarchy, that request it as each socket is made; the tracing
/// programs then read it (`read_cookie`).
public enum SocketCookies {
    /// The member the tracing programs read the cookie from.
    public static let offsets: [MemberOffset] = [.init("OFF_SKC_COOKIE", "sock.__sk_common.skc_cookie", size: 8)]

    /// Builds cookies into `program` when the kernel can give them (`-DSOCKET_COOKIES` and the
    /// member's offset); call it after the kind has set the program's offsets.
    /// - Returns: whether it did; when not, a note says why events carry no socket id.
    public static func plan(features: KernelFeatures, into program: inout ProgramPlan) -> Bool {
        let answer = features.socketCookies
        guard answer.isYes else {
            program.notes.append("no socket cookies, so no socket_id: \(answer)")
            return false
        }
        program.flags.append("-DSOCKET_COOKIES")
        program.offsets += offsets
        return true
    }

    /// Attaches the programs that request each socket's cookie as it is made: at `socket(2)`,
    /// and with `passiveOpens`, when a passive TCP socket (which `socket(2)` does not make)
    /// completes its handshake. Attach them before the tracing programs, so no traced socket is
    /// made unseen.
    /// - Throws: `BPFError` when a program does not load or attach.
    public static func attach(module: BPFModule, links: inout [BPFLink], passiveOpens: Bool) throws(BPFError) {
        guard let root = SystemChecks.cgroup2Path else {
            throw .notSupported(feature: "socket cookies", minimumKernel: "4.19", reason: "no cgroup v2 hierarchy is mounted")
        }
        let create = try module.loadProgram(
            "ne_cookie_at_create", type: .cgroupSock, expectedAttachType: CgroupAttachType.socketCreate.rawValue)
        links.append(try BPFLink.cgroup(create, path: root, type: .socketCreate))
        if passiveOpens {
            let operations = try module.loadProgram(
                "ne_cookie_at_passive_open", type: .sockOps, expectedAttachType: CgroupAttachType.socketOperations.rawValue)
            links.append(try BPFLink.cgroup(operations, path: root, type: .socketOperations))
        }
    }
}
