import NetEventsCore

/// A DNS message (RFC 1035) parsed from its wire form: the header, the questions, the answers.
///
/// The bytes come from any process's datagrams, so the parser expects hostile input: it reads
/// by bounds-checked offsets, follows compression pointers only backwards, caps names at 255
/// octets, and sizes nothing from the header's counts. The header and the questions must be
/// well formed; the answers are read up to the first record that is cut short or malformed
/// (``answersIncomplete``); the authority and additional sections are only searched for an
/// OPT record's extended response code.
public struct DNSMessage: Sendable, Equatable {
    /// The query's identifier, copied into its response.
    public var id: UInt16
    /// True for a response, false for a query (the `QR` bit).
    public var isResponse: Bool
    /// The kind of query (`OPCODE`): 0 is a standard query.
    public var opcode: UInt8
    /// True when the responding server is an authority for the name (`AA`).
    public var isAuthoritative: Bool
    /// True when the message was cut to fit its transport (`TC`).
    public var isTruncated: Bool
    /// True when the query asks the server to recurse (`RD`).
    public var recursionDesired: Bool
    /// True when the server offers recursion (`RA`).
    public var recursionAvailable: Bool
    /// The response code, including the extended bits of an OPT record in the additional
    /// section when the message has one that could be read.
    public var responseCode: DNSResponseCode
    /// The question section.
    public var questions: [DNSQuestion]
    /// The answer section only; authority and additional records are not kept.
    public var answers: [DNSRecord]
    /// True when the answer section could not be read to its end (the capture was cut short or a
    /// record is malformed); ``answers`` holds those read before.
    public var answersIncomplete: Bool

    /// The addresses of the A and AAAA answers, in order.
    public var answerAddresses: [IPAddress] {
        answers.compactMap { record in
            if case .address(let address) = record.data { return address }
            return nil
        }
    }

    /// Parses a message from its wire form.
    /// - Throws: ``DNSParseError`` when the header or a question is cut short or malformed.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(DNSParseError) {
        var reader = DNSWireReader(message: bytes)
        let header = try DNSHeader(reading: &reader)
        id = header.id
        isResponse = header.flags & 0x8000 != 0
        opcode = UInt8(truncatingIfNeeded: header.flags >> 11) & 0x0F
        isAuthoritative = header.flags & 0x0400 != 0
        isTruncated = header.flags & 0x0200 != 0
        recursionDesired = header.flags & 0x0100 != 0
        recursionAvailable = header.flags & 0x0080 != 0
        questions = try Self.readQuestions(header.questionCount, from: &reader)
        (answers, answersIncomplete) = Self.readAnswers(header.answerCount, from: &reader)
        let extendedCode = answersIncomplete ? nil : Self.extendedResponseCode(header, from: &reader)
        responseCode = DNSResponseCode(rawValue: UInt16(extendedCode ?? 0) << 4 | header.flags & 0x000F)
    }

    /// Parses a message from its wire form.
    /// - Throws: ``DNSParseError`` when the header or a question is cut short or malformed.
    public init(parsing bytes: [UInt8]) throws(DNSParseError) {
        // Array.withUnsafeBytes rethrows as `any Error`: a Result keeps the error's type.
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(DNSParseError) in try DNSMessage(parsing: buffer) }
        }
        self = try result.get()
    }

    /// Every question, strictly: one that is cut short or malformed throws.
    private static func readQuestions(_ count: Int, from reader: inout DNSWireReader) throws(DNSParseError) -> [DNSQuestion] {
        // A question takes at least 5 bytes (the root name, type, class): a count the bytes
        // cannot hold is refused before any work.
        guard count * DNSQuestion.minimumSize <= reader.remaining else { throw .tooManyRecords(count) }
        reader.section = .question
        var questions: [DNSQuestion] = []
        for _ in 0..<count {
            questions.append(try DNSQuestion(reading: &reader))
        }
        return questions
    }

    /// The answers up to the first that is cut short or malformed, and whether one was.
    private static func readAnswers(_ count: Int, from reader: inout DNSWireReader) -> (records: [DNSRecord], incomplete: Bool) {
        reader.section = .answer
        var records: [DNSRecord] = []
        for _ in 0..<count {
            do {
                records.append(try DNSRecord(reading: &reader))
            } catch {
                return (records, true)
            }
        }
        return (records, false)
    }

    /// The upper 8 bits of the response code from the first OPT record of the additional section,
    /// nil when there is none or the sections before it cannot be read (the header's 4 bits stand).
    private static func extendedResponseCode(_ header: DNSHeader, from reader: inout DNSWireReader) -> UInt8? {
        do {
            reader.section = .authority
            for _ in 0..<header.authorityCount {
                try reader.skipRecord()
            }
            reader.section = .additional
            for _ in 0..<header.additionalCount {
                let record = try reader.skipRecord()
                // The OPT record's TTL field is: extended RCODE, version, flags (RFC 6891 6.1.3).
                if record.type == .opt { return UInt8(truncatingIfNeeded: record.ttl >> 24) }
            }
        } catch {}
        return nil
    }
}

