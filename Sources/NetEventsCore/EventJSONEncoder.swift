import Foundation

/// Encodes events as JSON lines: one object per line, keys in the order the event's `encode(to:)`
/// writes them, straight into a byte buffer.
///
/// The events' `Codable` conformance is the one definition of their JSON keys: `JSONEncoder`
/// gives the same keys. This encoder skips Foundation's intermediate tree and so costs a fraction
/// of `JSONEncoder`'s time per value; for an ``EventFields`` event it writes through
/// ``JSONLineWriter``, as the command-line tools do.
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
        if let event = value as? any EventFields {
            // An event lists its own fields: straight to the line writer.
            let writer = JSONLineWriter()
            writer.append(event)
            writer.buffer.withUnsafeBytes { buffer.append(contentsOf: $0) }
            return
        }
        let writer = JSONWriter()
        try writer.encode(value)  // on error, nothing was added to `buffer`
        if writer.unsupported {
            // A shape this writer does not stream (nested containers, several containers for one
            // value): Foundation's encoder builds it whole, still one valid line.
            buffer.append(contentsOf: try JSONEncoder().encode(value))
        } else {
            writer.out.commit()
            writer.out.buffer.withUnsafeBytes { buffer.append(contentsOf: $0) }
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
    var out = LineCursor(LineBuffer(capacity: 512))
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// What the value being encoded opened, so it can be closed once its `encode(to:)` returns.
    private var opened: UInt8?
    /// Set when the value asked for something this writer does not stream; the caller then
    /// encodes the value with `JSONEncoder` instead.
    var unsupported = false

    init() {}

    /// Encodes a nested value in place, closing whatever container it opened.
    func encode<Value: Encodable>(_ value: Value) throws {
        if let string = value as? String { return write(string) }
        let outer = opened
        opened = nil
        try value.encode(to: self)
        if let close = opened { out.append(close) }
        opened = outer
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if opened != nil { unsupported = true }  // a second container for the same value
        out.append(UInt8(ascii: "{"))
        opened = UInt8(ascii: "}")
        return KeyedEncodingContainer(KeyedContainer<Key>(writer: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if opened != nil { unsupported = true }
        out.append(UInt8(ascii: "["))
        opened = UInt8(ascii: "]")
        return UnkeyedContainer(writer: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueContainer(writer: self) }

    /// A writer whose output is thrown away, for what this one does not stream (nested
    /// containers, super encoders): marks the value for `JSONEncoder` instead.
    func scratch() -> JSONWriter {
        unsupported = true
        return JSONWriter()
    }

    func write(_ string: String) { JSONLine.appendQuoted(string, to: &out) }

    func write(_ value: some BinaryInteger) {
        out.appendDecimal(UInt64(truncatingIfNeeded: value.magnitude), negative: value < 0)
    }

    func write(_ value: Double) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "JSON has no \(value)"))
        }
        out.append(value.description)
    }

    func write(_ value: Bool) {
        let text: StaticString = value ? "true" : "false"
        out.append(text)
    }
    func writeNull() { out.append("null" as StaticString) }

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
        if !first { writer.out.append(UInt8(ascii: ",")) }
        first = false
        writer.write(key.stringValue)  // escaped like any string: a dictionary's keys are data
        writer.out.append(UInt8(ascii: ":"))
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
        if count > 0 { writer.out.append(UInt8(ascii: ",")) }
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
