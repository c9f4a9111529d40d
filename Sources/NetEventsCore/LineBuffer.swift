import Glibc

/// A growable byte buffer for building lines of output, reused batch after batch.
///
/// Writers append to it through a ``LineCursor``, which keeps the buffer's end in local state
/// for a burst of appends (a line, a row) and stores it back once: an `[UInt8]`, or a class
/// property written per append, would pay a uniqueness or exclusivity check on every one of the
/// few dozen short pieces an event is made of. Meant for one thread at a time.
public final class LineBuffer {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    @usableFromInline var used = 0

    /// An empty buffer with room for `capacity` bytes before it grows.
    public init(capacity: Int = 4096) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// How many bytes were written.
    public var count: Int { used }

    /// A copy of the bytes written.
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: used)) }

    /// Calls `body` with the bytes written (valid only during the call).
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: base, count: used))
    }

    /// Forgets what was written, keeping the allocation.
    public func removeAll() { used = 0 }

    /// Makes room for `extra` more bytes after the first `used`.
    @usableFromInline func grow(_ extra: Int) {
        let newCapacity = max(capacity * 2, used + extra)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: used)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }
}

/// A write position at the end of a ``LineBuffer``: appends go to local state, and
/// ``commit()`` makes them part of the buffer. Create one for a burst of appends, commit, and
/// drop it; the buffer must not be changed otherwise in between.
public struct LineCursor {
    /// The buffer written to.
    public let buffer: LineBuffer
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var used: Int
    @usableFromInline var capacity: Int

    /// A cursor at the end of `buffer`.
    @inlinable public init(_ buffer: LineBuffer) {
        self.buffer = buffer
        base = buffer.base
        used = buffer.used
        capacity = buffer.capacity
    }

    /// The buffer's length with what this cursor appended.
    @inlinable public var count: Int { used }

    /// Stores what was appended in the buffer.
    @inlinable public func commit() { buffer.used = used }

    /// Makes room for `extra` more bytes.
    @inlinable public mutating func reserve(_ extra: Int) {
        if capacity - used < extra { regrow(extra) }
    }

    @usableFromInline mutating func regrow(_ extra: Int) {
        buffer.used = used
        buffer.grow(extra)
        base = buffer.base
        capacity = buffer.capacity
    }

    /// Appends one byte.
    @inlinable public mutating func append(_ byte: UInt8) {
        if used == capacity { regrow(1) }
        base[used] = byte
        used += 1
    }

    /// Appends `bytes`.
    @inlinable public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        (base + used).initialize(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        used += bytes.count
    }

    /// Appends the text of a literal.
    @inlinable public mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends `text` as UTF-8.
    @inlinable public mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Inserts `count` copies of `byte` at offset `offset` (at most ``count``), moving what follows.
    public mutating func insert(_ byte: UInt8, count: Int, at offset: Int) {
        guard count > 0 else { return }
        let offset = min(max(0, offset), used)
        reserve(count)
        memmove(base + offset + count, base + offset, used - offset)
        (base + offset).update(repeating: byte, count: count)
        used += count
    }

    /// The decimal digits of `value` (after a `-` if `negative`), at least `minimumDigits` of
    /// them (zero-padded on the left).
    @inlinable public mutating func appendDecimal(_ value: UInt64, negative: Bool = false, minimumDigits: Int = 1) {
        var digits = 1
        var limit: UInt64 = 10
        while digits < 20 && value >= limit {
            digits += 1
            limit = limit &* 10
        }
        digits = max(digits, minimumDigits)
        let length = digits + (negative ? 1 : 0)
        reserve(length)
        let start = base + used
        if negative { start[0] = UInt8(ascii: "-") }
        // Two digits per division, from the right; zeros fill up to `minimumDigits`.
        let pairs = LineCursor.digitPairs.utf8Start
        var rest = value
        var position = length
        let first = length - digits
        while rest >= 100 {
            let pair = Int(truncatingIfNeeded: rest % 100)
            rest /= 100
            position -= 2
            start[position] = pairs[2 * pair]
            start[position + 1] = pairs[2 * pair + 1]
        }
        if rest >= 10 {
            position -= 2
            start[position] = pairs[2 * Int(rest)]
            start[position + 1] = pairs[2 * Int(rest) + 1]
        } else {
            position -= 1
            start[position] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest)
        }
        while position > first {
            position -= 1
            start[position] = UInt8(ascii: "0")
        }
        used += length
    }

    @usableFromInline static let digitPairs: StaticString = """
        00010203040506070809101112131415161718192021222324252627282930313233343536373839\
        40414243444546474849505152535455565758596061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899
        """

    /// `address` as `inet_ntop` writes it: IPv4 digit by digit, IPv6 through `inet_ntop` (its
    /// zero-run compression has rules worth not restating).
    public mutating func appendAddress(_ address: IPAddress) {
        switch address {
        case .v4(let a, let b, let c, let d):
            appendDecimal(UInt64(a))
            append(UInt8(ascii: "."))
            appendDecimal(UInt64(b))
            append(UInt8(ascii: "."))
            appendDecimal(UInt64(c))
            append(UInt8(ascii: "."))
            appendDecimal(UInt64(d))
        case .v6(let raw):
            var text: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)  // 48 >= INET6_ADDRSTRLEN
            withUnsafeMutableBytes(of: &text) { text in
                let written = raw.withUnsafeBytes { raw -> Bool in
                    inet_ntop(AF_INET6, raw.baseAddress, text.baseAddress!.assumingMemoryBound(to: CChar.self), socklen_t(text.count)) != nil
                }
                guard written, let end = text.firstIndex(of: 0) else {
                    append(UInt8(ascii: "?"))
                    return
                }
                append(UnsafeRawBufferPointer(rebasing: text[..<end]))
            }
        }
    }
}
