import DNSEvent
import Foundation
import NetEventsTesting
import XCTest

/// Delivery through `DNSMonitor` with a mock sample source: samples built with `DNSSample`, no
/// privileges. Covers the decoding of every header field, the matching of responses to queries
/// (latency), the bounds of the pending queries, and what is counted instead of delivered.
final class DNSMonitorMockTests: XCTestCase {
    /// The wall clock's offset from the samples' monotonic times in these tests.
    static let offset: UInt64 = 1_700_000_000_000_000_000

    /// The endpoints of the default sample's socket: `dig` on 127.0.0.1:40000, talking to the
    /// resolver on 127.0.0.53:53.
    static let digToResolver = SocketEndpoints(
        family: .ipv4, sourceAddress: IPAddress("127.0.0.1")!, sourcePort: 40_000, destinationAddress: IPAddress("127.0.0.53")!,
        destinationPort: 53)

    /// Starts a monitor over a mock source with a callback that collects its events, lets `feed`
    /// emit samples, and stops it; returns the monitor and what the callback got.
    func run(
        _ configuration: DNSMonitor.Configuration = .init(), feed: (MockSampleSource) -> Void
    ) throws -> (monitor: DNSMonitor, events: [DNSMessageEvent]) {
        let source = MockSampleSource()
        let monitor = try DNSMonitor(source: source, configuration: configuration, clock: WallClock(offsetNanoseconds: Int64(Self.offset)))
        let recorder = EventRecorder<DNSMessageEvent>()
        try monitor.start { recorder.record($0) }
        feed(source)
        monitor.stop()
        return (monitor, recorder.events)
    }

    /// A configuration with these bounds on the pending queries.
    func configuration(maxPending: Int = 16_384, timeout: Double = 30) -> DNSMonitor.Configuration {
        var configuration = DNSMonitor.Configuration()
        configuration.options.maxPendingQueries = maxPending
        configuration.options.queryTimeout = timeout
        return configuration
    }

    /// `dig`'s query (sent at `time`) and the resolver's response (received `latency` later), on
    /// the default socket, 127.0.0.1:40000 to 127.0.0.53:53.
    func clientExchange(
        id: UInt16 = 0x1234, name: String = "example.com", time: UInt64 = 5_000_000_000, latency: UInt64 = 1_234_567,
        addresses: [IPAddress] = [IPAddress("93.184.215.14")!, IPAddress("2606:2800:21f:cb07:6820:80da:af6b:8b2c")!]
    ) -> (query: DNSSample, response: DNSSample) {
        var query = DNSSample()
        query.time = time
        query.payload = DNSSample.query(id: id, name: name, type: 1)
        var response = query
        response.time = time + latency
        response.sent = false
        response.payload = DNSSample.response(id: id, name: name, type: 1, rcode: 0, addresses: addresses)
        return (query, response)
    }

    /// The query of ``clientExchange(id:name:time:latency:addresses:)`` as the resolver `named`
    /// receives it at `time`: on its own socket, 127.0.0.53:53, from `dig`'s 127.0.0.1:40000.
    func serverQuery(id: UInt16, time: UInt64) -> DNSSample {
        var query = clientExchange(id: id).query
        query.comm = "named"
        query.exe = "named"
        query.socket = 0xffff_8880_0000_5300
        query.saddr = [127, 0, 0, 53]
        query.sport = 53
        query.peerAddress = [127, 0, 0, 1]
        query.peerPort = 40_000
        query.sent = false
        query.time = time
        return query
    }

    // MARK: - Fields

