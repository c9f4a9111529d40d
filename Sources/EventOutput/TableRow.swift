import Glibc
import NetEventsCore

/// Rows of a human table, written into one byte buffer reused from batch to batch: each call
/// fills the next column, escaped and padded to the column's width, with no `String` per cell.
/// Each cell is in ``buffer`` once written; ``endRow()`` ends the row with a newline.
public struct TableRow {
    /// The table's columns.
    public let columns: [TextColumn]
    /// The rows ended so far, each ending in a newline.
    public var buffer: LineBuffer { line.buffer }
    private var line = LineCursor(LineBuffer(capacity: 1 << 16))
    private var column = 0
    private var clockSecond: UInt64 = .max
    private var clockPrefix: (UInt64, UInt64) = (0, 0)  // "HH:MM:SS." of clockSecond

    /// Rows of a table of `columns`.
    public init(columns: [TextColumn]) {
        self.columns = columns
    }

    /// A copy of the rows written so far.
    public var bytes: [UInt8] { buffer.bytes }

    /// A cell of text: control characters escaped as `TextColumn.escaped(_:)` does.
    public mutating func text(_ value: String) {
        let start = open()
        var value = value
        let plain = value.withUTF8 { utf8 in
            guard !utf8.contains(where: { $0 < 0x20 || $0 >= 0x7f || $0 == UInt8(ascii: "\\") }) else { return false }
            line.append(UnsafeRawBufferPointer(utf8))
            return true
        }
        if plain {
            close(start, width: line.count - start)
        } else {
            let escaped = TextColumn.escaped(value)
            line.append(escaped)
            close(start, width: escaped.count)
        }
    }

    /// A cell holding a number.
    public mutating func number(_ value: some BinaryInteger) {
        let start = open()
        line.appendDecimal(UInt64(truncatingIfNeeded: value.magnitude), negative: value < 0)
        close(start, width: line.count - start)
    }

    /// A cell holding `nanoseconds` as milliseconds with two decimals (`12.34`), or `-` for nil.
    public mutating func milliseconds(_ nanoseconds: UInt64?) {
        let start = open()
        if let nanoseconds {
            // Hundredths of a millisecond, rounded half up (no overflow near UInt64.max).
            let hundredths = nanoseconds / 10_000 + (nanoseconds % 10_000 >= 5_000 ? 1 : 0)
            line.appendDecimal(hundredths / 100)
            line.append(UInt8(ascii: "."))
            line.appendDecimal(hundredths % 100, minimumDigits: 2)
        } else {
            line.append(UInt8(ascii: "-"))
        }
        close(start, width: line.count - start)
    }

    /// A cell holding `1.2.3.4:80` or `[::1]:80`.
    public mutating func endpoint(_ address: IPAddress, port: UInt16) {
        let start = open()
        if address.family == .ipv6 { line.append(UInt8(ascii: "[")) }
        line.appendAddress(address)
        if address.family == .ipv6 { line.append(UInt8(ascii: "]")) }
        line.append(UInt8(ascii: ":"))
        line.appendDecimal(UInt64(port))
        close(start, width: line.count - start)
    }

    /// A cell holding a wall-clock time as `HH:MM:SS.mmm`, local time. The local hour and minute
    /// are worked out once per second, not once per row.
    public mutating func clock(_ nanoseconds: UInt64) {
        let start = open()
        let second = nanoseconds / 1_000_000_000
        if second != clockSecond {
            var time = tm()
            var raw = time_t(second)
            localtime_r(&raw, &time)
            var prefix: [UInt8] = []
            for (index, part) in [time.tm_hour, time.tm_min, time.tm_sec].enumerated() {
                if index > 0 { prefix.append(UInt8(ascii: ":")) }
                prefix.append(UInt8(ascii: "0") + UInt8(part / 10))
                prefix.append(UInt8(ascii: "0") + UInt8(part % 10))
            }
            prefix.append(UInt8(ascii: "."))
            withUnsafeMutableBytes(of: &clockPrefix) { $0.copyBytes(from: prefix) }
            clockSecond = second
        }
        withUnsafeBytes(of: clockPrefix) { line.append(UnsafeRawBufferPointer(rebasing: $0[0..<9])) }
        line.appendDecimal(nanoseconds / 1_000_000 % 1000, minimumDigits: 3)
        close(start, width: line.count - start)
    }

    /// A cell holding `-` (nothing to show).
    public mutating func none() { text("-") }

    /// Ends the row.
    public mutating func endRow() {
        line = LineCursor(line.buffer)
        line.append(UInt8(ascii: "\n"))
        line.commit()
        column = 0
    }

    /// Forgets the rows written, keeping the buffer's capacity.
    public mutating func removeAll() {
        line.buffer.removeAll()
        column = 0
    }

    /// Starts a cell: a cursor at wherever the buffer ends now (so a copy of this row, or anyone
    /// else appending to the buffer, cannot leave it pointing at freed memory), then the separator.
    private mutating func open() -> Int {
        line = LineCursor(line.buffer)
        if column > 0 { line.append(UInt8(ascii: " ")) }
        return line.count
    }

    /// Pads the cell that started at `start` and shows as `width` characters.
    private mutating func close(_ start: Int, width: Int) {
        if column < columns.count {
            let padding = columns[column].width - width
            if padding > 0 {
                line.insert(UInt8(ascii: " "), count: padding, at: columns[column].rightAligned ? start : line.count)
            }
        }
        line.commit()
        column += 1
    }
}
