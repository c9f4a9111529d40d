/// A DNS query or response that a process sent or received over UDP: who, on which socket, to or
/// from whom, and what it asked or answered.
///
/// A query and its response each make one event on every side that handles them: a client's
/// query is a `query` event it sent, and the server's copy a `query` event the server received.
/// A response carries ``latencyNanoseconds`` when the monitor saw its query on the same socket:
/// for a client the time to its answer, for a server the time it took to answer.
///
/// The endpoints are the socket's: `source` is the process's own address and port, `destination`
/// the other end of this datagram (the server of a client's query, the client of a server's
/// response).
public struct DNSMessageEvent: NetworkEvent {
    /// A question or an answer.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// A message without the QR bit.
        case query
        /// A message with the QR bit.
        case response
    }

    /// Wall-clock time of the send or receive, in nanoseconds since the Unix epoch.
    public var timeNanoseconds: UInt64
    /// Query or response.
    public var kind: Kind
    /// Whether the process sent the message (else it received it).
    public var isSent: Bool
    /// The process that sent or received it.
    public var process: EventProcess
    /// The socket's addresses: its own, and the other end of this datagram.
    public var endpoints: SocketEndpoints
    /// The message's id (the 16-bit transaction id of its header).
    public var id: UInt16
    /// The first question's name, as `dig` writes it (no trailing dot; `.` for the root; bytes
    /// that are not printable escaped as `\DDD`).
    public var name: String
    /// The first question's type.
    public var queryType: DNSRecordType
    /// The response code; nil for a query.
    public var responseCode: DNSResponseCode?
    /// The addresses of the A and AAAA answers, in order (empty for a query).
    public var answers: [IPAddress]
    /// Whether the answer section could not be read to its end (a datagram longer than the
    /// sample, or a malformed record); ``answers`` holds what was read.
    public var answersIncomplete: Bool
    /// Whether the server set the TC bit: the answer did not fit the datagram, and the client is
    /// expected to ask again over TCP.
    public var isTruncated: Bool
    /// Nanoseconds since the matching query on the same socket; nil for a query, or when the
    /// query was not seen (sent before tracing began, or forgotten after ``DNSKind/Options/queryTimeout``).
    public var latencyNanoseconds: UInt64?
    /// The datagram's payload length in bytes.
    public var length: UInt32
    /// The id of the process's cgroup v2.
    public var cgroupID: UInt64
    /// The cgroup of ``cgroupID`` (see `EventAttributor`).
    public var cgroup: Cgroup?
    /// The socket's network namespace (inode number).
    public var networkNamespace: UInt32
    /// The name `ip netns` gave ``networkNamespace``.
    public var networkNamespaceName: String?
    /// The socket's kernel cookie, as `udp-events` and `ss -e` report it; nil when it has none.
    public var socketID: UInt64?
    /// Whether the fields read from kernel structs are estimates (`NetworkEvent.offsetsEstimated`).
    public var offsetsEstimated = false

    /// An event with every field given.
    public init(
        timeNanoseconds: UInt64, kind: Kind, isSent: Bool, process: EventProcess, endpoints: SocketEndpoints, id: UInt16,
        name: String, queryType: DNSRecordType, responseCode: DNSResponseCode?, answers: [IPAddress],
        answersIncomplete: Bool = false, isTruncated: Bool = false, latencyNanoseconds: UInt64?, length: UInt32, cgroupID: UInt64,
        networkNamespace: UInt32, cgroup: Cgroup? = nil, networkNamespaceName: String? = nil, socketID: UInt64?
    ) {
        self.timeNanoseconds = timeNanoseconds; self.kind = kind; self.isSent = isSent
        self.process = process; self.endpoints = endpoints
        self.id = id; self.name = name; self.queryType = queryType; self.responseCode = responseCode
        self.answers = answers; self.answersIncomplete = answersIncomplete; self.isTruncated = isTruncated
        self.latencyNanoseconds = latencyNanoseconds; self.length = length
        self.cgroupID = cgroupID; self.networkNamespace = networkNamespace
        self.cgroup = cgroup; self.networkNamespaceName = networkNamespaceName; self.socketID = socketID
    }
}

extension DNSMessageEvent {
    /// The JSON keys of `dns-events --json`: the header every event has (`event` is `query` or
    /// `response`), then `direction` (`sent` or `received`), `id`, `name`, `qtype`, `rcode`
    /// (responses), `answers` (a list of address strings), `answers_incomplete` and `truncated`
    /// (the TC bit; each only when true),
    /// `latency_ns` (`null` when unknown), `length`, the attribution keys and `socket_id`.
    @inlinable public func writeFields<Writer: EventFieldWriter>(to writer: inout Writer) {
        writer.writeHeader(event: kind.rawValue, time: timeNanoseconds, process: process, endpoints: endpoints)
        writer.write(isSent ? "sent" : "received", forKey: "direction")
        writer.write(id, forKey: "id")
        writer.write(name, forKey: "name")
        writer.write(queryType.description, forKey: "qtype")
        writer.write(responseCode?.description, forKey: "rcode")
        writer.write(answers, forKey: "answers")
        if answersIncomplete { writer.write(true, forKey: "answers_incomplete") }
        if isTruncated { writer.write(true, forKey: "truncated") }
        writer.write(latencyNanoseconds, forKey: "latency_ns")
        writer.write(length, forKey: "length")
        writer.writeAttribution(of: self)
        writer.write(socketID, forKey: "socket_id")
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: EventCodingKey.self)
        let qtype = try container.decode(String.self, forKey: "qtype")
        guard let queryType = DNSRecordType(name: qtype) else {
            throw DecodingError.dataCorruptedError(forKey: "qtype", in: container, debugDescription: "unknown record type \(qtype)")
        }
        let rcode = try container.decodeIfPresent(String.self, forKey: "rcode")
        self.init(
            timeNanoseconds: try container.decode(UInt64.self, forKey: "time_ns"),
            kind: try container.decode(Kind.self, forKey: "event"),
            isSent: try container.decode(String.self, forKey: "direction") == "sent",
            process: try container.decodeProcess(),
            endpoints: try container.decodeEndpoints(),
            id: try container.decode(UInt16.self, forKey: "id"),
            name: try container.decode(String.self, forKey: "name"),
            queryType: queryType,
            responseCode: try rcode.map { text in
                guard let code = DNSResponseCode(name: text) else {
                    throw DecodingError.dataCorruptedError(forKey: "rcode", in: container, debugDescription: "unknown rcode \(text)")
                }
                return code
            },
            answers: try container.decode([IPAddress].self, forKey: "answers"),
            answersIncomplete: try container.decodeIfPresent(Bool.self, forKey: "answers_incomplete") ?? false,
            isTruncated: try container.decodeIfPresent(Bool.self, forKey: "truncated") ?? false,
            latencyNanoseconds: try container.decodeIfPresent(UInt64.self, forKey: "latency_ns"),
            length: try container.decode(UInt32.self, forKey: "length"),
            cgroupID: try container.decode(UInt64.self, forKey: "cgroup_id"),
            networkNamespace: try container.decode(UInt32.self, forKey: "netns"),
            cgroup: try container.decodeCgroup(),
            networkNamespaceName: try container.decodeIfPresent(String.self, forKey: "netns_name"),
            socketID: try container.decodeIfPresent(UInt64.self, forKey: "socket_id"))
        offsetsEstimated = try container.decodeIfPresent(Bool.self, forKey: "offsets_estimated") ?? false
    }
}
