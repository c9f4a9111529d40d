import XCTest
@testable import NetEventsCore

final class ProgramPlanTests: XCTestCase {
    func plan(_ text: String, headers: [String: String]) -> ProgramPlan {
        var plan = ProgramPlan(offsetSource: .headers, transport: .perfBuffer)
        plan.text = text
        plan.headers = headers
        return plan
    }

    func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    func testAKnownHeaderIsExpandedOnceEvenIfIncludedTwice() {
        let expanded = plan(
            """
            #include "a.h"
            int before;
            #include "a.h"
              #include "a.h"
            \t#include "a.h"
            int after;
            """,
            headers: ["a.h": "#define A 1\nstruct a { int x; };"]
        ).expandedText()
        XCTAssertEqual(count("#define A 1", in: expanded), 1, expanded)
        XCTAssertEqual(count("struct a { int x; };", in: expanded), 1, expanded)
        XCTAssertEqual(count("#include", in: expanded), 0, "indented includes of a known header go too: \(expanded)")
        let a = expanded.range(of: "#define A 1")!.lowerBound
        let before = expanded.range(of: "int before;")!.lowerBound
        let after = expanded.range(of: "int after;")!.lowerBound
        XCTAssertTrue(a < before && before < after, "the header takes the place of its first include: \(expanded)")
    }

    func testUnknownIncludesAreLeftAsTheyAre() {
        let text = """
            #include "missing.h"
            #include <linux/sched.h>
            #include "a.h"
            #include <a.h>
            int x;
            """
        let expanded = plan(text, headers: ["a.h": "int a;"]).expandedText()
        XCTAssertTrue(expanded.contains("#include \"missing.h\"\n"), expanded)
        XCTAssertTrue(expanded.contains("#include <linux/sched.h>\n"), expanded)
        XCTAssertTrue(expanded.contains("#include <a.h>\n"), "an angle-bracket include is the system's, even of a known name")
        XCTAssertFalse(expanded.contains("#include \"a.h\""), expanded)
        XCTAssertEqual(count("int a;", in: expanded), 1)
        XCTAssertTrue(expanded.contains("int x;"))
    }

    func testNestedIncludesExpandInPlaceAndOnceAcrossHeaders() {
        let expanded = plan(
            """
            #include "outer.h"
            #include "inner.h"
            int program;
            """,
            headers: [
                "outer.h": "int outer_start;\n#include \"inner.h\"\nint outer_end;",
                "inner.h": "#include \"common.h\"\nint inner;",
                "common.h": "int common;\n#include \"common.h\"",  // includes itself: no loop
            ]
        ).expandedText()
        for line in ["int outer_start;", "int outer_end;", "int inner;", "int common;", "int program;"] {
            XCTAssertEqual(count(line, in: expanded), 1, "\(line) in \(expanded)")
        }
        XCTAssertFalse(expanded.contains("#include"), expanded)
        let order = ["int outer_start;", "int common;", "int inner;", "int outer_end;", "int program;"].map {
            expanded.range(of: $0)!.lowerBound
        }
        XCTAssertEqual(order, order.sorted(), "nested headers expand where they are included: \(expanded)")
    }

    func testATextWithoutIncludesIsUnchanged() {
        let text = "int a;\n\n#define B 2\nint c;"
        XCTAssertEqual(plan(text, headers: ["b.h": "int b;"]).expandedText(), text + "\n")
        XCTAssertEqual(plan(text, headers: [:]).expandedText(), text + "\n")
    }

    /// The program headers every kind includes are embedded and complete: expanding a kind's
    /// program leaves no quoted include behind.
    func testTheEmbeddedContractHeadersIncludeEachOther() {
        let expanded = plan(
            "#include \"netevents_abi.h\"\n#include \"tcp_events_abi.h\"\nint program;",
            headers: [
                "netevents_abi.h": "#include \"tcp_events_abi.h\"\n#include \"udp_events_abi.h\"",
                "tcp_events_abi.h": "#include \"netevents_common.h\"\nstruct ne_tcp_event;",
                "udp_events_abi.h": "#include \"netevents_common.h\"\nstruct ne_udp_flow;",
                "netevents_common.h": "#define NE_COMM_LEN 16",
            ]
        ).expandedText()
        XCTAssertEqual(count("#define NE_COMM_LEN 16", in: expanded), 1)
        XCTAssertEqual(count("struct ne_tcp_event;", in: expanded), 1)
        XCTAssertEqual(count("struct ne_udp_flow;", in: expanded), 1)
        XCTAssertFalse(expanded.contains("#include"))
    }

    func testOptionalOffsetsFromHeadersNeedNoLookup() {
        var plan = ProgramPlan(offsetSource: .headers, transport: .ringBuffer)
        XCTAssertTrue(plan.addOptionalOffsets([.init("OFF_NOWHERE", "no_such_struct.member", size: 4)], for: "a feature"))
        XCTAssertEqual(plan.flags, [], "offsetof in the headers: nothing to pass")
        XCTAssertEqual(plan.notes, [])
        XCTAssertEqual(plan.offsetSource, .headers)
        XCTAssertEqual(plan.transport, .ringBuffer)
    }

    func testOptionalOffsetsMissingFromBTFTurnTheFeatureOffWithANote() throws {
        guard KernelFeatures.shared.btf.isYes else { throw XCTSkip("this kernel has no BTF") }
        var plan = ProgramPlan(offsetSource: .btf, transport: .ringBuffer)
        XCTAssertFalse(plan.addOptionalOffsets([.init("OFF_NOWHERE", "no_such_struct_xyz.member", size: 4)], for: "a feature"))
        XCTAssertEqual(plan.flags, [])
        XCTAssertEqual(plan.notes.count, 1)
        XCTAssertTrue(plan.notes.first?.hasPrefix("a feature off: ") ?? false, "\(plan.notes)")

        XCTAssertTrue(plan.addOptionalOffsets([.init("OFF_SKC_FAMILY", "sock.__sk_common.skc_family", size: 2)], for: "family"))
        XCTAssertEqual(plan.flags.count, 1)
        XCTAssertTrue(plan.flags.first?.hasPrefix("-DOFF_SKC_FAMILY=") ?? false, "\(plan.flags)")
    }
}
