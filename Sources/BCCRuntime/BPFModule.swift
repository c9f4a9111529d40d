import CBCCLoader
import Foundation
import Synchronization
import SystemPackage

/// A compiled eBPF C program: its functions, ready to load, and its maps, already created.
///
/// BCC compiles the text with its embedded clang against a kernel header tree (see
/// ``KernelHeaders``) and creates every map the program declares. Destroying the module closes
/// those maps; programs loaded from it and their attachments live on until they are closed.
///
/// The corresponding C function is `bpf_module_create_c_from_string`.
public final class BPFModule: @unchecked Sendable {
    // BCC's module object is not thread-safe; every use of `handle` holds `lock`.
    private let handle: UnsafeMutableRawPointer
    private let lock = NSLock()
    /// The header tree the program was compiled against.
    public let headers: KernelHeaders
    /// What clang printed while compiling successfully (warnings), if anything.
    public let compilerOutput: String

    /// Compiles a program.
    /// - Parameters:
    ///   - source: the eBPF C text.
    ///   - cflags: extra compiler flags, typically `-DNAME=value` constants.
    ///   - headers: the header tree to use; by default ``KernelHeaders/locate(cacheDirectory:sourcesDirectory:)``.
    ///   - releasesCompilerMemory: give back the compiler's memory right after the compile
    ///     (``CompilerMemory/release()``). A caller that loads programs next, which touches the
    ///     compiler's code again, passes false and releases once when everything is loaded.
    /// - Throws: `BPFError.missingCapabilities` without `CAP_BPF` (maps are made while
    ///   compiling), `.tracefsNotMounted` (for `TRACEPOINT_PROBE` programs), what ``KernelHeaders/locate(cacheDirectory:sourcesDirectory:)`` throws
    ///   (`.headersMissing`, ...), `.libraryMissing` where libbcc is not installed (the runtime
    ///   opens it here, at the first compile), or `.compileFailed` carrying clang's diagnostics.
    public init(source: String, cflags: [String] = [], headers: KernelHeaders? = nil, releasesCompilerMemory: Bool = true)
        throws(BPFError)
    {
        try SystemChecks.requireCapabilities([.programs], for: "compiling and loading eBPF programs")
        if source.contains("TRACEPOINT_PROBE") {
            // BCC reads each tracepoint's format file from tracefs while compiling.
            try SystemChecks.requireTracefs()
        }
        // Not `??`: its autoclosure rethrows as `any Error`, which would lose the typed error.
        if let headers {
            self.headers = headers
        } else {
            self.headers = try KernelHeaders.locate()
        }
        var output = ""
        let tree = self.headers
        // libbcc is opened under the same guard as the compile: its LLVM registers destructors
        // that must not run under a compile, nor before the guard's own exit handler.
        let compiled: Result<UnsafeMutableRawPointer?, BPFError>? = ProcessExit.unlessExiting(compiles: true) {
            do throws(BPFError) { try LibBCC.open() } catch { return .failure(error) }
            return .success(
                capturingStandardError(into: &output) {
                    tree.exporting {
                        withCStringArray(cflags) { flags in
                            LibBCC.functions.bpf_module_create_c_from_string(source, 0, flags, Int32(cflags.count), true, nil)
                        }
                    }
                })
        }
        guard let compiled else {
            throw BPFError.compileFailed(diagnostics: "not compiled: the process is exiting")
        }
        guard let created = try compiled.get() else {
            throw BPFError.compileFailed(diagnostics: output.isEmpty ? "(clang printed nothing)" : output)
        }
        handle = created
        compilerOutput = output
        // Clang's leftovers would otherwise stay resident for the life of the tracer.
        if releasesCompilerMemory { CompilerMemory.release() }
    }

    deinit { ProcessExit.unlessExiting { LibBCC.functions.bpf_module_destroy(handle) } }

    /// The names of the functions in the program.
    public var functionNames: [String] {
        withHandle { handle in
            (0..<LibBCC.functions.bpf_num_functions(handle)).compactMap { LibBCC.functions.bpf_function_name(handle, $0).map { String(cString: $0) } }
        }
    }

