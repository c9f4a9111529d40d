import Glibc

/// Maps the kernel's monotonic timestamps (`bpf_ktime_get_ns`) to wall-clock nanoseconds since the
/// Unix epoch, with an offset taken once, when the clock is made.
public struct WallClock: Sendable {
    /// `CLOCK_REALTIME - CLOCK_MONOTONIC`, in nanoseconds.
    public let offsetNanoseconds: Int64

    /// Samples both clocks now; the smallest gap of a few tries bounds the error.
    public init() {
        var best = Int64.max
        var offset: Int64 = 0
        for _ in 0..<5 {
            let before = Self.now(CLOCK_MONOTONIC)
            let real = Self.now(CLOCK_REALTIME)
            let after = Self.now(CLOCK_MONOTONIC)
            if after - before < best {
                best = after - before
                offset = real - (before + (after - before) / 2)
            }
        }
        offsetNanoseconds = offset
    }

    /// An explicit offset, for tests.
    public init(offsetNanoseconds: Int64) { self.offsetNanoseconds = offsetNanoseconds }

    /// Wall-clock nanoseconds for a monotonic kernel timestamp.
    @inlinable public func wallClock(fromMonotonic nanoseconds: UInt64) -> UInt64 {
        UInt64(bitPattern: Int64(bitPattern: nanoseconds) &+ offsetNanoseconds)
    }

    /// Now on `clock`, in nanoseconds.
    public static func now(_ clock: clockid_t) -> Int64 {
        var spec = timespec()
        clock_gettime(clock, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }
}
