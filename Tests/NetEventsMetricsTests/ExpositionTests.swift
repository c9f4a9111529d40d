import XCTest

/// The tests' exposition parser: the hostile-name test proves escaping only if the parser refuses
/// what a Prometheus server would.
final class ExpositionTests: XCTestCase {
    let header = "# HELP m_total Help.\n# TYPE m_total counter\n"

    func testReadsEscapedLabelValues() throws {
        let exposition = try Exposition(header + #"m_total{a="q\"b\\s\nn",b=""} 2"# + "\n")
        XCTAssertEqual(exposition["m_total", ["a": "q\"b\\s\nn", "b": ""]], 2)
        XCTAssertEqual(exposition.types, ["m_total": "counter"])
    }

    func testRefusesWhatAServerWould() {
        for body in [
            #"m_total{a="q"b"} 1"#,  // unescaped quote
            "m_total{a=\"line\nfeed\"} 1",  // raw line feed
            #"m_total{a="\t"} 1"#,  // no such escape
            #"m_total{a="x"} 1"# + "\n" + #"m_total{a="x"} 2"#,  // one series twice
            "other_total 1",  // no declared family
            "m_total{a=\"x\"}",  // no value
            "m_total{a=x} 1",  // unquoted
        ] {
            XCTAssertThrowsError(try Exposition(header + body + "\n"), body.debugDescription)
        }
    }
}
