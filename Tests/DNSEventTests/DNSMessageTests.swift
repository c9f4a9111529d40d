import DNSEvent
import NetEventsCore
import XCTest

/// A name as a test writes it on the wire.
enum WireName {
    /// Dot-separated labels then the root ("." alone is the root).
    case text(String)
    /// A compression pointer to an offset.
    case pointer(Int)
    /// Labels then a compression pointer to the rest of the name.
    case prefix(String, pointer: Int)
    /// Labels of raw bytes (any byte, any length up to 255) then the root.
    case labels([[UInt8]])

    var bytes: [UInt8] {
        switch self {
        case .text("."): return [0]
        case .text(let text): return Self.labels(text) + [0]
        case .pointer(let offset): return Self.pointer(offset)
        case .prefix(let text, let offset): return Self.labels(text) + Self.pointer(offset)
        case .labels(let labels): return labels.flatMap { [UInt8($0.count)] + $0 } + [0]
        }
    }

    private static func labels(_ text: String) -> [UInt8] {
        text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
    }

    private static func pointer(_ offset: Int) -> [UInt8] {
        [0xC0 | UInt8(offset >> 8), UInt8(offset & 0xFF)]
    }
}

/// Writes DNS messages byte by byte: a header, then questions and records in order. The caller
/// sets the header's counts, so a test can make them disagree with the records written.
struct PacketBuilder {
    var bytes: [UInt8] = []

    /// The offset the next write lands at, for compression pointers.
    var offset: Int { bytes.count }

    init(
        id: UInt16 = 0x1234, flags: UInt16 = 0, questions: UInt16 = 0, answers: UInt16 = 0, authority: UInt16 = 0,
        additional: UInt16 = 0
    ) {
        for field in [id, flags, questions, answers, authority, additional] {
            u16(field)
        }
    }

    mutating func u16(_ value: UInt16) {
        bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
    }

    mutating func u32(_ value: UInt32) {
        u16(UInt16(value >> 16))
        u16(UInt16(value & 0xFFFF))
    }

    mutating func name(_ name: WireName) {
        bytes += name.bytes
    }

    mutating func question(_ name: WireName, type: DNSRecordType = .a, recordClass: UInt16 = 1) {
        self.name(name)
        u16(type.rawValue)
        u16(recordClass)
    }

    mutating func record(_ name: WireName, type: DNSRecordType, recordClass: UInt16 = 1, ttl: UInt32 = 300, data: [UInt8]) {
        self.name(name)
        u16(type.rawValue)
        u16(recordClass)
        u32(ttl)
        u16(UInt16(data.count))
        bytes += data
    }

    /// An EDNS OPT record: the upper 8 bits of the response code in the top byte of the TTL.
    mutating func opt(extendedCode: UInt8, udpSize: UInt16 = 1232) {
        record(.text("."), type: .opt, recordClass: udpSize, ttl: UInt32(extendedCode) << 24, data: [])
    }
}

final class DNSMessageTests: XCTestCase {
    func parse(_ packet: PacketBuilder) throws -> DNSMessage {
        try DNSMessage(parsing: packet.bytes)
    }

