import Foundation
import NetEventsCore

/// SplitMix64 (Steele, Lea and Flood, 2014): seeded, so every run fuzzes the same inputs and a
/// failure reproduces.
public struct SplitMix64: RandomNumberGenerator {
    /// The generator's state: the seed, then each draw's.
    public var state: UInt64

    /// A generator that starts from `state`.
    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound`; `bound` must be positive.
    public mutating func below(_ bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }

    /// A random byte.
    public mutating func byte() -> UInt8 {
        UInt8(truncatingIfNeeded: next())
    }

    /// Random bytes, 8 per draw: byte by byte would dominate the fuzz's time in debug builds.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 8)
        while bytes.count < count {
            withUnsafeBytes(of: next()) { bytes += $0 }
        }
        return Array(bytes.prefix(count))
    }
}

/// Inputs for fuzzing a decoder of fixed-size kernel samples, from a seeded generator (every run
/// makes the same inputs, so a failure reproduces): random bytes of any length up to twice a
/// sample's, random bytes of a sample's exact length, and valid samples with one to eight random
/// edits (a byte set to an extreme or random value, a bit flipped, cut short, extended).
public struct SampleFuzzer {
    private var random: SplitMix64
    private let valid: [[UInt8]]

    /// A fuzzer mutating `valid` samples (all of one size), seeded with `seed`.
    public init(seed: UInt64, valid: [[UInt8]]) {
        precondition(!valid.isEmpty, "SampleFuzzer needs a valid sample to mutate")
        random = SplitMix64(state: seed)
        self.valid = valid
    }

    /// The next input.
    public mutating func next() -> [UInt8] {
        let size = valid[0].count
        switch random.below(8) {
        case 0:
            return random.bytes(random.below(2 * size + 1))
        case 1:
            return random.bytes(size)
        default:
            var bytes = valid[random.below(valid.count)]
            for _ in 0...random.below(8) {
                let position = random.below(bytes.count)
                switch random.below(5) {
                case 0: bytes[position] = [0x00, 0xFF, 0x7F, 0x80, 0x01][random.below(5)]
                case 1: bytes[position] = random.byte()
                case 2: bytes[position] ^= 1 << UInt8(random.below(8))
                case 3: bytes.removeSubrange(position...)
                default: bytes += random.bytes(1 + random.below(16))
                }
                if bytes.isEmpty { break }
            }
            return bytes
        }
    }
}

/// What ``SampleFuzzer/run(_:count:)`` saw of one kind's decoding.
public struct FuzzReport: Sendable, CustomStringConvertible {
    /// Inputs fed.
    public var inputs = 0
    /// Inputs the kind's decoder took without error, and the events they made.
    public var decoded = 0, events = 0
    /// Inputs it refused with `BPFError.malformedSample`.
    public var refused = 0
    /// Errors other than `malformedSample` (none is allowed), with their input.
    public var otherErrors: [String] = []
    /// The monitor's count of malformed samples and of dropped events, and the events it
    /// delivered, for the same inputs.
    public var monitorMalformed: UInt64 = 0, monitorDropped: UInt64 = 0, monitorEvents = 0
    /// JSON lines of delivered events that do not parse or hold a raw control character.
    public var badLines: [String] = []

    /// The promises broken: every input decoded or refused as malformed (and a tenth at least of
    /// each, or the fuzz did not reach both), the monitor counting each refused one and delivering
    /// every event, each line valid JSON with no raw control character. Empty when all hold.
    public var problems: [String] {
        var problems = otherErrors.prefix(3).map { "not malformedSample: \($0)" } + badLines.prefix(3).map { "bad JSON line: \($0)" }
        if decoded + refused != inputs { problems.append("\(inputs - decoded - refused) inputs neither decoded nor refused") }
        if decoded <= inputs / 10 || refused <= inputs / 10 { problems.append("the mutations reached too few valid or malformed samples") }
        if monitorMalformed != UInt64(refused) { problems.append("the monitor counted \(monitorMalformed) malformed of \(refused)") }
        if monitorEvents != events || monitorDropped != 0 { problems.append("the monitor delivered \(monitorEvents) events of \(events)") }
        return problems
    }

    public var description: String {
        "\(inputs) samples: \(decoded) decoded (\(events) events), \(refused) malformed; the monitor: \(monitorEvents) events, "
            + "\(monitorMalformed) malformed, \(monitorDropped) dropped"
    }
}

extension SampleFuzzer {
    /// Feeds `count` inputs to a `Kind` made without a kernel (each one decoded or refused), then
    /// the same inputs through a ``MockSampleSource`` to a monitor of the kind, and encodes each
    /// event it delivers as a JSON line.
    public mutating func run<Kind: EventKind>(_ kind: Kind.Type, count: Int) throws -> FuzzReport where Kind.Event: NetworkEvent {
        var report = FuzzReport()
        let inputs = (0..<count).map { _ in next() }
        report.inputs = inputs.count
        let decoder = try Kind(configuration: .init(), module: nil, clock: WallClock())
        var events: [Kind.Event] = []
        for input in inputs {
            do {
                try input.withUnsafeBytes { raw in try decoder.decode(raw, into: &events) }
                report.decoded += 1
            } catch let error as BPFError {
                if case .malformedSample = error { report.refused += 1 } else { report.otherErrors.append("\(error) for \(input)") }
            } catch {
                report.otherErrors.append("\(error) for \(input)")
            }
        }
        report.events = events.count

        let source = MockSampleSource()
        let monitor = try EventMonitor<Kind>(source: source)
        let recorder = EventRecorder<Kind.Event>()
        try monitor.start { recorder.record($0) }
        for input in inputs { source.emit(input) }
        monitor.stop()
        report.monitorMalformed = monitor.statistics.malformedSamples
        report.monitorDropped = monitor.statistics.droppedEvents
        report.monitorEvents = recorder.events.count
        for event in recorder.events {
            let line = try EventJSONEncoder().encode(event)
            if line.utf8.contains(where: { $0 < 0x20 }) || (try? JSONSerialization.jsonObject(with: Data(line.utf8))) == nil {
                report.badLines.append(line)
            }
        }
        return report
    }
}
