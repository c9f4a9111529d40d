import BCCRuntime

/// Decodes the raw samples of `bpf/tcp_events.c` (`struct tcp_event_t`, 128 bytes).
public enum TCPEventDecoder {
    /// The size of one sample.
    public static let sampleSize = 128

    // Field offsets in `struct tcp_event_t`; the C file lists the same numbers.
    enum Offset {
        static let timestamp = 0, start = 8, cgroup = 16, rxBytes = 24, txBytes = 32
        static let segsIn = 40, segsOut = 44, dataSegsIn = 48, dataSegsOut = 52
        static let pid = 56, uid = 60, netns = 64, family = 68, sport = 70, dport = 72
        static let oldState = 74, ownerSource = 75, saddr = 76, daddr = 92, comm = 108
    }

    /// Decodes one sample.
    /// - Parameter clock: maps the kernel's monotonic timestamps to wall-clock time.
    /// - Throws: `BPFError.malformedSample` for a short sample or values no kernel writes.
    public static func decode(_ raw: UnsafeRawBufferPointer, clock: WallClock) throws(BPFError) -> TCPConnectionEvent {
        guard raw.count >= sampleSize else {
            throw .malformedSample(expectedSize: sampleSize, actualSize: raw.count, detail: "short TCP sample")
        }
        func load<T: FixedWidthInteger>(_ offset: Int, as _: T.Type = T.self) -> T {
            raw.loadUnaligned(fromByteOffset: offset, as: T.self)
        }
        let rawFamily: UInt16 = load(Offset.family)
        guard let family = AddressFamily(rawFamily: rawFamily) else {
            throw .malformedSample(expectedSize: sampleSize, actualSize: raw.count, detail: "unknown address family \(rawFamily)")
        }
        let rawSource: UInt8 = load(Offset.ownerSource)
        guard let ownerSource = TCPConnectionEvent.OwnerSource(rawValue: rawSource) else {
            throw .malformedSample(expectedSize: sampleSize, actualSize: raw.count, detail: "unknown owner source \(rawSource)")
        }
        let rawState: UInt8 = load(Offset.oldState)
        guard let previousState = TCPState(rawValue: rawState) else {
            throw .malformedSample(expectedSize: sampleSize, actualSize: raw.count, detail: "unknown TCP state \(rawState)")
        }
        let addressLength = family == .ipv4 ? 4 : 16
        let source = IPAddress(family: family, bytes: UnsafeRawBufferPointer(rebasing: raw[Offset.saddr..<Offset.saddr + addressLength]))!
        let destination = IPAddress(family: family, bytes: UnsafeRawBufferPointer(rebasing: raw[Offset.daddr..<Offset.daddr + addressLength]))!
        let timestamp: UInt64 = load(Offset.timestamp)
        let start: UInt64 = load(Offset.start)
        return TCPConnectionEvent(
            timeNanoseconds: clock.wallClock(fromMonotonic: timestamp),
            pid: load(Offset.pid),
            uid: load(Offset.uid),
            command: decodeCommand(UnsafeRawBufferPointer(rebasing: raw[Offset.comm..<Offset.comm + 16])),
            ownerSource: ownerSource,
            family: family,
            sourceAddress: source,
            sourcePort: load(Offset.sport),
            destinationAddress: destination,
            destinationPort: load(Offset.dport),
            receivedBytes: load(Offset.rxBytes),
            sentBytes: load(Offset.txBytes),
            segmentsIn: load(Offset.segsIn),
            segmentsOut: load(Offset.segsOut),
            dataSegmentsIn: load(Offset.dataSegsIn),
            dataSegmentsOut: load(Offset.dataSegsOut),
            durationNanoseconds: start != 0 && start <= timestamp ? timestamp - start : nil,
            cgroupID: load(Offset.cgroup),
            networkNamespace: load(Offset.netns),
            previousState: previousState
        )
    }

    /// A NUL-terminated `comm`, decoded as UTF-8 with invalid bytes replaced.
    static func decodeCommand(_ bytes: UnsafeRawBufferPointer) -> String {
        let length = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<length], as: UTF8.self)
    }
}