    func testClientQueryThenResponseMakeTwoEventsWithEveryField() throws {
        let (queryEvent, responseEvent) = clientExchange()
        let (monitor, events) = try run {
            $0.emit(queryEvent.bytes)
            $0.emit(responseEvent.bytes)
        }
        XCTAssertEqual(events.count, 2)
        let query = try XCTUnwrap(events.first)
        let response = try XCTUnwrap(events.last)

        XCTAssertEqual(query.kind, .query)
        XCTAssertTrue(query.isSent)
        XCTAssertEqual(query.timeNanoseconds, Self.offset + 5_000_000_000)
        XCTAssertEqual(query.pid, 4242)
        XCTAssertEqual(query.uid, 65_534)
        XCTAssertEqual(query.command, "dig")
        XCTAssertNil(query.thread, "the thread's name is the comm")
        XCTAssertEqual(query.executable, "dig")
        XCTAssertEqual(query.endpoints, Self.digToResolver)
        XCTAssertEqual(query.id, 0x1234)
        XCTAssertEqual(query.name, "example.com")
        XCTAssertEqual(query.queryType, .a)
        XCTAssertEqual(query.queryType.description, "A")
        XCTAssertNil(query.responseCode, "a query has no response code")
        XCTAssertEqual(query.answers, [])
        XCTAssertFalse(query.answersIncomplete)
        XCTAssertNil(query.latencyNanoseconds, "a query has no latency")
        XCTAssertEqual(query.length, UInt32(queryEvent.payload.count))
        XCTAssertEqual(query.cgroupID, 77)
        XCTAssertEqual(query.networkNamespace, 4_026_531_840)
        XCTAssertEqual(query.socketID, 0x2f_0003)

        XCTAssertEqual(response.kind, .response)
        XCTAssertFalse(response.isSent)
        XCTAssertEqual(response.timeNanoseconds, Self.offset + 5_001_234_567)
        XCTAssertEqual(response.pid, 4242)
        XCTAssertEqual(response.command, "dig")
        XCTAssertEqual(response.endpoints, Self.digToResolver)
        XCTAssertEqual(response.id, 0x1234)
        XCTAssertEqual(response.name, "example.com")
        XCTAssertEqual(response.queryType.description, "A")
        XCTAssertEqual(response.responseCode, .noError)
        XCTAssertEqual(response.responseCode?.description, "NOERROR")
        XCTAssertEqual(response.answers.map(\.description), ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
        XCTAssertFalse(response.answersIncomplete)
        XCTAssertEqual(response.latencyNanoseconds, 1_234_567, "the response's time minus the query's, exactly")
        XCTAssertEqual(response.length, UInt32(responseEvent.payload.count))
        XCTAssertEqual(response.socketID, 0x2f_0003)

        let statistics = monitor.statistics
        XCTAssertEqual(statistics.malformedSamples, 0)
        XCTAssertEqual(statistics.kind.malformed, 0)
        XCTAssertEqual(statistics.kind.forgottenQueries, 0)
        XCTAssertNil(monitor.report, "a mock source has no report")
    }

    /// The header's other fields: a thread of its own, no executable, no cookie, a datagram
    /// longer than the capture, an AAAA question.
    func testThreadExecutableCookieAndLength() throws {
        var sample = DNSSample()
        sample.thread = "isc-net-0000"
        sample.exe = ""
        sample.cookie = 0
        sample.payload = DNSSample.query(id: 9, name: "www.example.org", type: 28)
        sample.length = 4_000
        sample.pid = 1
        sample.uid = 0
        sample.cgroup = 0
        sample.netns = 1
        let (_, events) = try run { $0.emit(sample.bytes) }
        let event = try XCTUnwrap(events.first)
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(event.thread, "isc-net-0000")
        XCTAssertNil(event.executable)
        XCTAssertNil(event.socketID, "cookie 0 is no socket id")
        XCTAssertEqual(event.length, 4_000, "the datagram's length, not the bytes captured")
        XCTAssertEqual(event.queryType.description, "AAAA")
        XCTAssertEqual(event.name, "www.example.org")
        XCTAssertEqual(event.pid, 1)
        XCTAssertEqual(event.uid, 0)
        XCTAssertEqual(event.cgroupID, 0)
        XCTAssertEqual(event.networkNamespace, 1)
    }

    /// A server receives the query and sends the response: the same match, from the other side.
    func testServerSideQueryAndResponseMatch() throws {
        let query = serverQuery(id: 77, time: 9_000_000_000)
        var response = query
        response.sent = true
        response.time = 9_000_000_500
        response.payload = DNSSample.response(id: 77, name: "example.com", addresses: [IPAddress("10.0.0.1")!])
        let (_, events) = try run {
            $0.emit(query.bytes)
            $0.emit(response.bytes)
        }
        XCTAssertEqual(events.map(\.kind), [.query, .response])
        XCTAssertEqual(events.map(\.isSent), [false, true])
        XCTAssertEqual(events.map(\.command), ["named", "named"])
        XCTAssertEqual(events.map(\.sourcePort), [53, 53])
        XCTAssertEqual(events.map(\.destinationAddress.description), ["127.0.0.1", "127.0.0.1"])
        XCTAssertEqual(events.map(\.destinationPort), [40_000, 40_000])
        XCTAssertEqual(events.last?.latencyNanoseconds, 500, "the time the server took to answer")
        XCTAssertEqual(events.last?.answers, [IPAddress("10.0.0.1")!])
    }

    /// Client and server in one trace: each side matches its own pair on its own socket.
    func testClientAndServerInOneTraceEachMatchTheirOwn() throws {
        let (clientQuery, clientResponse) = clientExchange(id: 5, time: 1_000, latency: 900)
        let serverQuery = self.serverQuery(id: 5, time: 1_100)
        var serverResponse = serverQuery
        serverResponse.sent = true
        serverResponse.time = 1_800
        serverResponse.payload = clientResponse.payload
        let (_, events) = try run {
            for sample in [clientQuery, serverQuery, serverResponse, clientResponse] { $0.emit(sample.bytes) }
        }
        XCTAssertEqual(events.map(\.command), ["dig", "named", "named", "dig"])
        XCTAssertEqual(events.map(\.latencyNanoseconds), [nil, nil, 700, 900])
    }

    // MARK: - Matching

    func testResponseWithoutAQueryHasNoLatency() throws {
        let (_, response) = clientExchange()
        let (monitor, events) = try run { $0.emit(response.bytes) }
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(events.first?.kind, .response)
        XCTAssertNil(events.first?.latencyNanoseconds)
        XCTAssertEqual(events.first?.answers.count, 2, "the response is reported all the same")
        XCTAssertEqual(monitor.statistics.kind.forgottenQueries, 0)
    }

    /// Responses that differ from the query in one part of the key do not match it, and leave it
    /// waiting for its own response.
    func testResponsesThatDifferInOnePartOfTheKeyDoNotMatch() throws {
        let (query, response) = clientExchange(id: 100, time: 1_000_000, latency: 10_000)
        var otherID = response
        otherID.payload = DNSSample.response(id: 101, name: "example.com", addresses: [])
        otherID.time = 1_001_000
        var otherSocket = response
        otherSocket.socket += 64
        otherSocket.time = 1_002_000
        var otherPeerPort = response
        otherPeerPort.peerPort = 5353
        otherPeerPort.time = 1_003_000
        var otherPeerAddress = response
        otherPeerAddress.peerAddress = [127, 0, 0, 54]
        otherPeerAddress.time = 1_004_000
        var sameDirection = response
        sameDirection.sent = true  // the client sending a response with the query's id
        sameDirection.time = 1_005_000
        let (monitor, events) = try run {
            for sample in [query, otherID, otherSocket, otherPeerPort, otherPeerAddress, sameDirection, response] {
                $0.emit(sample.bytes)
            }
        }
        XCTAssertEqual(events.count, 7)
        XCTAssertEqual(events.map(\.kind), [.query] + [DNSMessageEvent.Kind](repeating: .response, count: 6))
        XCTAssertEqual(events.dropFirst().dropLast().map(\.latencyNanoseconds), [nil, nil, nil, nil, nil], "\(events)")
        XCTAssertEqual(events.last?.latencyNanoseconds, 10_000, "the query waited for its own response")
        XCTAssertEqual(monitor.statistics.kind.forgottenQueries, 0)
    }

    /// Two received messages (a query received, then a response received) are not a pair: the
    /// response goes the same way as the query.
    func testAReceivedQueryDoesNotMatchAReceivedResponse() throws {
        var query = DNSSample()
        query.sent = false
        query.payload = DNSSample.query(id: 1, name: "a.example")
        var response = query
        response.time += 1_000
        response.payload = DNSSample.response(id: 1, name: "a.example")
        let (_, events) = try run {
            $0.emit(query.bytes)
            $0.emit(response.bytes)
        }
        XCTAssertEqual(events.map(\.kind), [.query, .response])
        XCTAssertNil(events.last?.latencyNanoseconds)
    }

    /// A response matches once: a duplicate has no latency.
    func testAQueryIsMatchedOnce() throws {
        let (query, response) = clientExchange(latency: 42)
        var duplicate = response
        duplicate.time += 10
        let (_, events) = try run {
            for sample in [query, response, duplicate] { $0.emit(sample.bytes) }
        }
        XCTAssertEqual(events.map(\.latencyNanoseconds), [nil, 42, nil])
    }

    /// A query sent again with the same id (a retry) restarts the clock.
    func testARetriedQueryMatchesFromTheLastTry() throws {
        let (query, response) = clientExchange(time: 1_000, latency: 5_000)
        var retry = query
        retry.time = 4_000
        let (monitor, events) = try run {
            for sample in [query, retry, response] { $0.emit(sample.bytes) }
        }
        XCTAssertEqual(events.map(\.latencyNanoseconds), [nil, nil, 2_000])
        XCTAssertEqual(monitor.statistics.kind.forgottenQueries, 0, "a retry replaces its query, it is not forgotten")
    }

    func testNameErrorWithoutAnswers() throws {
        var query = DNSSample()
        query.payload = DNSSample.query(id: 0xBEEF, name: "no-such-name.example", type: 1)
        var response = query
        response.time += 3_000_000
        response.sent = false
        response.payload = DNSSample.response(id: 0xBEEF, name: "no-such-name.example", type: 1, rcode: 3, addresses: [])
        let (_, events) = try run {
            $0.emit(query.bytes)
            $0.emit(response.bytes)
        }
        let event = try XCTUnwrap(events.last)
        XCTAssertEqual(events.count, 2)
        XCTAssertEqual(event.kind, .response)
        XCTAssertEqual(event.responseCode, .nameError)
        XCTAssertEqual(event.responseCode?.description, "NXDOMAIN")
        XCTAssertEqual(event.answers, [])
        XCTAssertFalse(event.answersIncomplete)
        XCTAssertEqual(event.name, "no-such-name.example")
        XCTAssertEqual(event.latencyNanoseconds, 3_000_000)
    }

    /// An answer section cut short (the sample holds part of the datagram): the answers before
    /// the cut are kept and the event says the list is incomplete.
    func testAnswersCutShortAreIncomplete() throws {
        var response = DNSSample()
        response.sent = false
        let full = DNSSample.response(
            id: 3, name: "example.com", addresses: [IPAddress("10.0.0.1")!, IPAddress("10.0.0.2")!])
        response.payload = Array(full.dropLast(2))
        response.length = UInt32(full.count)
        let (monitor, events) = try run { $0.emit(response.bytes) }
        let event = try XCTUnwrap(events.first)
        XCTAssertEqual(event.answers, [IPAddress("10.0.0.1")!])
        XCTAssertTrue(event.answersIncomplete)
        XCTAssertEqual(event.length, UInt32(full.count))
        XCTAssertEqual(monitor.statistics.kind.malformed, 0, "a cut answer section is no malformed message")
    }

    /// An IPv6 socket talking to an IPv4 peer: the peer reads as v4-mapped, as the kernel shows a
    /// connected one, and the pair still matches.
    func testIPv6SocketWithAnIPv4PeerIsV4Mapped() throws {
        var (query, response) = clientExchange(latency: 777)
        for index in [0, 1] {
            var sample = index == 0 ? query : response
            sample.family = 10
            sample.saddr = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]
            sample.peerFamily = 2
            sample.peerAddress = [127, 0, 0, 53]
            if index == 0 { query = sample } else { response = sample }
        }
        let (_, events) = try run {
            $0.emit(query.bytes)
            $0.emit(response.bytes)
        }
        XCTAssertEqual(events.count, 2)
        for event in events {
            XCTAssertEqual(event.family, .ipv6)
            XCTAssertEqual(event.sourceAddress.description, "::ffff:127.0.0.1")
            XCTAssertEqual(event.destinationAddress.description, "::ffff:127.0.0.53")
            XCTAssertEqual(event.destinationAddress.family, .ipv6)
            XCTAssertEqual(event.destinationPort, 53)
        }
        XCTAssertEqual(events.last?.latencyNanoseconds, 777)
    }

