/// Left- or right-aligns columns of a human table.
public struct TextColumn: Sendable {
    /// The header.
    public var title: String
    /// The width values are padded to.
    public var width: Int
    /// Whether values are padded on the left (numbers).
    public var rightAligned: Bool

    public init(_ title: String, width: Int, rightAligned: Bool = false) {
        self.title = title
        self.width = width
        self.rightAligned = rightAligned
    }

    /// `value`, with control characters escaped, padded to the column's width.
    public func format(_ value: String) -> String {
        let value = TextColumn.escaped(value)
        let padding = String(repeating: " ", count: max(0, width - value.count))
        return rightAligned ? padding + value : value + padding
    }

    /// `value` with every control character (C0, DEL, C1; the terminal's escape sequences and line
    /// breaks among them) written as `\xNN`, every invisible format or separator character (a
    /// right-to-left override U+202E, U+2028) as `\u{NNNN}`, and backslashes doubled, so that no
    /// name a process gives itself can move the cursor, color the terminal, reorder a line or
    /// forge one. Invalid UTF-8 has already become U+FFFD when the sample was decoded.
    public static func escaped(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: { isControl($0) || isInvisible($0) || $0 == "\\" }) else { return value }
        var result = ""
        for scalar in value.unicodeScalars {
            if isControl(scalar) {
                let hex = String(scalar.value, radix: 16)
                result += "\\x" + (hex.count < 2 ? "0" : "") + hex
            } else if isInvisible(scalar) {
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else if scalar == "\\" {
                result += "\\\\"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// C0, DEL and C1: written `\xNN`.
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) }

    /// An invisible format or separator character (above C1): written `\u{NNNN}`.
    private static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        guard scalar.value >= 0xa0 else { return false }
        switch scalar.properties.generalCategory {
        case .format, .lineSeparator, .paragraphSeparator: return true
        default: return false
        }
    }
}

extension Array where Element == TextColumn {
    /// The header line.
    public var header: String { row(map(\.title)) }

    /// One row, the values in column order.
    public func row(_ values: [String]) -> String {
        zip(self, values).map { $0.format($1) }.joined(separator: " ")
    }
}
