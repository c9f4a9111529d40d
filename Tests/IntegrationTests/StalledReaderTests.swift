import Foundation
import Glibc
import XCTest

/// `tcp-events --json | sleep 100`: a reader that never reads. The tool's output pipe fills, its
/// delivery thread blocks in `write(1)` for good, and still SIGINT ends it: stop gives up on the
/// blocked delivery after the grace period (`MonitorConfiguration.stopGracePeriod`, 2 s), counts
/// what was not printed as dropped, and the tool says so and exits 0.
final class StalledReaderTests: XCTestCase {
    /// The grace period the tools run with (the configuration's default).
    static let grace: Double = 2

    func testAStalledReaderCannotKeepTheToolFromEndingOnSIGINT() throws {
        try requireBPF()
        let tool = try builtExecutable("tcp-events").path
        let traffic = try TrafficProcess.executable.path
        let port = freePort()
        let output = try Self.pipe(), errors = try Self.pipe()
        let pid = try spawn([tool, "--json", "--port", "\(port)"], output: output.write, errors: errors.write)
        close(output.write)
        close(errors.write)
        defer { close(output.read) }  // never read: the stalled reader
        // Reaped on a thread of its own, so its exit can be waited for with a bound.
        let exited = DispatchSemaphore(value: 0)
        let status = Collector<Int32>()
        Thread.detachNewThread {
            status.add(reap(pid))
            exited.signal()
        }
        var ended = false
        defer {
            if !ended {
                kill(pid, SIGKILL)
                exited.wait()
            }
        }
        let errorLines = Collector<String>(lines: FileHandle(fileDescriptor: errors.read, closeOnDealloc: true))
        XCTAssertNotNil(errorLines.first(timeout: 30) { $0.hasPrefix("Tracing") }, "no Tracing line: \(errorLines.events)")

        // 1,000 connections are about 4,000 JSON lines, some megabytes: far more than the pipe's 64 KB.
        let burst = try spawnToEnd([traffic, "tcp-burst", "--count", "1000", "--port", "\(port)"])
        XCTAssertEqual(burst.status, 0, burst.output)
        // The pipe is full (15 of its 16 pages at least): the tool is blocked in write(1).
        let full = 15 * 4096
        var buffered: Int32 = 0
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            guard ioctl(output.read, UInt(FIONREAD), &buffered) == 0 else { return XCTFail("FIONREAD: errno \(errno)") }
            if buffered >= full { break }
            usleep(10_000)
        }
        XCTAssertGreaterThanOrEqual(Int(buffered), full, "the tool never filled its output pipe")

        let interrupted = Date()
        kill(pid, SIGINT)
        // The grace and a generous 10 s for detaching, the final scan and exiting on a busy machine.
        let bound = Self.grace + 10
        ended = exited.wait(timeout: .now() + bound) == .success
        XCTAssertTrue(ended, "tcp-events still runs \(bound) s after SIGINT with its reader stalled")
        guard ended else { return }
        print("tcp-events ended \(String(format: "%.2f", Date().timeIntervalSince(interrupted))) s after SIGINT")
        XCTAssertEqual(status.events, [0], "exit status 0 (wait status \(status.events))")

        let summary = try XCTUnwrap(errorLines.first(timeout: 5) { $0.contains(" events printed; ") }, "no summary: \(errorLines.events)")
        print(summary)
        let dropped = try XCTUnwrap(Self.count("dropped", in: summary), summary)
        XCTAssertGreaterThan(dropped, 0, "the events the stalled reader never took are counted: \(summary)")
    }

    /// A pipe whose ends are closed in children other than the one they are given to.
    static func pipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [0, 0]
        guard ends.withUnsafeMutableBufferPointer({ Glibc.pipe($0.baseAddress!) }) == 0 else {
            throw TrafficError.notBuilt("pipe: errno \(errno)")
        }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return (ends[0], ends[1])
    }

    /// The number after `word` in the summary line (`..., dropped 123, ...`).
    static func count(_ word: String, in line: String) -> UInt64? {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "," || $0 == ";" })
        guard let index = words.firstIndex(of: Substring(word)), index + 1 < words.endIndex else { return nil }
        return UInt64(words[index + 1])
    }
}
