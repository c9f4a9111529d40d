import Foundation

/// Encodes events as JSON lines: one object per line, keys in the order the event's `encode(to:)`
/// writes them, straight into a byte buffer.
///
/// The events' `Codable` conformance is the one definition of their JSON keys: `JSONEncoder`
/// gives the same keys, and the command-line tools print through this encoder, which skips
/// Foundation's intermediate tree and so costs a fraction of `JSONEncoder`'s time per event.
///
/// ```swift
/// let encoder = EventJSONEncoder()
/// var buffer: [UInt8] = []
/// for event in batch { try encoder.append(event, to: &buffer) }   // one line each
/// ```
///
/// It writes what events need: objects, arrays, strings, integers, floating-point numbers,
/// booleans and null. Strings are escaped as JSON requires (quotes, backslashes, control characters).
public struct EventJSONEncoder: Sendable {
    /// An encoder.
    public init() {}

    /// Appends `value` as one line of JSON, newline included, to `buffer`.
    /// - Throws: `EncodingError` only if `value`'s `encode(to:)` itself throws.
    public func append<Value: Encodable>(_ value: Value, to buffer: inout [UInt8]) throws {
        let start = buffer.count
        let writer = JSONWriter(buffer: buffer)
        buffer = []  // the writer owns the storage meanwhile: no copy
        do {
            try writer.encode(value)
        } catch {
            buffer = writer.bytes
            buffer.removeSubrange(start...)  // nothing half-written stays
            throw error
        }
        buffer = writer.bytes
        if writer.unsupported {
            // A shape this writer does not stream (nested containers, several containers for one
            // value): Foundation's encoder builds it whole, still one valid line.
            buffer.removeSubrange(start...)
            buffer.append(contentsOf: try JSONEncoder().encode(value))
        }
        buffer.append(UInt8(ascii: "\n"))
    }

    /// `value` as one line of JSON, without the newline.
    public func encode<Value: Encodable>(_ value: Value) throws -> String {
        var buffer: [UInt8] = []
        try append(value, to: &buffer)
        buffer.removeLast()
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// The shared output of one encoding, and the encoder every container writes through.
private final class JSONWriter: Encoder {
    var bytes: [UInt8]
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// What the value being encoded opened, so it can be closed once its `encode(to:)` returns.
    private var opened: UInt8?
    /// Set when the value asked for something this writer does not stream; the caller then
    /// encodes the value with `JSONEncoder` instead.
    var unsupported = false

    init(buffer: [UInt8]) { bytes = buffer }

    /// Encodes a nested value in place, closing whatever container it opened.
    func encode<Value: Encodable>(_ value: Value) throws {
        if let string = value as? String { return write(string) }
        let outer = opened
        opened = nil
        try value.encode(to: self)
        if let close = opened { bytes.append(close) }
        opened = outer
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if opened != nil { unsupported = true }  // a second container for the same value
        bytes.append(UInt8(ascii: "{"))
        opened = UInt8(ascii: "}")
        return KeyedEncodingContainer(KeyedContainer<Key>(writer: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if opened != nil { unsupported = true }
        bytes.append(UInt8(ascii: "["))
        opened = UInt8(ascii: "]")
        return UnkeyedContainer(writer: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueContainer(writer: self) }

    /// A writer whose output is thrown away, for what this one does not stream (nested
    /// containers, super encoders): marks the value for `JSONEncoder` instead.
    func scratch() -> JSONWriter {
        unsupported = true
        return JSONWriter(buffer: [])
    }

    func write(_ string: String) {
        // Most strings need no escaping: one append of the whole text. (Each append to this class's
        // buffer pays an exclusivity check, so the work is done in as few appends as possible.)
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes.append(UInt8(ascii: "\""))
            bytes.append(contentsOf: string.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        var escaped: [UInt8] = [UInt8(ascii: "\"")]
        escaped.reserveCapacity(string.utf8.count + 16)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): escaped.append(contentsOf: [0x5c, 0x22])
            case UInt8(ascii: "\\"): escaped.append(contentsOf: [0x5c, 0x5c])
            case UInt8(ascii: "\n"): escaped.append(contentsOf: [0x5c, UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): escaped.append(contentsOf: [0x5c, UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): escaped.append(contentsOf: [0x5c, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                escaped.append(contentsOf: [0x5c, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xf)]])
            default: escaped.append(byte)
            }
        }
        escaped.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: escaped)
    }

    func write(_ value: some BinaryInteger) {
        // Digits into a stack buffer, then one append: this runs for every number of every event.
        var magnitude = UInt64(truncatingIfNeeded: value.magnitude)
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: a sign and up to 20 digits
        withUnsafeMutableBytes(of: &digits) { scratch in
            var start = scratch.count
            repeat {
                start -= 1
                scratch[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                start -= 1
                scratch[start] = UInt8(ascii: "-")
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[start...]))
        }
    }

    func write(_ value: Double) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "JSON has no \(value)"))
        }
        bytes.append(contentsOf: value.description.utf8)
    }