/// A question: the name, type and class asked for.
public struct DNSQuestion: Sendable, Equatable {
    /// The name asked for, in text form: "www.example.com", the root is "."; a label's dots,
    /// backslashes and unprintable bytes are escaped as `dig` prints them (`\.`, `\\`, `\DDD`).
    public var name: String
    /// The record type asked for.
    public var type: DNSRecordType
    /// The class asked for: 1 is the Internet (`IN`); mDNS sets the top bit for a unicast reply.
    public var recordClass: UInt16

    /// The smallest question on the wire: the root name (1 byte), type and class.
    static let minimumSize = 5

    /// A question with these fields.
    public init(name: String, type: DNSRecordType, recordClass: UInt16) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }

    init(reading reader: inout DNSWireReader) throws(DNSParseError) {
        name = try reader.readName()
        type = DNSRecordType(rawValue: try reader.readUInt16())
        recordClass = try reader.readUInt16()
    }
}

/// A resource record of the answer section.
public struct DNSRecord: Sendable, Equatable {
    /// What a record holds, for the types a DNS monitor reads; the others keep only their length.
    public enum Data: Sendable, Equatable {
        /// The address of an A (4 bytes) or AAAA (16 bytes) record.
        case address(IPAddress)
        /// The name of a CNAME, NS, PTR or DNAME record.
        case name(String)
        /// Any other data, or an A or AAAA record of the wrong length: the data's length in bytes.
        case other(length: Int)
    }

    /// The record's owner name, in text form (as ``DNSQuestion/name``).
    public var name: String
    /// The record's type.
    public var type: DNSRecordType
    /// The record's class: 1 is the Internet (`IN`); mDNS sets the top bit to flush caches.
    public var recordClass: UInt16
    /// How long the record may be cached, in seconds.
    public var ttl: UInt32
    /// The record's data.
    public var data: Data

    /// A record with these fields.
    public init(name: String, type: DNSRecordType, recordClass: UInt16, ttl: UInt32, data: Data) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }

    init(reading reader: inout DNSWireReader) throws(DNSParseError) {
        name = try reader.readName()
        let fields = try reader.readRecordFields()
        type = fields.type
        recordClass = fields.recordClass
        ttl = fields.ttl
        data = try Self.data(of: fields.type, at: fields.dataRange, in: &reader)
    }

    /// Decodes the data at `range` (already checked to lie within the message) and moves past it.
    private static func data(of type: DNSRecordType, at range: Range<Int>, in reader: inout DNSWireReader) throws(DNSParseError) -> Data {
        defer { reader.offset = range.upperBound }
        switch type {
        case .a where range.count == 4:
            let (bytes, start) = (reader.message, range.lowerBound)
            return .address(.v4(bytes[start], bytes[start + 1], bytes[start + 2], bytes[start + 3]))
        case .aaaa where range.count == 16:
            return .address(.v6(IPv6Bytes(reader.message[range])!))
        case .cname, .ns, .ptr, .dname:
            reader.offset = range.lowerBound
            let name = try reader.readName()
            // The name must fill the data exactly: more or fewer bytes is a malformed record.
            guard reader.offset == range.upperBound else { throw .badRecordData(type) }
            return .name(name)
        default:
            return .other(length: range.count)
        }
    }
}

