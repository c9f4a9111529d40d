import Glibc

/// Text fields of kernel samples.
public enum SampleText {
    /// A NUL-terminated `comm` (at most 16 bytes), decoded as UTF-8 with invalid bytes replaced.
    public static func command(_ bytes: UnsafeRawBufferPointer) -> String {
        let length = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<length], as: UTF8.self)
    }

    /// A NUL-terminated executable file name (`exe`), decoded as UTF-8 with invalid bytes
    /// replaced; nil when empty (the task had none: a kernel thread).
    public static func executable(_ bytes: UnsafeRawBufferPointer) -> String? {
        bytes.first == 0 ? nil : command(bytes)
    }
}

/// The process of the samples a decoder reads one after another, with the `String`s of its names
/// kept: a sample whose `comm`, `thread` and `exe` bytes are those of the sample before (most
/// are: a process's events come in runs) reuses that sample's names instead of decoding them
/// again. Any difference in the bytes, even after the terminating NUL, decodes anew, so a name
/// is never one another sample had.
public struct ProcessNames: Sendable {
    /// The last sample's name fields, as they were: `comm`, `thread`, then `exe`.
    private var raw = RawNames()
    private var command = ""
    private var thread: String?
    private var executable: String?

    /// No names yet: the first sample decodes its own.
    public init() {}

    /// The process of a sample: its pid and uid, and its names from its `comm` and `thread` (at
    /// most 16 bytes each, NUL-terminated) and `exe` (at most 64) fields.
    public mutating func process(
        pid: Int32, uid: UInt32, comm: UnsafeRawBufferPointer, thread: UnsafeRawBufferPointer, exe: UnsafeRawBufferPointer
    ) -> EventProcess {
        if !raw.matches(comm, thread, exe) {
            raw.store(comm, thread, exe)
            command = SampleText.command(comm)
            let threadName = SampleText.command(thread)
            self.thread = threadName == command ? nil : threadName
            executable = SampleText.executable(exe)
        }
        return EventProcess(pid: pid, uid: uid, command: command, thread: self.thread, executable: executable)
    }

    /// Copies of the three name fields, in a fixed inline buffer (no allocation per sample).
    private struct RawNames: Sendable {
        static let sizes = (command: 16, thread: 16, executable: 64)
        /// `exe` (64 bytes), `comm` (16) and `thread` (16).
        var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        /// False until the first sample, so that all-zero fields are decoded once too.
        var filled = false

        func matches(_ comm: UnsafeRawBufferPointer, _ thread: UnsafeRawBufferPointer, _ exe: UnsafeRawBufferPointer) -> Bool {
            guard filled, comm.count == Self.sizes.command, thread.count == Self.sizes.thread, exe.count == Self.sizes.executable else { return false }
            return withUnsafeBytes(of: bytes) { stored in
                memcmp(stored.baseAddress!, exe.baseAddress!, 64) == 0 && memcmp(stored.baseAddress! + 64, comm.baseAddress!, 16) == 0
                    && memcmp(stored.baseAddress! + 80, thread.baseAddress!, 16) == 0
            }
        }

        mutating func store(_ comm: UnsafeRawBufferPointer, _ thread: UnsafeRawBufferPointer, _ exe: UnsafeRawBufferPointer) {
            filled = comm.count == Self.sizes.command && thread.count == Self.sizes.thread && exe.count == Self.sizes.executable
            guard filled else { return }
            withUnsafeMutableBytes(of: &bytes) { buffer in
                buffer.baseAddress!.copyMemory(from: exe.baseAddress!, byteCount: 64)
                (buffer.baseAddress! + 64).copyMemory(from: comm.baseAddress!, byteCount: 16)
                (buffer.baseAddress! + 80).copyMemory(from: thread.baseAddress!, byteCount: 16)
            }
        }
    }
}