    /// Loads one function of the program into the kernel.
    ///
    /// For ``ProgramType/tracing`` (fentry/fexit) the function must be named `kfunc__FUNCTION` or
    /// `kretfunc__FUNCTION` (BCC's `KFUNC_PROBE`/`KRETFUNC_PROBE`), so BCC can find the kernel
    /// function's BTF id.
    /// - Parameters:
    ///   - name: the function's name in the C source.
    ///   - type: the program type to load it as.
    ///   - expectedAttachType: the kernel's `expected_attach_type`, for program types that need
    ///     one at load (cgroup socket programs: ``CgroupAttachType``).
    /// - Throws: `BPFError.noSuchObject` for an unknown name, `.notPrivileged`, or `.loadFailed`
    ///   with the errno of the first attempt and the verifier log.
    public func loadProgram(_ name: String, type: ProgramType, expectedAttachType: Int32? = nil) throws(BPFError) -> BPFProgram {
        try withHandle { handle throws(BPFError) in
            guard let start = LibBCC.functions.bpf_function_start(handle, name) else {
                throw BPFError.noSuchObject(kind: "function", name: name)
            }
            let size = LibBCC.functions.bpf_function_size(handle, name)
            let license = LibBCC.functions.bpf_module_license(handle)
            let version = LibBCC.functions.bpf_module_kern_version(handle)
            let instructions = start.assumingMemoryBound(to: bpf_insn.self)
            // BCC takes the length in bytes, not instructions.
            let count = Int32(size)
            let attachType = expectedAttachType ?? type.expectedAttachType(for: name)
            // BCC prints failures to stderr itself; capture that, the error below carries it.
            var printed = ""
            var code = Errno(rawValue: 0)
            var fd = capturingStandardError(into: &printed) {
                let fd = LibBCC.functions.bcc_func_load(handle, type.rawValue, name, instructions, count, license, version, 0, nil, 0, nil, attachType)
                code = .current
                return fd
            }
            if fd >= 0 { return BPFProgram(fd: fd, name: name, type: type) }
            // Load again with the verifier's log on, to say why.
            let logSize = 1 << 22
            let log = UnsafeMutablePointer<CChar>.allocate(capacity: logSize)
            defer { log.deallocate() }
            log.initialize(to: 0)
            fd = capturingStandardError(into: &printed) {
                LibBCC.functions.bcc_func_load(handle, type.rawValue, name, instructions, count, license, version, 1, log, UInt32(logSize), nil, attachType)
            }
            if fd >= 0 { return BPFProgram(fd: fd, name: name, type: type) }
            let text = String(cString: log)
            throw BPFError.privileged(code, operation: "loading eBPF program \(name)") {
                .loadFailed(program: name, errno: $0, verifierLog: text.isEmpty ? printed : text)
            }
        }
    }

    /// Loads and attaches the program's handler of tracepoint `category:name`: its raw handler
    /// (`RAW_TRACEPOINT_PROBE(name)`) where the compiled program has one, else its handler of the
    /// tracepoint with its record (`TRACEPOINT_PROBE(category, name)`). The program's compile-time
    /// switches choose; the attach follows what was compiled.
    /// - Throws: what ``loadProgram(_:type:expectedAttachType:)`` and the ``BPFLink`` attach throw.
    public func attachTracepoint(category: String, name: String) throws(BPFError) -> BPFLink {
        let raw = "raw_tracepoint__\(name)"
        if functionNames.contains(raw) {
            return try BPFLink.rawTracepoint(try loadProgram(raw, type: .rawTracepoint), name: name)
        }
        let program = try loadProgram("tracepoint__\(category)__\(name)", type: .tracepoint)
        return try BPFLink.tracepoint(program, category: category, name: name)
    }

