/// Writes events as JSON lines, one object per line, into a ``LineBuffer`` kept from batch to
/// batch: the tools' `--json` output. Each line is written through a ``LineCursor``.
///
/// It takes each field as its type (no `Encoder` containers, no dynamic casts, no intermediate
/// `String`): numbers become digits in place, IPv4 addresses are formatted without `inet_ntop`,
/// and text is escaped as JSON requires (quotes, backslashes, control characters).
///
/// ```swift
/// let writer = JSONLineWriter()
/// for event in batch { writer.append(event) }
/// writer.buffer.withUnsafeBytes { send($0) }
/// writer.removeAll()
/// ```
public struct JSONLineWriter {
    /// The lines written so far, each ending in a newline.
    public let buffer: LineBuffer

    /// A writer into a new buffer with room for `capacity` bytes before it grows.
    public init(capacity: Int = 4096) {
        buffer = LineBuffer(capacity: capacity)
    }

    /// A writer that appends to `buffer`.
    public init(buffer: LineBuffer) {
        self.buffer = buffer
    }

    /// A copy of the lines written so far.
    public var bytes: [UInt8] { buffer.bytes }

    /// Appends `event` as one line. The line is written through a cursor made for it, at
    /// wherever the buffer ends now, and committed when complete.
    @inlinable public func append<Event: EventFields>(_ event: Event) {
        var line = JSONLine(LineCursor(buffer))
        line.cursor.append(UInt8(ascii: "{"))
        event.writeFields(to: &line)
        line.cursor.append(UInt8(ascii: "}"))
        line.cursor.append(UInt8(ascii: "\n"))
        line.cursor.commit()
    }

    /// Forgets what was written, keeping the buffer's allocation.
    public func removeAll() { buffer.removeAll() }
}

/// One line being written: the fields of one event, as JSON. Internal, so that fields can only
/// be written inside ``JSONLineWriter/append(_:)``, through a cursor that lives for that line.
@usableFromInline struct JSONLine: EventFieldWriter {
    @usableFromInline var cursor: LineCursor
    @usableFromInline var first = true

    @inlinable init(_ cursor: LineCursor) { self.cursor = cursor }

    @inlinable mutating func write(_ value: UInt64, forKey key: StaticString) {
        self.key(key)
        cursor.appendDecimal(value)
    }

    @inlinable mutating func write(_ value: Int64, forKey key: StaticString) {
        self.key(key)
        cursor.appendDecimal(value.magnitude, negative: value < 0)
    }

    @inlinable mutating func write(_ value: UInt64?, forKey key: StaticString) {
        self.key(key)
        if let value { cursor.appendDecimal(value) } else { cursor.append("null" as StaticString) }
    }

    @inlinable mutating func write(_ value: String, forKey key: StaticString) {
        self.key(key)
        JSONLine.appendQuoted(value, to: &cursor)
    }

    @inlinable mutating func write(_ value: String?, forKey key: StaticString) {
        guard let value else { return }  // left out, as encodeIfPresent does
        write(value, forKey: key)
    }

    @inlinable mutating func write(_ value: IPAddress, forKey key: StaticString) {
        self.key(key)
        cursor.append(UInt8(ascii: "\""))
        cursor.appendAddress(value)
        cursor.append(UInt8(ascii: "\""))
    }

    @inlinable mutating func write(_ values: [IPAddress], forKey key: StaticString) {
        self.key(key)
        cursor.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { cursor.append(UInt8(ascii: ",")) }
            cursor.append(UInt8(ascii: "\""))
            cursor.appendAddress(value)
            cursor.append(UInt8(ascii: "\""))
        }
        cursor.append(UInt8(ascii: "]"))
    }

    @inlinable mutating func write(_ value: Bool, forKey key: StaticString) {
        self.key(key)
        cursor.append(value ? "true" as StaticString : "false" as StaticString)
    }

    /// `,"key":` (no comma before the first key). Keys are literal identifiers: never escaped.
    @inlinable mutating func key(_ key: StaticString) {
        let length = key.utf8CodeUnitCount
        cursor.reserve(length + 4)
        var at = cursor.base + cursor.used
        if !first {
            at.pointee = UInt8(ascii: ",")
            at += 1
        }
        first = false
        at.pointee = UInt8(ascii: "\"")
        (at + 1).initialize(from: key.utf8Start, count: length)
        at[length + 1] = UInt8(ascii: "\"")
        at[length + 2] = UInt8(ascii: ":")
        cursor.used = at + length + 3 - cursor.base
    }

    /// `string` in quotes, escaped as JSON requires. Most strings need no escaping: then the text
    /// is appended whole.
    @inlinable static func appendQuoted(_ string: String, to line: inout LineCursor) {
        line.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                line.append(UnsafeRawBufferPointer(utf8))
                return
            }
            let hex: StaticString = "0123456789abcdef"
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): line.append("\\\"" as StaticString)
                case UInt8(ascii: "\\"): line.append("\\\\" as StaticString)
                case UInt8(ascii: "\n"): line.append("\\n" as StaticString)
                case UInt8(ascii: "\r"): line.append("\\r" as StaticString)
                case UInt8(ascii: "\t"): line.append("\\t" as StaticString)
                case 0..<0x20:
                    line.append("\\u00" as StaticString)
                    line.append(hex.utf8Start[Int(byte >> 4)])
                    line.append(hex.utf8Start[Int(byte & 0xf)])
                default: line.append(byte)
                }
            }
        }
        line.append(UInt8(ascii: "\""))
    }
}