    func write(_ value: Bool) { bytes.append(contentsOf: (value ? "true" : "false").utf8) }
    func writeNull() { bytes.append(contentsOf: "null".utf8) }

    /// Writes a primitive, or encodes anything else in place.
    func writeValue<Value: Encodable>(_ value: Value) throws {
        switch value {
        case let value as String: write(value)
        case let value as Int: write(value)
        case let value as Int32: write(value)
        case let value as UInt8: write(value)
        case let value as UInt16: write(value)
        case let value as UInt32: write(value)
        case let value as UInt64: write(value)
        case let value as Int64: write(value)
        case let value as Bool: write(value)
        case let value as Double: try write(value)
        case let value as any BinaryInteger: write(value)
        case let value as Float: try write(Double(value))
        default: try encode(value)
        }
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let writer: JSONWriter
    var codingPath: [any CodingKey] { writer.codingPath }
    private var first = true

    init(writer: JSONWriter) { self.writer = writer }

    private mutating func key(_ key: Key) {
        if !first { writer.bytes.append(UInt8(ascii: ",")) }
        first = false
        writer.write(key.stringValue)  // escaped like any string: a dictionary's keys are data
        writer.bytes.append(UInt8(ascii: ":"))
    }

    mutating func encodeNil(forKey key: Key) throws { self.key(key); writer.writeNull() }
    mutating func encode(_ value: String, forKey key: Key) throws { self.key(key); writer.write(value) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { self.key(key); writer.write(value) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { self.key(key); writer.write(value) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { self.key(key); writer.write(value) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { self.key(key); writer.write(value) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { self.key(key); writer.write(value) }
    mutating func encode<Value: Encodable>(_ value: Value, forKey key: Key) throws {
        self.key(key)
        try writer.writeValue(value)
    }
    mutating func encodeIfPresent<Value: Encodable>(_ value: Value?, forKey key: Key) throws {
        guard let value else { return }
        try encode(value, forKey: key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        writer.scratch().container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { writer.scratch().unkeyedContainer() }
    mutating func superEncoder() -> any Encoder { writer.scratch() }
    mutating func superEncoder(forKey key: Key) -> any Encoder { writer.scratch() }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let writer: JSONWriter
    var codingPath: [any CodingKey] { writer.codingPath }
    private(set) var count = 0

    init(writer: JSONWriter) { self.writer = writer }

    private mutating func separate() {
        if count > 0 { writer.bytes.append(UInt8(ascii: ",")) }
        count += 1
    }

    mutating func encodeNil() throws {
        separate()
        writer.writeNull()
    }
    mutating func encode<Value: Encodable>(_ value: Value) throws {
        separate()
        try writer.writeValue(value)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        writer.scratch().container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { writer.scratch().unkeyedContainer() }
    mutating func superEncoder() -> any Encoder { writer.scratch() }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let writer: JSONWriter
    var codingPath: [any CodingKey] { writer.codingPath }

    mutating func encodeNil() throws { writer.writeNull() }
    mutating func encode<Value: Encodable>(_ value: Value) throws { try writer.writeValue(value) }
}
