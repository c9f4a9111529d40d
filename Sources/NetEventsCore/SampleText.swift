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
