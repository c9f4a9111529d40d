import NetEventsTesting
import TCPEvent
import XCTest

/// Random and mutated TCP samples (``SampleFuzzer``), through the kind's decoder and through
/// a monitor on a mock source: nothing crashes, every sample is decoded or refused as malformed,
/// the monitor counts each refused one, and every event's JSON line parses with no raw control
/// character.
final class TCPDecoderFuzzTests: XCTestCase {
    /// A sample of each kind, an IPv6 one, and one with a hostile name.
    static var validSamples: [[UInt8]] {
        var samples = TCPConnectionEvent.Kind.allCases.compactMap { TCPSample(kind: $0)?.bytes }
        var ipv6 = TCPSample()
        ipv6.family = 10
        ipv6.saddr = Array(repeating: 0, count: 15) + [1]
        ipv6.daddr = Array(repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 7]
        ipv6.comm = "ev\"il\n\u{1B}[31mX"
        samples.append(ipv6.bytes)
        return samples
    }

    func testEverySampleIsDecodedOrCountedMalformed() throws {
        var fuzzer = SampleFuzzer(seed: 0x7C95_0001, valid: Self.validSamples)
        let report = try fuzzer.run(TCPKind.self, count: 40_000)
        XCTAssertEqual(report.problems, [], "TCP fuzz: \(report)")
    }
}
