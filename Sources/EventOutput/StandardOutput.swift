import Glibc

/// Writes whole lines straight to descriptor 1, one `write(2)` each, so every event reaches a pipe
/// the moment it is printed and nothing sits in a stdio buffer at exit. (Glibc's `stdout` is a
/// mutable C global that Swift 6 strict concurrency rejects; this avoids it.)
public enum StandardOutput {
    /// Writes `line` and a newline.
    public static func writeLine(_ line: String) {
        var text = line
        text.append("\n")
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // a closed pipe: nothing more to do for this line
                }
                offset += written
            }
        }
    }
}