/// Why a message could not be parsed.
public enum DNSParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message is shorter than the 12-byte header.
    case truncatedHeader
    /// The message ends inside the named section ("question", "answer", "authority", "additional").
    case truncated(section: String)
    /// A name is longer than 255 octets in wire form.
    case nameTooLong
    /// A compression pointer points at itself or at bytes of the name that led to it, or a name
    /// follows too many pointers.
    case pointerLoop
    /// A compression pointer points forward, or into the header.
    case badPointer
    /// A label's length byte has the type bits 0x40 (extended label, RFC 6891) or 0x80 (reserved);
    /// a label of 64 bytes or more is seen this way too, since its length byte has these bits set.
    case badLabelType(UInt8)
    /// The header counts more questions than the message's bytes can hold.
    case tooManyRecords(Int)
    /// A record's data does not match its type (a CNAME's name does not fill its data).
    case badRecordData(DNSRecordType)

    /// The error in plain words.
    public var description: String {
        switch self {
        case .truncatedHeader: "the message is shorter than a DNS header (12 bytes)"
        case .truncated(let section): "the message ends inside its \(section) section"
        case .nameTooLong: "a name is longer than 255 bytes"
        case .pointerLoop: "a name's compression pointers loop"
        case .badPointer: "a name's compression pointer points forward or into the header"
        case .badLabelType(let type): "a name has a label of unsupported type 0x\(String(type, radix: 16))"
        case .tooManyRecords(let count): "the header counts \(count) questions, more than the message can hold"
        case .badRecordData(let type): "a \(type) record's data is malformed"
        }
    }
}

/// The fixed 12 bytes that start a message.
struct DNSHeader {
    static let size = 12

    var id: UInt16
    var flags: UInt16
    var questionCount: Int
    var answerCount: Int
    var authorityCount: Int
    var additionalCount: Int

    init(reading reader: inout DNSWireReader) throws(DNSParseError) {
        guard reader.remaining >= Self.size else { throw .truncatedHeader }
        id = try reader.readUInt16()
        flags = try reader.readUInt16()
        questionCount = Int(try reader.readUInt16())
        answerCount = Int(try reader.readUInt16())
        authorityCount = Int(try reader.readUInt16())
        additionalCount = Int(try reader.readUInt16())
    }
}

/// The section a reader is in, named in ``DNSParseError/truncated(section:)``.
enum DNSSection: String {
    case header, question, answer, authority, additional
}

/// A cursor over a message's bytes: every read checks the bounds and throws
/// ``DNSParseError/truncated(section:)`` for the current section when the bytes run out.
///
/// Names are read iteratively. Their text joins the labels with "." ("www.example.com", the root
/// is "."); in a label, printable ASCII stands as is, "." and "\" are escaped with a backslash,
/// and every other byte is written `\DDD` in decimal, as `dig` prints it, so a name never holds
/// a control character.
struct DNSWireReader {
    /// The longest name in wire form (RFC 1035 2.3.4), the root's zero byte included.
    static let maximumNameLength = 255
    /// A bound on the pointers of one name; pointing strictly backwards already ends every chain.
    static let maximumJumps = 128

    let message: UnsafeRawBufferPointer
    var offset = 0
    var section = DNSSection.header

    init(message: UnsafeRawBufferPointer) {
        self.message = message
    }

    var remaining: Int { message.count - offset }

    private var truncated: DNSParseError { .truncated(section: section.rawValue) }

    mutating func readUInt16() throws(DNSParseError) -> UInt16 {
        guard remaining >= 2 else { throw truncated }
        defer { offset += 2 }
        return UInt16(message[offset]) << 8 | UInt16(message[offset + 1])
    }

    mutating func readUInt32() throws(DNSParseError) -> UInt32 {
        UInt32(try readUInt16()) << 16 | UInt32(try readUInt16())
    }

    /// The fields between a record's name and its data.
    struct RecordFields {
        var type: DNSRecordType
        var recordClass: UInt16
        var ttl: UInt32
        /// Where the data lies, checked to be within the message.
        var dataRange: Range<Int>
    }

