import NetEventsMetrics
import XCTest

/// One series of the exposition: a metric name and its labels (order-free, values unescaped).
struct Series: Hashable, CustomStringConvertible {
    var name: String
    var labels: [String: String]

    init(_ name: String, _ labels: [String: String] = [:]) {
        self.name = name
        self.labels = labels
    }

    /// As an exposition line writes it, labels sorted: for failure messages.
    var description: String {
        guard !labels.isEmpty else { return name }
        let escaped = labels.sorted { $0.key < $1.key }.map { key, value in
            let text = value.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
            return "\(key)=\"\(text)\""
        }
        return "\(name){\(escaped.joined(separator: ","))}"
    }
}

/// The registry's text exposition, parsed strictly into `series -> value`: a test that reads its
/// values also proves the text is one a Prometheus server accepts (every label value quoted and
/// escaped, every sample of a declared family, no series twice, nothing stray).
struct Exposition {
    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var text: String
        var reason: String
        var description: String { "exposition line \(line) (\(reason)): \(text.debugDescription)" }
    }

    private(set) var values: [Series: Double] = [:]
    /// Each family's `# TYPE`.
    private(set) var types: [String: String] = [:]
    /// Each family's `# HELP`, as written (escaped).
    private(set) var help: [String: String] = [:]

    init(_ text: String) throws {
        // The format ends every line with a line feed; a raw one inside a label value would split it.
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            do {
                try parse(String(line))
            } catch {
                throw ParseError(line: index + 1, text: String(line), reason: error.reason)
            }
        }
    }

    /// The value of one series, nil when the exposition has no such series.
    subscript(_ name: String, _ labels: [String: String] = [:]) -> Double? { values[Series(name, labels)] }

    /// The sum over every series of `name` whose labels include `matching`.
    func total(_ name: String, matching: [String: String] = [:]) -> Double {
        values.filter { series, _ in
            series.name == name && matching.allSatisfy { series.labels[$0.key] == $0.value }
        }.values.reduce(0, +)
    }

    /// The series of `name`, whatever their labels.
    func series(named name: String) -> [Series] { values.keys.filter { $0.name == name } }

    /// Why a line does not parse.
    private struct Invalid: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    private mutating func parse(_ line: String) throws(Invalid) {
        if line.isEmpty { return }
        if line.hasPrefix("#") {
            let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 3, parts[0] == "#", Self.isMetricName(parts[2]) else { throw Invalid("comment") }
            switch parts[1] {
            case "TYPE":
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                    throw Invalid("type")
                }
                guard types.updateValue(parts[3], forKey: parts[2]) == nil else { throw Invalid("family declared twice") }
            case "HELP":
                help[parts[2]] = parts.count == 4 ? parts[3] : ""
            default:
                throw Invalid("comment")
            }
            return
        }
        var scanner = Scanner(line)
        let name = scanner.take { $0 != "{" && $0 != " " }
        guard Self.isMetricName(name) else { throw Invalid("metric name") }
        var labels: [String: String] = [:]
        if scanner.skip("{") {
            while !scanner.skip("}") {
                let label = scanner.take { $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
                guard !label.isEmpty, scanner.skip("="), scanner.skip("\"") else { throw Invalid("label") }
                var value = ""
                while true {
                    guard let scalar = scanner.next() else { throw Invalid("unterminated label value") }
                    if scalar == "\"" { break }
                    if scalar == "\\" {
                        switch scanner.next() {
                        case "\\": value.unicodeScalars.append("\\")
                        case "\"": value.unicodeScalars.append("\"")
                        case "n": value.unicodeScalars.append("\n")
                        default: throw Invalid("escape")
                        }
                    } else {
                        value.unicodeScalars.append(scalar)
                    }
                }
                guard labels.updateValue(value, forKey: label) == nil else { throw Invalid("label given twice") }
                if !scanner.skip(",") && scanner.peek() != "}" { throw Invalid("label separator") }
            }
        }
        guard scanner.skip(" "), let value = Double(scanner.rest), !scanner.rest.contains(" ") else { throw Invalid("value") }
        guard let family = family(of: name) else { throw Invalid("sample of no declared family") }
        if types[family] == "histogram", name.hasSuffix("_bucket"), labels["le"] == nil { throw Invalid("bucket without le") }
        guard values.updateValue(value, forKey: Series(name, labels)) == nil else { throw Invalid("series given twice") }
    }

    /// The declared family a sample belongs to: its own name, or a histogram's `_bucket`, `_sum`, `_count`.
    private func family(of name: String) -> String? {
        if types[name] != nil { return name }
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if types[base] == "histogram" || types[base] == "summary" { return base }
        }
        return nil
    }

    private static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy {
            $0 == "_" || $0 == ":" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
        }
    }

    /// Reads a line scalar by scalar.
    private struct Scanner {
        private let scalars: [Unicode.Scalar]
        private var index = 0
        init(_ line: String) { scalars = Array(line.unicodeScalars) }

        func peek() -> Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }
        mutating func next() -> Unicode.Scalar? {
            defer { index += 1 }
            return peek()
        }
        mutating func skip(_ scalar: Unicode.Scalar) -> Bool {
            guard peek() == scalar else { return false }
            index += 1
            return true
        }
        mutating func take(while accepted: (Unicode.Scalar) -> Bool) -> String {
            var text = String.UnicodeScalarView()
            while let scalar = peek(), accepted(scalar) {
                text.append(scalar)
                index += 1
            }
            return String(text)
        }
        var rest: String {
            var text = String.UnicodeScalarView()
            text.append(contentsOf: scalars[min(index, scalars.count)...])
            return String(text)
        }
    }
}

extension NetworkMetrics {
    /// The registry's exposition, parsed (failing the test when it does not parse).
    func exposition(file: StaticString = #filePath, line: UInt = #line) throws -> Exposition {
        do {
            return try Exposition(registry.emitToString())
        } catch {
            XCTFail("\(error)", file: file, line: line)
            throw error
        }
    }
}
