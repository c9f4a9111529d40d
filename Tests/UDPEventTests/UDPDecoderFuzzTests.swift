import NetEventsTesting
import UDPEvent
import XCTest

/// Random and mutated UDP samples (``SampleFuzzer``), through the kind's decoder and through
/// a monitor on a mock source: nothing crashes, every sample is decoded or refused as malformed,
/// the monitor counts each refused one, and every event's JSON line parses with no raw control
/// character.
final class UDPDecoderFuzzTests: XCTestCase {
    /// A close sample, an IPv6 one with a peer, one with a hostile name, and a flush request.
    static var validSamples: [[UInt8]] {
        var ipv6 = UDPCloseSample()
        ipv6.family = 10
        ipv6.saddr = Array(repeating: 0, count: 15) + [1]
        ipv6.daddr = Array(repeating: 0, count: 15) + [1]
        ipv6.peerFamily = 10
        var hostile = UDPCloseSample()
        hostile.comm = "ev\"il\n\u{1B}[31mX"
        return [UDPCloseSample().bytes, ipv6.bytes, hostile.bytes, UDPCloseSample.flush(socket: 7, close: 9)]
    }

    func testEverySampleIsDecodedOrCountedMalformed() throws {
        var fuzzer = SampleFuzzer(seed: 0x0D95_0002, valid: Self.validSamples)
        let report = try fuzzer.run(UDPKind.self, count: 40_000)
        XCTAssertEqual(report.problems, [], "UDP fuzz: \(report)")
    }
}
