/// How samples travel from the kernel to user space.
public enum SampleTransport: String, Sendable, CaseIterable {
    /// One shared, ordered ring (`BPF_RINGBUF_OUTPUT`). Minimum kernel: 5.8.
    case ringBuffer
    /// One perf ring per CPU (`BPF_PERF_OUTPUT`). Minimum kernel: 4.4.
    case perfBuffer

    /// The ring buffer where the kernel has it, else the perf buffer.
    public static func best(_ features: KernelFeatures = .shared) -> SampleTransport {
        features.ringBuffer.isYes ? .ringBuffer : .perfBuffer
    }

    /// The reader for `table`, declared in C as `BPF_RINGBUF_OUTPUT` with `-DUSE_RINGBUF` or as
    /// `BPF_PERF_OUTPUT` otherwise.
    /// - Parameters:
    ///   - table: the program's output table.
    ///   - pages: perf buffer pages per CPU (the ring's size is fixed in C).
    ///   - minimumDrainInterval: the shortest time between two drains (batching).
    /// - Throws: `BPFError.invalidArgument` when `table` is not of this transport's map type or
    ///   `pages` is not a power of two.
    public func reader(for table: BPFTable, pages: Int, minimumDrainInterval: Duration) throws(BPFError) -> any SampleSource {
        switch self {
        case .ringBuffer: try RingBuffer(table: table, minimumDrainInterval: minimumDrainInterval)
        case .perfBuffer: try PerfBuffer(table: table, pageCount: pages, minimumDrainInterval: minimumDrainInterval)
        }
    }
}

/// Where the struct member offsets a program reads come from.
public enum OffsetSource: String, Sendable, CaseIterable {
    /// The running kernel's BTF: always right for this kernel.
    case btf
    /// `offsetof` in the kernel headers BCC compiles against: right only when the headers are the
    /// running kernel's own. The path for kernels without BTF.
    case headers

    /// BTF where the kernel has it, else headers.
    public static func best(_ features: KernelFeatures = .shared) -> OffsetSource {
        features.btf.isYes ? .btf : .headers
    }
}

/// A struct member a program reads, handed to it as `-D<macro>=<offset>`.
public struct MemberOffset: Sendable, Hashable {
    /// The C macro, e.g. `OFF_TCP_BYTES_RECEIVED`.
    public var macro: String
    /// The member path for ``KernelBTF/member(_:)``, e.g. `tcp_sock.bytes_received`.
    public var path: String
    /// The size the program reads it as; a kernel whose member differs is refused.
    public var size: Int

    /// A member read as `size` bytes and passed as `-D<macro>=<offset>`.
    public init(_ macro: String, _ path: String, size: Int) {
        self.macro = macro
        self.path = path
        self.size = size
    }
}

extension KernelBTF {
    /// `-D<macro>=<offset>` for each member, after checking each has the size the program reads.
    /// - Throws: `BPFError.btf` naming a missing member or one whose size changed.
    public func defines(for members: [MemberOffset]) throws(BPFError) -> [String] {
        var flags: [String] = []
        for entry in members {
            let layout = try member(entry.path)
            guard layout.size == entry.size else {
                throw BPFError.btf("\(entry.path) is \(layout.size) bytes in this kernel; the program reads \(entry.size)")
            }
            flags.append("-D\(entry.macro)=\(layout.offset)")
        }
        return flags
    }
}
