import DNSEvent
import NetEventsCore
import NetEventsTesting
import XCTest

/// Every parse of random and mutated messages returns or throws, never crashes or hangs, and what
/// it returns keeps the parser's promises.
final class DNSFuzzTests: XCTestCase {
    struct Outcomes: CustomStringConvertible {
        var parsed = 0
        var incomplete = 0
        var thrown = 0
        var violations: [String] = []

        var description: String {
            "\(parsed + thrown) inputs, \(parsed) parsed (\(incomplete) with incomplete answers), \(thrown) thrown"
        }

        mutating func parse(_ bytes: [UInt8]) {
            do throws(DNSParseError) {
                let message = try DNSMessage(parsing: bytes)
                parsed += 1
                if message.answersIncomplete { incomplete += 1 }
                if let violation = DNSFuzzTests.violation(message, length: bytes.count), violations.count < 5 {
                    violations.append("\(violation) in \(bytes)")
                }
            } catch {
                thrown += 1
            }
        }
    }

    static let iterations = 20_000
    static let headerSize = 12

    /// The first promise `message` breaks, nil when it keeps them all.
    static func violation(_ message: DNSMessage, length: Int) -> String? {
        var names = message.questions.map(\.name) + message.answers.map(\.name)
        for record in message.answers {
            if case .name(let name) = record.data { names.append(name) }
        }
        for name in names {
            // Printable ASCII only: spaces, control characters and other bytes are escaped.
            if name.isEmpty || !name.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) { return "unescaped name \(name.debugDescription)" }
            if name.utf8.count > 255 * 4 { return "name of \(name.utf8.count) characters" }
        }
        // Nothing is made from a header's count: a question takes 5 bytes at least, a record 11.
        if message.questions.count * 5 > length { return "\(message.questions.count) questions in \(length) bytes" }
        if message.answers.count * 11 > length { return "\(message.answers.count) answers in \(length) bytes" }
        if message.answerAddresses.count > message.answers.count { return "more addresses than answers" }
        for record in message.answers {
            switch record.data {
            case .address(.v4) where record.type == .a, .address(.v6) where record.type == .aaaa: break
            case .address: return "address in a \(record.type) record"
            case .other(let dataLength) where dataLength > length: return "data of \(dataLength) bytes in \(length)"
            case .name, .other: break
            }
        }
        if message.responseCode.rawValue > 0xFFF { return "response code \(message.responseCode.rawValue)" }
        return nil
    }

    /// Valid messages to mutate: queries and responses with compression, escapes, EDNS.
    static func seeds() -> [[UInt8]] {
        var query = PacketBuilder(id: 1, flags: 0x0100, questions: 1, additional: 1)
        query.question(.text("web.test"), type: .aaaa)
        query.opt(extendedCode: 0)

        var response = PacketBuilder(id: 2, flags: 0x8180, questions: 1, answers: 4)
        response.question(.text("www.example.test"))
        response.record(.pointer(12), type: .cname, data: WireName.prefix("edge", pointer: 16).bytes)
        let target = response.offset - 7
        response.record(.pointer(target), type: .a, data: [192, 0, 2, 1])
        response.record(.pointer(target), type: .a, data: [192, 0, 2, 2])
        response.record(.pointer(target), type: .aaaa, data: [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [1])

        var nameError = PacketBuilder(id: 3, flags: 0x8183, questions: 1, authority: 1, additional: 1)
        nameError.question(.text("missing.example.test"))
        nameError.record(.pointer(20), type: .soa, data: WireName.prefix("ns", pointer: 20).bytes + Array(repeating: 7, count: 22))
        nameError.opt(extendedCode: 1)

        var mixed = PacketBuilder(id: 4, flags: 0x8580, questions: 2, answers: 4, additional: 1)
        mixed.question(.labels([[0x01, 0x2E, 0x5C, 0x20], Array("1.0.0.127.in-addr".utf8), Array("arpa".utf8)]), type: .ptr)
        let second = mixed.offset
        mixed.question(.text("mail.test"), type: .mx)
        mixed.record(.pointer(12), type: .ptr, data: WireName.text("localhost").bytes)
        mixed.record(.pointer(second), type: .mx, data: [0, 10] + WireName.prefix("mx", pointer: second).bytes)
        mixed.record(.pointer(second), type: .https, data: [0, 1, 0])
        mixed.record(.prefix("x", pointer: second), type: .a, data: [10, 1, 2, 3])
        mixed.opt(extendedCode: 2)

        return [query.bytes, response.bytes, nameError.bytes, mixed.bytes]
    }

    /// One to four random edits of `seed`: bit flips, bytes set to the values names depend on,
    /// pointers planted, cuts, insertions, removals and duplicated regions.
    static func mutate(_ seed: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = seed
        for _ in 0...random.below(4) {
            let position = random.below(bytes.count + 1)
            switch random.below(7) {
            case 0 where position < bytes.count:
                bytes[position] ^= 1 << UInt8(random.below(8))
            case 1 where position < bytes.count:
                bytes[position] = [0xC0, 0x3F, 0xFF, 0x00, 0x40, 0x80][random.below(6)]
            case 2 where position + 1 < bytes.count:
                let target = random.below(bytes.count)
                bytes[position] = 0xC0 | UInt8(target >> 8)
                bytes[position + 1] = UInt8(target & 0xFF)
            case 3:
                bytes.removeSubrange(position...)
            case 4:
                bytes.insert(contentsOf: random.bytes(1 + random.below(4)), at: position)
            case 5:
                bytes.removeSubrange(position..<min(bytes.count, position + 1 + random.below(4)))
            case 6:
                let start = random.below(bytes.count + 1)
                let region = bytes[start..<min(bytes.count, start + random.below(32))]
                bytes.insert(contentsOf: region, at: position)
            default:
                break
            }
        }
        return bytes
    }

    func testRandomBytes() {
        var random = SplitMix64(state: 0x0D45_F022)
        var outcomes = Outcomes()
        let start = ContinuousClock.now
        for index in 0..<Self.iterations {
            var bytes = random.bytes(random.below(601))
            // Every other input gets at most one question and counts below 256, or nearly all
            // would stop at the question count.
            if index.isMultiple(of: 2), bytes.count >= Self.headerSize {
                bytes[4] = 0
                bytes[5] &= 1
                bytes[6] = 0
                bytes[8] = 0
                bytes[10] = 0
            }
            outcomes.parse(bytes)
        }
        print("DNS fuzz, random bytes: \(outcomes) in \(ContinuousClock.now - start)")
        XCTAssertEqual(outcomes.violations, [])
        XCTAssertEqual(outcomes.parsed + outcomes.thrown, Self.iterations)
    }

    func testMutatedMessages() throws {
        let seeds = Self.seeds()
        for seed in seeds {
            let message = try DNSMessage(parsing: seed)
            XCTAssertFalse(message.answersIncomplete, "seed \(seed)")
            XCTAssertNil(Self.violation(message, length: seed.count), "seed \(seed)")
        }
        var random = SplitMix64(state: 0x5EED_D115)
        var outcomes = Outcomes()
        let start = ContinuousClock.now
        for _ in 0..<Self.iterations {
            outcomes.parse(Self.mutate(seeds[random.below(seeds.count)], &random))
        }
        print("DNS fuzz, mutated messages: \(outcomes) in \(ContinuousClock.now - start)")
        XCTAssertEqual(outcomes.violations, [])
        XCTAssertGreaterThan(outcomes.parsed, 0)
        XCTAssertGreaterThan(outcomes.thrown, 0)
        XCTAssertGreaterThan(outcomes.incomplete, 0)
    }
}
