internal import CNetEventsABI

/// Decodes the samples of `bpf/tcp_events.c` (`struct ne_tcp_event` of the `tcp_events_abi.h`
/// contract header).
public enum TCPEventDecoder {
    /// The size of one sample.
    public static let sampleSize = MemoryLayout<ne_tcp_event>.size

    /// Decodes one sample.
    /// - Parameters:
    ///   - raw: one sample, as the kernel wrote it.
    ///   - clock: maps the kernel's monotonic timestamps to wall-clock time.
    /// - Throws: `BPFError.malformedSample` for a short sample or values no kernel writes.
    public static func decode(_ raw: UnsafeRawBufferPointer, clock: WallClock) throws(BPFError) -> TCPConnectionEvent {
        try decode(raw, clock: clock) { pid, uid, comm, thread, exe in
            EventProcess(
                pid: pid, uid: uid, command: SampleText.command(comm), thread: SampleText.command(thread),
                executable: SampleText.executable(exe))
        }
    }

    /// Decodes one of a series of samples, reusing the names of the one before when its
    /// process's names are the same.
    /// - Parameters:
    ///   - raw: one sample, as the kernel wrote it.
    ///   - clock: maps the kernel's monotonic timestamps to wall-clock time.
    ///   - names: the names of the series' samples so far.
    /// - Throws: `BPFError.malformedSample` for a short sample or values no kernel writes.
    public static func decode(_ raw: UnsafeRawBufferPointer, clock: WallClock, names: inout ProcessNames) throws(BPFError) -> TCPConnectionEvent {
        try decode(raw, clock: clock) { names.process(pid: $0, uid: $1, comm: $2, thread: $3, exe: $4) }
    }

    /// Decodes a sample with `process` making its process from the pid, uid and name fields.
    @inline(__always)
    private static func decode(
        _ raw: UnsafeRawBufferPointer, clock: WallClock,
        process: (Int32, UInt32, UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> EventProcess
    ) throws(BPFError) -> TCPConnectionEvent {
        guard raw.count >= sampleSize else {
            throw .malformedSample(expectedSize: sampleSize, actualSize: raw.count, detail: "short TCP sample")
        }
        var sample = raw.loadUnaligned(as: ne_tcp_event.self)
        guard let family = AddressFamily(rawFamily: sample.family) else {
            throw .malformedSample(expectedSize: sampleSize, actualSize: raw.count, detail: "unknown address family \(sample.family)")
        }
        guard let ownerSource = TCPConnectionEvent.OwnerSource(rawValue: sample.owner_source), ownerSource != .openFile else {
            throw .malformedSample(expectedSize: sampleSize, actualSize: raw.count, detail: "unknown owner source \(sample.owner_source)")
        }
        guard let kind = TCPConnectionEvent.Kind(sampleKind: sample.kind) else {
            throw .malformedSample(expectedSize: sampleSize, actualSize: raw.count, detail: "unknown TCP event kind \(sample.kind)")
        }
        // An accept is no state change (0); every other kind left a real state.
        let previousState = TCPState(rawValue: sample.oldstate)
        guard previousState != nil || (kind == .accept && sample.oldstate == 0) else {
            throw .malformedSample(expectedSize: sampleSize, actualSize: raw.count, detail: "unknown TCP state \(sample.oldstate)")
        }
        let elapsed = sample.start_ns != 0 && sample.start_ns <= sample.ts_ns ? sample.ts_ns - sample.start_ns : nil
        return TCPConnectionEvent(
            kind: kind,
            timeNanoseconds: clock.wallClock(fromMonotonic: sample.ts_ns),
            process: withUnsafeBytes(of: &sample.comm) { comm in
                withUnsafeBytes(of: &sample.thread) { thread in
                    withUnsafeBytes(of: &sample.exe) { exe in
                        process(Int32(bitPattern: sample.pid), sample.uid, comm, thread, exe)
                    }
                }
            },
            ownerSource: ownerSource,
            endpoints: SocketEndpoints(
                family: family,
                sourceAddress: withUnsafeBytes(of: &sample.saddr) { IPAddress(family: family, bytes: $0)! },
                sourcePort: sample.sport,
                destinationAddress: withUnsafeBytes(of: &sample.daddr) { IPAddress(family: family, bytes: $0)! },
                destinationPort: sample.dport),
            receivedBytes: sample.rx_bytes,
            sentBytes: sample.tx_bytes,
            segmentsIn: sample.segs_in,
            segmentsOut: sample.segs_out,
            dataSegmentsIn: sample.data_segs_in,
            dataSegmentsOut: sample.data_segs_out,
            durationNanoseconds: kind == .close || kind == .fail ? elapsed : nil,
            cgroupID: sample.cgroup_id,
            networkNamespace: sample.netns,
            previousState: previousState,
            latencyNanoseconds: kind == .connect ? elapsed : nil,
            error: kind == .fail && sample.error != 0 ? TCPConnectError(code: sample.error) : nil,
            health: TCPHealth(
                smoothedRTTMicroseconds: sample.srtt_us, rttVarianceMicroseconds: sample.rttvar_us,
                minimumRTTMicroseconds: sample.min_rtt_us == .max ? nil : sample.min_rtt_us, retransmits: sample.retransmits),
            socketID: sample.socket_id == 0 ? nil : sample.socket_id
        )
    }
}