    /// A map the program declared (`BPF_HASH`, `BPF_PERF_OUTPUT`, ...), by name.
    /// - Throws: `BPFError.noSuchObject` when there is none.
    public func table(_ name: String) throws(BPFError) -> BPFTable {
        try withHandle { handle throws(BPFError) in
            let fd = LibBCC.functions.bpf_table_fd(handle, name)
            guard fd >= 0 else { throw BPFError.noSuchObject(kind: "table", name: name) }
            return BPFTable(
                name: name, fd: fd, type: BPFMapType(rawValue: LibBCC.functions.bpf_table_type(handle, name)),
                keySize: LibBCC.functions.bpf_table_key_size(handle, name), valueSize: LibBCC.functions.bpf_table_leaf_size(handle, name),
                maxEntries: LibBCC.functions.bpf_table_max_entries(handle, name), module: self)
        }
    }

    private func withHandle<T, Failure: Error>(_ body: (UnsafeMutableRawPointer) throws(Failure) -> T) throws(Failure) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(handle)
    }
}

/// The kinds of program the runtime loads and attaches.
public enum ProgramType: Int32, Sendable {
    /// kprobes and kretprobes (Linux 4.1+).
    case kprobe = 2
    /// Tracepoints (Linux 4.7+).
    case tracepoint = 5
    /// Raw tracepoints (Linux 4.17+).
    case rawTracepoint = 17
    /// Programs run on socket creation and release in a cgroup (Linux 4.10+; release 5.9+).
    case cgroupSock = 9
    /// Programs run at points of a TCP connection's life in a cgroup (`BPF_PROG_TYPE_SOCK_OPS`,
    /// Linux 4.13+).
    case sockOps = 13
    /// Programs run on the addresses of socket calls in a cgroup (`BPF_PROG_TYPE_CGROUP_SOCK_ADDR`:
    /// bind, connect, UDP sendmsg and recvmsg; Linux 4.17+).
    case cgroupSockAddr = 18
    /// fentry/fexit, BCC's kfunc/kretfunc (Linux 5.5+, x86-64).
    case tracing = 26

    /// `BPF_TRACE_FENTRY` or `BPF_TRACE_FEXIT` for tracing programs; -1 (none) otherwise.
    func expectedAttachType(for name: String) -> Int32 {
        guard self == .tracing else { return -1 }
        return name.hasPrefix("kretfunc__") ? 25 : 24
    }
}

/// Runs `body` with C strings for each element.
func withCStringArray<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    var pointers = copies.map { UnsafePointer<CChar>($0) }
    pointers.append(nil)
    return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}

private let standardErrorLock = Locked(())

/// Runs `body` with file descriptor 2 pointed at a temporary file and returns what was written.
/// BCC's clang writes diagnostics straight to stderr and returns only NULL, so this is the one way
/// to put them into the error. Other threads' stderr output in that window is captured too.
func capturingStandardError<R>(into output: inout String, _ body: () -> R) -> R {
    standardErrorLock.withLock { _ in
        fflush(nil)
        guard let file = tmpfile() else { return body() }
        defer { fclose(file) }
        let saved = dup(2)
        dup2(fileno(file), 2)
        let result = body()
        fflush(nil)
        dup2(saved, 2)
        close(saved)
        let size = lseek(fileno(file), 0, SEEK_END)
        if size > 0 {
            var bytes = [UInt8](repeating: 0, count: Int(size))
            _ = pread(fileno(file), &bytes, bytes.count, 0)
            output = String(decoding: bytes, as: UTF8.self)
        }
        return result
    }
}

/// Keeps BCC's LLVM out of the way of the process's exit. `exit()` runs LLVM's static destructors;
/// a module compiled or destroyed on another thread meanwhile (a monitor released by a task that
/// outlives `main`) uses what they free, and the process dies of a double free. Compiles and
/// destructions hold this lock, and an `atexit` handler takes it and marks the exit: what comes
/// later is skipped (the kernel closes the maps with the process). Exit handlers run newest
/// first, so the handler is registered again after each compile, after whatever statics that
/// compile made.
enum ProcessExit {
    private static let exiting = Locked(false)

    /// `body`'s result, or nil once the process is exiting. `compiles`: body runs the compiler,
    /// and the handler is registered (again) after it.
    static func unlessExiting<Result>(compiles: Bool = false, _ body: () -> Result) -> Result? {
        exiting.withLock { exiting in
            guard !exiting else { return nil }
            defer { if compiles { atexit { ProcessExit.exiting.withLock { $0 = true } } } }
            return body()
        }
    }
}
