/// Left- or right-aligns columns of a human table.
public struct TextColumn: Sendable {
    public var title: String
    public var width: Int
    public var rightAligned: Bool

    public init(_ title: String, width: Int, rightAligned: Bool = false) {
        self.title = title
        self.width = width
        self.rightAligned = rightAligned
    }

    public func format(_ value: String) -> String {
        let padding = String(repeating: " ", count: max(0, width - value.count))
        return rightAligned ? padding + value : value + padding
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
