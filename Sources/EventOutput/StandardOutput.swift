import Glibc
import NetEventsCore
import Synchronization

/// Writes straight to descriptor 1, so every event reaches a pipe the moment it is printed and
/// nothing sits in a stdio buffer at exit. (Glibc's `stdout` is a mutable C global that Swift 6
/// strict concurrency rejects; this avoids it.)
public enum StandardOutput {
    private static let closedHandler = Locked<(@Sendable () -> Void)?>(nil)

    /// Runs `handler` once when a write finds the output closed (EPIPE: the reader went away, as
    /// `head -1` does), so a tool can stop like `grep` or `tcpdump` would.
    public static func onClosed(_ handler: @escaping @Sendable () -> Void) {
        closedHandler.withLock { $0 = handler }
    }

    /// Writes `line` and a newline.
    public static func writeLine(_ line: String) {
        write(Array((line + "\n").utf8))
    }

    /// Writes all of `bytes`, retrying after interruptions. A closed pipe ends the write.
    /// - Returns: whether all of `bytes` was written.
    @discardableResult
    public static func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Writes all of `buffer`'s bytes, as the other `write` does.
    @discardableResult
    public static func write(_ buffer: LineBuffer) -> Bool {
        buffer.withUnsafeBytes { write($0) }
    }

    /// Writes all of `raw`, retrying after interruptions. A closed pipe ends the write.
    /// - Returns: whether all of `raw` was written.
    @discardableResult
    public static func write(_ raw: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < raw.count {
            let written = Glibc.write(1, raw.baseAddress! + offset, raw.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE { closedHandler.withLock { handler in defer { handler = nil }; return handler }?() }
                return false
            }
            offset += written
        }
        return true
    }
}