    /// Reads the fields after a record's name, up to its data.
    mutating func readRecordFields() throws(DNSParseError) -> RecordFields {
        let type = DNSRecordType(rawValue: try readUInt16())
        let recordClass = try readUInt16()
        let ttl = try readUInt32()
        let length = Int(try readUInt16())
        guard remaining >= length else { throw truncated }
        return RecordFields(type: type, recordClass: recordClass, ttl: ttl, dataRange: offset..<offset + length)
    }

    /// Moves past a record without decoding its name or data; returns its fields.
    @discardableResult
    mutating func skipRecord() throws(DNSParseError) -> RecordFields {
        try skipName()
        let fields = try readRecordFields()
        offset = fields.dataRange.upperBound
        return fields
    }

    /// Moves past a name in place: its labels up to the root's zero byte or a pointer, which ends
    /// a name. Neither the labels nor the pointer's target are checked: the name is not used.
    mutating func skipName() throws(DNSParseError) {
        while true {
            guard remaining >= 1 else { throw truncated }
            let length = message[offset]
            switch length & 0xC0 {
            case 0x00 where length == 0:
                offset += 1
                return
            case 0x00:
                guard remaining >= 1 + Int(length) else { throw truncated }
                offset += 1 + Int(length)
            case 0xC0:
                guard remaining >= 2 else { throw truncated }
                offset += 2
                return
            default:
                throw .badLabelType(length & 0xC0)
            }
        }
    }

    /// Reads the name at the offset, following compression pointers, and moves past it in place.
    mutating func readName() throws(DNSParseError) -> String {
        var text: [UInt8] = []
        var position = offset
        // Where the labels being read began: a pointer must point before it, so that every jump
        // lands strictly earlier than the last and no chain of pointers can loop.
        var segmentStart = offset
        // Just past the first pointer: where the name ends in place.
        var end: Int?
        var wireLength = 1  // the root's zero byte
        var jumps = 0
        while true {
            guard position < message.count else { throw truncated }
            let length = message[position]
            switch length & 0xC0 {
            case 0x00 where length == 0:
                offset = end ?? position + 1
                return text.isEmpty ? "." : String(decoding: text, as: UTF8.self)
            case 0x00:
                let label = position + 1..<position + 1 + Int(length)
                wireLength += 1 + label.count
                guard wireLength <= Self.maximumNameLength else { throw .nameTooLong }
                guard label.upperBound <= message.count else { throw truncated }
                if !text.isEmpty { text.append(UInt8(ascii: ".")) }
                Self.appendEscaped(UnsafeRawBufferPointer(rebasing: message[label]), to: &text)
                position = label.upperBound
            case 0xC0:
                guard position + 1 < message.count else { throw truncated }
                let target = Int(length & 0x3F) << 8 | Int(message[position + 1])
                try Self.checkPointer(from: position, to: target, segmentStart: segmentStart)
                jumps += 1
                guard jumps <= Self.maximumJumps else { throw .pointerLoop }
                end = end ?? position + 2
                position = target
                segmentStart = target
            default:
                throw .badLabelType(length & 0xC0)
            }
        }
    }

    /// A pointer may only point at an earlier name: before the labels that led to it, after the header.
    private static func checkPointer(from position: Int, to target: Int, segmentStart: Int) throws(DNSParseError) {
        guard target >= DNSHeader.size, target <= position else { throw .badPointer }
        guard target < segmentStart else { throw .pointerLoop }
    }

    /// Appends a label's text: printable ASCII as is, "." and "\" escaped, other bytes as `\DDD`.
    private static func appendEscaped(_ label: UnsafeRawBufferPointer, to text: inout [UInt8]) {
        let backslash = UInt8(ascii: "\\")
        for byte in label {
            switch byte {
            case UInt8(ascii: "."), backslash:
                text.append(backslash)
                text.append(byte)
            case 0x21...0x7E:
                text.append(byte)
            default:
                let zero = UInt8(ascii: "0")
                text.append(backslash)
                text.append(zero + byte / 100)
                text.append(zero + byte / 10 % 10)
                text.append(zero + byte % 10)
            }
        }
    }
}
