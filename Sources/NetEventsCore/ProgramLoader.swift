/// The attach scaffolding every kind shares: privilege and tracefs checks, the transport and
/// offset choices, the common flags, offsets from BTF, the compile, the kind's attachments (all
/// closed again if a later step fails), the reader of the `events` buffer, and the compiler's
/// memory given back once everything is in the kernel.
enum ProgramLoader {
    /// A program running in the kernel, and what was chosen for it.
    struct Loaded<Kind: EventKind>: Sendable {
        var module: BPFModule
        var links: [BPFLink]
        var source: any SampleSource
        var report: AttachReport<Kind.Hooks>
        /// The filter in the program's maps.
        var filter: ResolvedFilter
        /// The kernel's count of the hook's hits, against the program's runs.
        var unseen: UnseenEventCount?
    }

    static func load<Kind: EventKind>(
        _ configuration: MonitorConfiguration<Kind>, as _: Kind.Type, features: KernelFeatures = .shared
    ) throws(BPFError) -> Loaded<Kind> {
        try SystemChecks.requireCapabilities(Kind.capabilityNeeds(configuration), for: Kind.activity)
        try SystemChecks.requireTracefs()
        let filter = try ResolvedFilter(configuration.filter)
        var plan = ProgramPlan(
            offsetSource: configuration.offsetSource ?? .best(features),
            transport: configuration.transport ?? .best(features))
        let hooks = try Kind.plan(configuration, features: features, into: &plan)
        if plan.offsetSource == .headers && !configuration.acceptsEstimatedOffsets {
            // Another kernel's headers give another kernel's offsets: refuse rather than print
            // numbers read at the wrong place.
            let headers = try KernelHeaders.locate()
            if !headers.matchesRunningKernel { throw .untrustedOffsets(headers: headers.name, running: KernelVersion.running.release) }
        }

        var flags = plan.flags + configuration.filter.compilerFlags
        if plan.transport == .ringBuffer { flags += ["-DUSE_RINGBUF", "-DRINGBUF_PAGES=\(configuration.bufferPages)"] }
        switch plan.offsetSource {
        case .btf: flags += try KernelBTF.vmlinux().defines(for: plan.offsets)
        case .headers: flags.append("-DOFFSETS_FROM_HEADERS")
        }
        let module = try compile(plan.expandedText(), flags: flags, tryingOtherHeaders: plan.offsetSource == .headers)

        var links: [BPFLink] = []
        do {
            try filter.install(in: module)
            try Kind.attach(hooks, module: module, links: &links)
            var notes = plan.notes
            var unseen: UnseenEventCount?
            if let check = Kind.crossCheck(hooks) {
                do throws(BPFError) {
                    unseen = try UnseenEventCount(check, runs: KernelCounters(map: try module.table("stats").typed()))
                } catch {
                    notes.append("no count of \(check.category):\(check.name) hits the program did not see: \(error)")
                }
            }
            let source = try plan.transport.reader(
                for: module.table("events"), pages: configuration.bufferPages,
                minimumDrainInterval: configuration.drainInterval)
            let report = AttachReport(
                hooks: hooks, transport: plan.transport, offsetSource: plan.offsetSource, headers: module.headers,
                attachments: links.map(\.target), notes: notes)
            // Loading touched the compiler's code again: give it back once everything is in the kernel.
            CompilerMemory.release()
            return Loaded(module: module, links: links, source: source, report: report, filter: filter, unseen: unseen)
        } catch {
            links.reversed().forEach { $0.close() }  // as a stop detaches: each hook before what it depends on
            CompilerMemory.release()
            throw error
        }
    }

    /// Compiles `source`. With header offsets from another kernel's headers (accepted by the
    /// user), a tree this clang cannot build is followed by the other installed trees in turn;
    /// if none builds, the first failure is thrown.
    private static func compile(_ source: String, flags: [String], tryingOtherHeaders: Bool) throws(BPFError) -> BPFModule {
        var headers = try KernelHeaders.locate()
        var firstFailure: BPFError?
        while true {
            do {
                return try BPFModule(source: source, cflags: flags, headers: headers, releasesCompilerMemory: false)
            } catch {
                let failure = firstFailure ?? error
                guard case .compileFailed = error, tryingOtherHeaders, !headers.matchesRunningKernel,
                    let next = try KernelHeaders.next(after: headers)
                else { throw failure }
                firstFailure = failure
                headers = next
            }
        }
    }
}