    func testIPv6SocketAndPeer() throws {
        var sample = DNSSample()
        sample.family = 10
        sample.saddr = [UInt8](repeating: 0, count: 15) + [1]
        sample.peerAddress = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x35]
        let (_, events) = try run { $0.emit(sample.bytes) }
        XCTAssertEqual(events.first?.sourceAddress.description, "::1")
        XCTAssertEqual(events.first?.destinationAddress.description, "2001:db8::35")
    }

    /// A datagram whose peer the kernel could not tell (an unconnected socket, no address given):
    /// the unspecified address and port 0.
    func testUnknownPeerIsUnspecified() throws {
        var sample = DNSSample()
        sample.peerFamily = 0
        let (_, events) = try run { $0.emit(sample.bytes) }
        XCTAssertEqual(events.first?.destinationAddress.description, "0.0.0.0")
        XCTAssertEqual(events.first?.destinationPort, 0)
    }

    // MARK: - What makes no event

    func testPayloadsThatAreNotDNSAreCountedByTheKindNotTheMonitor() throws {
        var garbage = DNSSample()
        var truncatedQuestion = DNSSample()
        truncatedQuestion.payload = Array(DNSSample.query(id: 1, name: "example.com").dropLast(3))
        var empty = DNSSample()
        empty.payload = []
        var pointerLoop = DNSSample()
        pointerLoop.payload = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]
        let good = DNSSample()
        let (monitor, events) = try run { source in
            for bytes: [UInt8] in [[1, 2, 3], [UInt8](repeating: 0xFF, count: 40), Array("GET / HTTP/1.1\r\n\r\n".utf8)] {
                garbage.payload = bytes
                source.emit(garbage.bytes)
            }
            source.emit(truncatedQuestion.bytes)
            source.emit(empty.bytes)
            source.emit(pointerLoop.bytes)
            source.emit(good.bytes)
        }
        XCTAssertEqual(events.count, 1, "only the good sample: \(events)")
        XCTAssertEqual(events.first?.name, "example.com")
        XCTAssertEqual(monitor.statistics.kind.malformed, 6)
        XCTAssertEqual(monitor.statistics.malformedSamples, 0, "the samples themselves are well formed")
        XCTAssertNil(monitor.lastDecodingError)
    }

    /// A payload the kernel could not read makes no event: the kernel counts it (`withoutPayload`).
    func testPayloadsNotReadMakeNoEvent() throws {
        var unknownCall = DNSSample()
        unknownCall.payloadSource = DNSSample.payloadUnknownCall
        unknownCall.payload = []
        unknownCall.length = 40
        var fault = DNSSample()
        fault.payloadSource = DNSSample.payloadFault
        var faultWithBytes = DNSSample()
        faultWithBytes.payloadSource = DNSSample.payloadFault
        faultWithBytes.payload = [1, 2, 3]
        var unknownSource = DNSSample()
        unknownSource.payloadSource = 200
        let (monitor, events) = try run { source in
            for sample in [unknownCall, fault, faultWithBytes, unknownSource] { source.emit(sample.bytes) }
        }
        XCTAssertEqual(events, [])
        let statistics = monitor.statistics
        XCTAssertEqual(statistics.malformedSamples, 0)
        XCTAssertEqual(statistics.kind.malformed, 0)
        XCTAssertEqual(statistics.kind.withoutPayload, 0, "counted by the kernel, none here")
    }

    /// Samples that cannot be decoded are the monitor's malformed samples, each skipped.
    func testShortOrInconsistentSamplesAreMalformedSamples() throws {
        let good = DNSSample()
        var badFamily = DNSSample()
        badFamily.family = 1
        var tooLong = DNSSample()
        tooLong.payload = [UInt8](repeating: 0, count: 2049)  // more than NE_DNS_MAX_PAYLOAD
        let (monitor, events) = try run { source in
            source.emit([])
            source.emit(Array(good.bytes.prefix(191)))  // shorter than the header
            source.emit(Array(good.bytes.prefix(192)))  // the header alone, its payload missing
            source.emit(Array(good.bytes.dropLast()))  // one byte of the payload missing
            source.emit(badFamily.bytes)
            source.emit(tooLong.bytes)
            source.emit(good.bytes)
        }
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(monitor.statistics.malformedSamples, 6)
        XCTAssertEqual(monitor.statistics.kind.malformed, 0, "no payload was parsed")
        guard case .malformedSample = monitor.lastDecodingError else {
            return XCTFail("expected .malformedSample, got \(String(describing: monitor.lastDecodingError))")
        }
    }

    func testTheErrorOfAShortSampleSaysWhatWasExpected() throws {
        let good = DNSSample()
        let (monitor, _) = try run { $0.emit(Array(good.bytes.prefix(100))) }
        guard case .malformedSample(let expected, let actual, _) = monitor.lastDecodingError else {
            return XCTFail("expected .malformedSample, got \(String(describing: monitor.lastDecodingError))")
        }
        XCTAssertEqual(expected, 192)
        XCTAssertEqual(actual, 100)
        let (cut, _) = try run { $0.emit(Array(good.bytes.dropLast(5))) }
        guard case .malformedSample(let expected, let actual, _) = cut.lastDecodingError else {
            return XCTFail("expected .malformedSample, got \(String(describing: cut.lastDecodingError))")
        }
        XCTAssertEqual(expected, good.bytes.count)
        XCTAssertEqual(actual, good.bytes.count - 5)
    }

    /// Bytes after the captured payload (a reader's padding) are not part of it.
    func testBytesAfterTheCapturedPayloadAreIgnored() throws {
        let sample = DNSSample()
        let (monitor, events) = try run { $0.emit(sample.bytes + [0xAA, 0xBB, 0xCC, 0xDD]) }
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(events.first?.name, "example.com")
        XCTAssertEqual(monitor.statistics.malformedSamples, 0)
    }

    // MARK: - Bounds of the pending queries

    /// More queries waiting than `maxPendingQueries`: the oldest are forgotten (counted), and
    /// their responses have no latency.
    func testTheOldestQueriesBeyondTheLimitAreForgotten() throws {
        let (monitor, events) = try run(configuration(maxPending: 3)) { source in
            for id in UInt16(1)...5 {
                let (query, _) = clientExchange(id: id, time: UInt64(id) * 1_000)
                source.emit(query.bytes)
            }
            for id in UInt16(1)...5 {
                let (_, response) = clientExchange(id: id, time: UInt64(id) * 1_000, latency: 10_000)
                source.emit(response.bytes)
            }
        }
        let responses = events.filter { $0.kind == .response }
        XCTAssertEqual(responses.map(\.id), [1, 2, 3, 4, 5])
        XCTAssertEqual(responses.map(\.latencyNanoseconds), [nil, nil, 10_000, 10_000, 10_000])
        XCTAssertEqual(monitor.statistics.kind.forgottenQueries, 2)
    }

    /// Answered queries free their room: many exchanges in turn forget nothing.
    func testAnsweredQueriesFreeTheirRoom() throws {
        let (monitor, events) = try run(configuration(maxPending: 2)) { source in
            for index in 0..<3_000 {
                let (query, response) = clientExchange(id: UInt16(index % 65_536), time: UInt64(index) * 1_000_000, latency: 100)
                source.emit(query.bytes)
                source.emit(response.bytes)
            }
        }
        XCTAssertEqual(events.count, 6_000)
        XCTAssertTrue(events.filter { $0.kind == .response }.allSatisfy { $0.latencyNanoseconds == 100 })
        XCTAssertEqual(monitor.statistics.kind.forgottenQueries, 0)
    }

    /// A response later than `queryTimeout` after its query has no latency, and the query is
    /// counted as forgotten; one exactly at the timeout still matches.
    func testAResponseAfterTheTimeoutHasNoLatency() throws {
        let (monitor, events) = try run(configuration(timeout: 1)) { source in
            let (late, lateResponse) = clientExchange(id: 1, time: 10_000_000_000, latency: 1_000_000_001)
            source.emit(late.bytes)
            source.emit(lateResponse.bytes)
            let (onTime, onTimeResponse) = clientExchange(id: 2, time: 20_000_000_000, latency: 1_000_000_000)
            source.emit(onTime.bytes)
            source.emit(onTimeResponse.bytes)
        }
        XCTAssertEqual(events.filter { $0.kind == .response }.map(\.latencyNanoseconds), [nil, 1_000_000_000])
        XCTAssertEqual(monitor.statistics.kind.forgottenQueries, 1)
    }

    /// Expired queries are forgotten as time passes, also without their responses.
    func testExpiredQueriesAreForgottenWhenLaterSamplesCome() throws {
        let (monitor, _) = try run(configuration(timeout: 1)) { source in
            for id in UInt16(1)...4 {
                let (query, _) = clientExchange(id: id, time: UInt64(id) * 1_000)
                source.emit(query.bytes)
            }
            let (later, _) = clientExchange(id: 99, time: 5_000_000_000)
            source.emit(later.bytes)
        }
        XCTAssertEqual(monitor.statistics.kind.forgottenQueries, 4)
    }

    // MARK: - Hostile names

    /// A name is bytes any process chooses: control characters, escape sequences, dots and
    /// backslashes inside labels, invalid UTF-8. The event's name escapes them as `dig` does.
    func testHostileNamesComeOutEscaped() throws {
        let labels: [[UInt8]] = [
            [0x1B] + Array("[31mred".utf8),
            [0x0A, 0x0D, 0x00, 0x09, 0x07],
            Array("a.b".utf8),
            Array("\\".utf8),
            [0x7F, 0x80, 0xFF, 0x20],
            Array("é".utf8),
            Array("\u{1b}]0;title\u{07}".utf8),
        ]
        var query = DNSSample()
        query.payload = DNSSample.query(id: 66, labels: labels, type: 16)
        var response = query
        response.sent = false
        response.time += 5
        response.payload = DNSSample.response(id: 66, labels: labels, type: 16, addresses: [IPAddress("10.9.8.7")!])
        let (monitor, events) = try run {
            $0.emit(query.bytes)
            $0.emit(response.bytes)
        }
        XCTAssertEqual(events.count, 2)
        let expected = #"\027[31mred.\010\013\000\009\007.a\.b.\\.\127\128\255\032.\195\169.\027]0;title\007"#
        for event in events {
            XCTAssertEqual(event.name, expected)
            XCTAssertFalse(event.name.utf8.contains { $0 < 0x20 || $0 == 0x7F }, event.name)
            XCTAssertTrue(event.name.utf8.allSatisfy { $0 < 0x80 }, "only ASCII: \(event.name)")
            XCTAssertEqual(event.queryType.description, "TXT")
        }
        XCTAssertEqual(events.last?.latencyNanoseconds, 5)
        XCTAssertEqual(events.last?.answers, [IPAddress("10.9.8.7")!])
        XCTAssertEqual(monitor.statistics.kind.malformed, 0)
    }

    /// Random label bytes never put a control character in a name.
    func testRandomLabelBytesNeverLeaveAControlCharacter() throws {
        var random = SystemRandomNumberGenerator()
        let (_, events) = try run { source in
            for id in UInt16(0)..<200 {
                let labels = (0..<Int.random(in: 1...4, using: &random)).map { _ in
                    (0..<Int.random(in: 1...20, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                }
                var sample = DNSSample()
                sample.payload = DNSSample.query(id: id, labels: labels)
                source.emit(sample.bytes)
            }
        }
        XCTAssertEqual(events.count, 200)
        for event in events {
            XCTAssertFalse(event.name.utf8.contains { $0 < 0x20 || $0 >= 0x7F }, event.name)
        }
    }

    /// The root, and a hostile process name (which the event keeps as it is: the tools escape it).
    func testRootNameAndHostileComm() throws {
        var sample = DNSSample()
        sample.payload = DNSSample.query(id: 1, name: ".", type: 2)
        sample.rawComm = [0x1B, 0x5B, 0x32, 0x4A, 0x0A]
        let (_, events) = try run { $0.emit(sample.bytes) }
        XCTAssertEqual(events.first?.name, ".")
        XCTAssertEqual(events.first?.queryType.description, "NS")
        XCTAssertEqual(events.first?.command, "\u{1b}[2J\n")
    }

    // MARK: - The monitor

    func testStatisticsBeforeStartAreZero() throws {
        let monitor = try DNSMonitor(source: MockSampleSource())
        XCTAssertEqual(monitor.statistics, DNSMonitor.Statistics())
        XCTAssertEqual(monitor.statistics.kind, DNSKind.Counters())
        XCTAssertNil(monitor.report)
    }

    func testAsyncSequenceYieldsEveryEvent() async throws {
        let source = MockSampleSource()
        let monitor = try DNSMonitor(source: source)
        let stream = try monitor.events()
        for id in UInt16(1)...20 {
            var sample = DNSSample()
            sample.payload = DNSSample.query(id: id, name: "host\(id).example")
            source.emit(sample.bytes)
        }
        monitor.stop()
        var names: [String] = []
        for await event in stream { names.append(event.name) }
        XCTAssertEqual(names, (1...20).map { "host\($0).example" })
    }

    func testInvalidOptionsAreRefused() {
        let cases: [(Int, Double)] = [(0, 30), (1_000_001, 30), (16, 0), (16, -1), (16, .infinity), (16, .nan), (16, 3601)]
        for (maxPending, timeout) in cases {
            let options = configuration(maxPending: maxPending, timeout: timeout)
            XCTAssertThrowsError(try DNSMonitor(source: MockSampleSource(), configuration: options)) { error in
                guard case BPFError.invalidArgument = error else { return XCTFail("\(error)") }
            }
        }
    }
}
