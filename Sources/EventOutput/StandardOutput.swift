import Glibc

/// Writes straight to descriptor 1, so every event reaches a pipe the moment it is printed and
/// nothing sits in a stdio buffer at exit. (Glibc's `stdout` is a mutable C global that Swift 6
/// strict concurrency rejects; this avoids it.)
public enum StandardOutput {
    /// Writes `line` and a newline.
    public static func writeLine(_ line: String) {
        write(Array((line + "\n").utf8))
    }

    /// Writes all of `bytes`, retrying after interruptions. A closed pipe ends the write.
    public static func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(1, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // a closed pipe: nothing more to do for this line
                }
                offset += written
            }
        }
    }
}