    /// Asserts that parsing throws `expected`.
    func assertThrows(_ bytes: [UInt8], _ expected: DNSParseError, file: StaticString = #filePath, line: UInt = #line) {
        do throws(DNSParseError) {
            let message = try DNSMessage(parsing: bytes)
            XCTFail("parsed \(message), expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }

    /// The header's flags that are set, by their RFC 1035 names (as `dig` shows them).
    func flags(_ message: DNSMessage) -> [String] {
        let bits = [
            ("qr", message.isResponse), ("aa", message.isAuthoritative), ("tc", message.isTruncated),
            ("rd", message.recursionDesired), ("ra", message.recursionAvailable),
        ]
        return bits.filter { $0.1 }.map { $0.0 }
    }

    /// A question for `web.test` A, then whatever the test adds.
    func queryForWebTest(flags: UInt16 = 0x0100, questions: UInt16 = 1, answers: UInt16 = 0) -> PacketBuilder {
        var packet = PacketBuilder(id: 0xBEEF, flags: flags, questions: questions, answers: answers)
        packet.question(.text("web.test"))
        return packet
    }

    // MARK: Messages

    func testQuery() throws {
        let message = try parse(queryForWebTest())
        XCTAssertEqual(message.id, 0xBEEF)
        XCTAssertEqual(flags(message), ["rd"])
        XCTAssertEqual(message.opcode, 0)
        XCTAssertEqual(message.responseCode, .noError)
        XCTAssertEqual(message.questions, [DNSQuestion(name: "web.test", type: .a, recordClass: 1)])
        XCTAssertEqual(message.answers, [])
        XCTAssertFalse(message.answersIncomplete)
        XCTAssertEqual(message.answerAddresses, [])
    }

    func testHeaderFlags() throws {
        // QR, opcode 2 (STATUS), AA, TC, RA, rcode 5.
        let message = try parse(PacketBuilder(flags: 0x8000 | 2 << 11 | 0x0400 | 0x0200 | 0x0080 | 5))
        XCTAssertEqual(flags(message), ["qr", "aa", "tc", "ra"])
        XCTAssertEqual(message.opcode, 2)
        XCTAssertEqual(message.responseCode, .refused)
        XCTAssertEqual(message.questions, [])
    }

    func testResponseWithCNAMEAndAddresses() throws {
        var packet = PacketBuilder(id: 7, flags: 0x8180, questions: 1, answers: 4)
        let questionName = packet.offset
        packet.question(.text("www.example.test"))
        packet.record(.pointer(questionName), type: .cname, ttl: 60, data: WireName.prefix("edge", pointer: questionName + 4).bytes)
        let target = packet.offset - 7  // the CNAME's data: "edge" then a pointer to "example.test"
        packet.record(.pointer(target), type: .a, ttl: 30, data: [192, 0, 2, 1])
        packet.record(.pointer(target), type: .a, ttl: 30, data: [192, 0, 2, 2])
        packet.record(.pointer(target), type: .aaaa, ttl: 30, data: [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [1])

        let message = try parse(packet)
        XCTAssertEqual(flags(message), ["qr", "rd", "ra"])
        XCTAssertEqual(message.questions.map(\.name), ["www.example.test"])
        XCTAssertFalse(message.answersIncomplete)
        XCTAssertEqual(message.answers.count, 4)
        let cname = DNSRecord(name: "www.example.test", type: .cname, recordClass: 1, ttl: 60, data: .name("edge.example.test"))
        let firstAddress = DNSRecord(name: "edge.example.test", type: .a, recordClass: 1, ttl: 30, data: .address(.v4(192, 0, 2, 1)))
        XCTAssertEqual(message.answers[0], cname)
        XCTAssertEqual(message.answers[1], firstAddress)
        XCTAssertEqual(message.answers.map(\.name), ["www.example.test"] + Array(repeating: "edge.example.test", count: 3))
        XCTAssertEqual(message.answers.map(\.type), [.cname, .a, .a, .aaaa])
        XCTAssertEqual(message.answerAddresses.map(\.description), ["192.0.2.1", "192.0.2.2", "2001:db8::1"])
    }

    func testAddressOfTheWrongLengthIsOtherData() throws {
        var packet = queryForWebTest(flags: 0x8180, answers: 3)
        packet.record(.pointer(12), type: .a, data: [192, 0, 2, 1, 9])
        packet.record(.pointer(12), type: .aaaa, data: [192, 0, 2, 1])
        packet.record(.pointer(12), type: .txt, data: [3, 0x61, 0x62, 0x63])
        let message = try parse(packet)
        XCTAssertEqual(message.answers.map(\.data), [.other(length: 5), .other(length: 4), .other(length: 4)])
        XCTAssertEqual(message.answerAddresses, [])
        XCTAssertFalse(message.answersIncomplete)
    }

    func testNameErrorWithAnSOAInTheAuthoritySection() throws {
        var packet = PacketBuilder(flags: 0x8183, questions: 1, authority: 1)
        packet.question(.text("missing.test"))
        packet.record(.pointer(12 + 8), type: .soa, data: Array(repeating: 0, count: 22))
        let message = try parse(packet)
        XCTAssertEqual(message.responseCode, .nameError)
        XCTAssertEqual(message.responseCode.description, "NXDOMAIN")
        XCTAssertEqual(message.answers, [])
        XCTAssertFalse(message.answersIncomplete)
    }

    func testExtendedResponseCodeFromTheOPTRecord() throws {
        var packet = PacketBuilder(flags: 0x8000, questions: 1, answers: 1, authority: 1, additional: 2)
        packet.question(.text("web.test"))
        packet.record(.pointer(12), type: .a, data: [10, 0, 0, 1])
        packet.record(.text("test"), type: .ns, data: WireName.text("ns.test").bytes)
        packet.record(.pointer(12), type: .a, data: [10, 0, 0, 2])  // glue, before the OPT record
        packet.opt(extendedCode: 1)
        let message = try parse(packet)
        XCTAssertEqual(message.responseCode, .badVersion)
        XCTAssertEqual(message.responseCode.rawValue, 16)
        XCTAssertEqual(message.responseCode.description, "BADVERS")
        XCTAssertEqual(message.answerAddresses, [.v4(10, 0, 0, 1)], "only the answer section's")
    }

    func testOPTRecordExtendsTheHeadersCode() throws {
        var packet = PacketBuilder(flags: 0x8000 | 7, questions: 1, additional: 1)  // 1 << 4 | 7 = 23, BADCOOKIE
        packet.question(.text("web.test"))
        packet.opt(extendedCode: 1)
        XCTAssertEqual(try parse(packet).responseCode, .badCookie)
    }

    func testUnreadableAdditionalSectionLeavesTheHeadersCode() throws {
        var packet = PacketBuilder(flags: 0x8003, questions: 1, additional: 2)
        packet.question(.text("web.test"))
        packet.opt(extendedCode: 1)
        packet.bytes.removeLast()  // the OPT record is cut short
        XCTAssertEqual(try parse(packet).responseCode, .nameError)

        var unreachable = PacketBuilder(flags: 0x8003, questions: 1, answers: 2, additional: 1)
        unreachable.question(.text("web.test"))
        unreachable.record(.pointer(12), type: .a, data: [10, 0, 0, 1])
        unreachable.opt(extendedCode: 1)  // read as the second answer, which is not an A record
        let message = try parse(unreachable)
        XCTAssertEqual(message.responseCode, .nameError)
        XCTAssertEqual(message.answers.count, 2)
    }

    func testTruncatedAnswerKeepsTheAnswersBefore() throws {
        var packet = queryForWebTest(flags: 0x8180, answers: 3)
        for last in 1...3 {
            packet.record(.pointer(12), type: .a, data: [192, 0, 2, UInt8(last)])
        }
        for cut in 1...15 {  // a record with a 2-byte name is 16 bytes long
            let message = try DNSMessage(parsing: Array(packet.bytes.dropLast(cut)))
            XCTAssertTrue(message.answersIncomplete, "cut \(cut)")
            XCTAssertEqual(message.answerAddresses, [.v4(192, 0, 2, 1), .v4(192, 0, 2, 2)], "cut \(cut)")
        }
        var moreThanWritten = queryForWebTest(flags: 0x8180, answers: 60_000)
        moreThanWritten.record(.pointer(12), type: .a, data: [192, 0, 2, 1])
        let message = try parse(moreThanWritten)
        XCTAssertTrue(message.answersIncomplete)
        XCTAssertEqual(message.answerAddresses, [.v4(192, 0, 2, 1)])
    }

    func testMalformedNameInAnAnswerStopsTheAnswers() throws {
        var packet = queryForWebTest(flags: 0x8180, answers: 3)
        packet.record(.pointer(12), type: .a, data: [192, 0, 2, 1])
        // A CNAME whose data holds more than its name.
        packet.record(.pointer(12), type: .cname, data: WireName.text("other.test").bytes + [0])
        packet.record(.pointer(12), type: .a, data: [192, 0, 2, 3])
        let message = try parse(packet)
        XCTAssertTrue(message.answersIncomplete)
        XCTAssertEqual(message.answers.count, 1)
    }

    // MARK: Names

    func testEscapesInLabels() throws {
        var packet = PacketBuilder(questions: 1)
        let labels: [[UInt8]] = [
            Array("a\u{1}b".utf8), Array("c.d".utf8), Array("e\\f".utf8), Array("sp ace".utf8), [0x7F, 0xFF, 0x21, 0x7E],
        ]
        packet.question(.labels(labels))
        let name = try parse(packet).questions[0].name
        XCTAssertEqual(name, #"a\001b.c\.d.e\\f.sp\032ace.\127\255!~"#)
        XCTAssertFalse(name.unicodeScalars.contains { $0.value < 0x20 || $0.value >= 0x7F })
    }

    func testRootName() throws {
        var packet = PacketBuilder(questions: 1)
        packet.question(.text("."), type: .ns)
        XCTAssertEqual(try parse(packet).questions, [DNSQuestion(name: ".", type: .ns, recordClass: 1)])
    }

    func testLabelsOf63BytesAndNamesOf255() throws {
        let label63 = [UInt8](repeating: 0x61, count: 63)
        // 3 labels of 1 + 63 bytes, one of 1 + 61, the root: 255 bytes.
        var longest = PacketBuilder(questions: 1)
        longest.question(.labels([label63, label63, label63, Array(label63.prefix(61))]))
        XCTAssertEqual(try parse(longest).questions[0].name.utf8.count, 253)

        var tooLong = PacketBuilder(questions: 1)
        tooLong.question(.labels([label63, label63, label63, Array(label63.prefix(62))]))
        assertThrows(tooLong.bytes, .nameTooLong)
    }

    func testNameTooLongThroughPointers() throws {
        // A name of 128 labels "a" (256 bytes) then the root, written as a second question that points into the first.
        let labels = [[UInt8]](repeating: [0x61], count: 127)
        var fits = PacketBuilder(questions: 2)
        fits.question(.labels(labels))  // 255 bytes
        fits.question(.pointer(12 + 2))  // 126 labels: 253 bytes
        XCTAssertEqual(try parse(fits).questions.count, 2)

        var tooLong = PacketBuilder(questions: 2)
        tooLong.question(.labels(Array(labels.prefix(120))))
        tooLong.question(.prefix("b.c.d.e.f.g.h.i", pointer: 12))  // 8 + 120 labels: 257 bytes
        assertThrows(tooLong.bytes, .nameTooLong)
    }

    func testLabelOf64BytesIsABadLabelType() {
        // On the wire, a length byte of 64 has the extended label type's bits: it cannot be a length.
        var packet = PacketBuilder(questions: 1)
        packet.question(.labels([[UInt8](repeating: 0x61, count: 64)]))
        assertThrows(packet.bytes, .badLabelType(0x40))
    }

    func testReservedLabelTypes() {
        for (byte, type) in [(0x41, 0x40), (0x7F, 0x40), (0x80, 0x80), (0xBF, 0x80)] as [(UInt8, UInt8)] {
            var packet = PacketBuilder(questions: 1)
            packet.bytes += [byte, 0, 0, 0, 1, 0, 1]
            assertThrows(packet.bytes, .badLabelType(type))
        }
    }

    func testPointerToItself() {
        var packet = PacketBuilder(questions: 1)
        packet.question(.pointer(12))
        assertThrows(packet.bytes, .pointerLoop)
    }

    func testPointerBackToItsOwnLabels() {
        var packet = PacketBuilder(questions: 1)
        packet.question(.prefix("a.b", pointer: 12))  // points backwards, but at the labels that led to it
        assertThrows(packet.bytes, .pointerLoop)
    }

    func testTwoPointersAtEachOtherThrowAtTheForwardOne() {
        // Read first: a forward pointer at 12 to 14, where a pointer points back to 12.
        var forwardFirst = PacketBuilder(questions: 1)
        forwardFirst.bytes += [0xC0, 14, 0xC0, 12, 0, 1, 0, 1]
        assertThrows(forwardFirst.bytes, .badPointer)

        // Read first: the backward one. The first question's type field (13-14) holds a pointer
        // forward to 17, the second question's name, which points back to 13.
        var backwardFirst = PacketBuilder(questions: 2)
        backwardFirst.bytes += [0, 0xC0, 17, 0, 1]
        backwardFirst.bytes += [0xC0, 13, 0, 1, 0, 1]
        assertThrows(backwardFirst.bytes, .badPointer)
    }

    func testForwardPointerAndPointerIntoTheHeader() {
        var forward = PacketBuilder(questions: 1)
        forward.question(.pointer(18))
        forward.question(.text("web.test"))
        assertThrows(forward.bytes, .badPointer)

        var intoHeader = PacketBuilder(questions: 2)
        intoHeader.question(.text("web.test"))
        intoHeader.question(.pointer(4))
        assertThrows(intoHeader.bytes, .badPointer)
    }

    func testChainOfPointersIsCappedAt128Jumps() throws {
        // Question n's name points at question n-1's: the last of 129 questions follows 128 pointers.
        func chain(_ count: UInt16) -> [UInt8] {
            var packet = PacketBuilder(questions: count)
            packet.question(.text("web.test"))
            var previous = 12
            for _ in 1..<count {
                let here = packet.offset
                packet.question(.pointer(previous))
                previous = here
            }
            return packet.bytes
        }
        let message = try DNSMessage(parsing: chain(129))
        XCTAssertEqual(Set(message.questions.map(\.name)), ["web.test"])
        assertThrows(chain(130), .pointerLoop)
    }

    // MARK: Header and counts

    func testHeaderShorterThan12Bytes() throws {
        for length in 0..<12 {
            assertThrows(Array(repeating: 0, count: length), .truncatedHeader)
        }
        let empty = try DNSMessage(parsing: Array(repeating: 0, count: 12))
        XCTAssertEqual(empty.questions, [])
        XCTAssertEqual(empty.answers, [])
    }

    func testQuestionCountBeyondTheBytesThrowsAtOnce() {
        var packet = queryForWebTest(questions: 65_535)
        packet.bytes += [0xAB]
        let start = ContinuousClock.now
        assertThrows(packet.bytes, .tooManyRecords(65_535))
        XCTAssertLessThan(ContinuousClock.now - start, .milliseconds(100))
    }

    func testMissingSecondQuestionIsTruncated() {
        var packet = queryForWebTest(questions: 2)
        packet.bytes += [5, 0x61, 0x62, 0x63, 0x64, 0x65]  // room for a question, but a name cut short
        assertThrows(packet.bytes, .truncated(section: "question"))
        assertThrows(Array(queryForWebTest().bytes.dropLast()), .truncated(section: "question"))
    }

    func testParsesAnUnsafeBufferLikeAnArray() throws {
        let bytes = queryForWebTest().bytes
        let fromBuffer = try bytes.withUnsafeBytes { try DNSMessage(parsing: $0) }
        XCTAssertEqual(fromBuffer, try DNSMessage(parsing: bytes))
    }

    // MARK: Names of types and codes

    func testRecordTypeNames() {
        XCTAssertEqual(DNSRecordType.a.description, "A")
        XCTAssertEqual(DNSRecordType.aaaa.description, "AAAA")
        XCTAssertEqual(DNSRecordType.https.rawValue, 65)
        XCTAssertEqual(DNSRecordType.https.description, "HTTPS")
        XCTAssertEqual(DNSRecordType(rawValue: 65_280).description, "TYPE65280")
        XCTAssertEqual(DNSRecordType(rawValue: 0).description, "TYPE0")
        XCTAssertEqual(DNSRecordType(name: "https"), .https)
        XCTAssertEqual(DNSRecordType(name: "CNAME"), .cname)
        XCTAssertEqual(DNSRecordType(name: "Ptr"), .ptr)
        XCTAssertEqual(DNSRecordType(name: "nsap-ptr")?.rawValue, 23)
        XCTAssertEqual(DNSRecordType(name: "TYPE65280")?.rawValue, 65_280)
        XCTAssertEqual(DNSRecordType(name: "type1"), .a)
        for bad in ["", "TYPE", "TYPE65536", "TYPE-1", "TYPE+1", "TYPE 1", "BOGUS", "A "] {
            XCTAssertNil(DNSRecordType(name: bad), bad)
        }
        for type in (0...300).map(DNSRecordType.init(rawValue:)) + [.init(rawValue: 32_769), .init(rawValue: 65_535)] {
            XCTAssertEqual(DNSRecordType(name: type.description), type, "round trip of \(type)")
        }
    }

    func testResponseCodeNames() {
        XCTAssertEqual(DNSResponseCode.noError.description, "NOERROR")
        XCTAssertEqual(DNSResponseCode.serverFailure.description, "SERVFAIL")
        XCTAssertEqual(DNSResponseCode.nameError.description, "NXDOMAIN")
        XCTAssertEqual(DNSResponseCode.notZone.description, "NOTZONE")
        XCTAssertEqual(DNSResponseCode.badVersion.description, "BADVERS")
        XCTAssertEqual(DNSResponseCode(rawValue: 12).description, "RCODE12")
        XCTAssertEqual(DNSResponseCode(name: "nxdomain"), .nameError)
        XCTAssertEqual(DNSResponseCode(name: "BADVERS"), .badVersion)
        XCTAssertEqual(DNSResponseCode(name: "rcode12")?.rawValue, 12)
        for bad in ["", "RCODE", "RCODE65536", "TYPE1", "NXDOMAIN "] {
            XCTAssertNil(DNSResponseCode(name: bad), bad)
        }
        for code in (0...4095).map(DNSResponseCode.init(rawValue:)) {
            XCTAssertEqual(DNSResponseCode(name: code.description), code, "round trip of \(code)")
        }
    }

    func testErrorDescriptionsArePlainWords() {
        let errors: [DNSParseError] = [
            .truncatedHeader, .truncated(section: "answer"), .nameTooLong, .pointerLoop, .badPointer, .badLabelType(0x40),
            .tooManyRecords(9), .badRecordData(.cname),
        ]
        for error in errors {
            XCTAssertFalse(error.description.isEmpty)
        }
        XCTAssertEqual(DNSParseError.badLabelType(0x40).description, "a name has a label of unsupported type 0x40")
        XCTAssertEqual(DNSParseError.truncated(section: "answer").description, "the message ends inside its answer section")
    }
}
