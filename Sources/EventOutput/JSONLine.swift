/// Builds one JSON object on one line, keys in the order written. The examples print thousands of
/// these a second, so this appends to a string instead of going through `JSONEncoder`.
public struct JSONLine {
    private var text = "{"
    private var first = true

    public init() {}

    private mutating func key(_ name: String) {
        if !first { text += "," }
        first = false
        text += "\"\(name)\":"
    }

    public mutating func add(_ name: String, _ value: some BinaryInteger) {
        key(name)
        text += String(value)
    }

    public mutating func add(_ name: String, _ value: String) {
        key(name)
        text += JSONLine.quoted(value)
    }

    /// Adds `null` for nil.
    public mutating func add(_ name: String, _ value: UInt64?) {
        key(name)
        text += value.map { String($0) } ?? "null"
    }

    /// The finished object.
    public var line: String { text + "}" }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    public static func quoted(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
