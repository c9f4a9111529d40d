import Glibc
import Synchronization

/// A program loaded into the kernel. Closing it releases the file descriptor; the kernel keeps the
/// program alive for as long as an attachment still uses it.
public final class BPFProgram: Sendable {
    /// The function's name in the C source.
    public let name: String
    /// The program type it was loaded as.
    public let type: ProgramType
    private let descriptor: Mutex<Int32>

    init(fd: Int32, name: String, type: ProgramType) {
        self.descriptor = Mutex(fd)
        self.name = name
        self.type = type
    }

    /// The program's file descriptor, or -1 once closed.
    public var fd: Int32 { descriptor.withLock { $0 } }

    /// Releases the program. Safe to call more than once.
    public func close() {
        descriptor.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    deinit { close() }
}
