import Foundation
import Glibc
import TCPEvent
import UDPEvent
import XCTest

/// `comm` is the process's name (its thread-group leader's), for TCP and UDP; the name of the
/// thread that acted comes separately (`thread`) when it differs, as a `dig` query sent by its
/// `isc-net-0000` worker thread should read `comm: dig, thread: isc-net-0000`.
final class ProcessNameIntegrationTests: XCTestCase {
    static let workerName = "ne-worker-7"

    /// This process's name, as `ps` shows it (the main thread's comm).
    var processName: String {
        get throws {
            try String(contentsOfFile: "/proc/self/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
        }
    }

    /// The file name of this process's executable, as the kernel's dentry holds it (at most 63 bytes).
    var ownExecutable: String {
        String(URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "").lastPathComponent.utf8.prefix(63))!
    }

    /// Runs `body` on a new thread named `workerName`, and waits for it.
    func onNamedThread(_ body: @escaping @Sendable () throws -> Void) throws {
        let failure = Collector<String>()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            // What pthread_setname_np does for the calling thread (Glibc's module leaves it out).
            let fd = open("/proc/thread-self/comm", O_WRONLY)
            if fd >= 0 {
                _ = Array(Self.workerName.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
            do { try body() } catch { failure.add("\(error)") }
            done.signal()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success, "the worker thread did not finish")
        XCTAssertEqual(failure.events, [])
    }

    /// A socket of `type` bound to 127.0.0.1 at a port the kernel picks, and its address.
    func boundLoopbackSocket(_ type: __socket_type) throws -> (Int32, sockaddr_in) {
        let fd = socket(AF_INET, Int32(type.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound else { throw CallError(errno, "socket/bind") }
        return (fd, address)
    }

    func testTCPConnectFromAWorkerThreadNamesTheProcessAndTheThread() throws {
        try requireBPF()
        let processName = try processName
        XCTAssertNotEqual(processName, Self.workerName)
        // A listener on the main thread; the worker thread connects and closes.
        let (listener, address) = try boundLoopbackSocket(SOCK_STREAM)
        defer { close(listener) }
        XCTAssertEqual(listen(listener, 8), 0)
        let port = UInt16(bigEndian: address.sin_port)

        let monitor = try TCPMonitor(configuration: .init(filter: .init(ports: [port])))
        let events = Collector<TCPConnectionEvent>()
        try monitor.start { events.add($0) }
        defer { monitor.stop() }

        let serverAddress = address
        try onNamedThread {
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var target = serverAddress
            let connected = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw CallError(errno, "connect") }
            var byte: UInt8 = 7
            _ = send(client, &byte, 1, 0)
            close(client)
        }
        let accepted = accept(listener, nil, nil)
        XCTAssertGreaterThanOrEqual(accepted, 0)
        close(accepted)

        let all = events.wait(timeout: 20) { $0.count >= 4 }
        XCTAssertEqual(all.count, 4, "connect, accept and two closes: \(all)")
        // The connect carries the same names as the client's close.
        let connectEvent = try XCTUnwrap(all.first { $0.kind == .connect }, "\(all)")
        XCTAssertEqual(connectEvent.process, EventProcess(
                pid: getpid(), uid: getuid(), command: processName, thread: Self.workerName, executable: ownExecutable))
        let acceptEvent = try XCTUnwrap(all.first { $0.kind == .accept }, "\(all)")
        XCTAssertEqual(
            acceptEvent.process, EventProcess(pid: getpid(), uid: getuid(), command: processName, executable: ownExecutable))
        let ends = all.filter { $0.kind == .close }
        let client = try XCTUnwrap(ends.first { $0.destinationPort == port }, "\(ends)")
        let server = try XCTUnwrap(ends.first { $0.sourcePort == port }, "\(ends)")
        XCTAssertEqual(client.pid, getpid())
        XCTAssertEqual(client.ownerSource, .connect)
        XCTAssertEqual(client.command, processName, "comm is the process's name")
        XCTAssertEqual(client.thread, Self.workerName, "the connecting thread's name")
        // The main thread accepted: its name is the process's, so no separate thread name.
        XCTAssertEqual(server.ownerSource, .accept)
        XCTAssertEqual(server.command, processName)
        XCTAssertNil(server.thread)
        let line = try EventJSONEncoder().encode(client)
        XCTAssertTrue(line.contains("\"comm\":\"\(processName)\",\"thread\":\"\(Self.workerName)\""), line)
        XCTAssertFalse(try EventJSONEncoder().encode(server).contains("\"thread\""))
    }

    func testUDPFromAWorkerThreadNamesTheProcessAndTheThread() throws {
        try requireBPF()
        let processName = try processName
        let (receiver, address) = try boundLoopbackSocket(SOCK_DGRAM)
        defer { close(receiver) }
        let port = UInt16(bigEndian: address.sin_port)

        // By port: it matches the peer of an unconnected sender's datagrams (its own port is another).
        let monitor = try UDPMonitor(configuration: .init(filter: .init(ports: [port])))
        let events = Collector<UDPTrafficEvent>()
        try monitor.start { events.add($0) }

        let target = address
        try onNamedThread {
            let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var destination = target
            let payload = [UInt8](repeating: 1, count: 321)
            for _ in 0..<3 {
                let sent = withUnsafePointer(to: &destination) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(sender, payload, payload.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                guard sent == payload.count else { throw CallError(errno, "sendto") }
            }
            close(sender)
        }
        monitor.stop()  // reports what is left
        let sends = events.events.filter { $0.sentPackets > 0 && $0.sourcePort != port }
        XCTAssertTrue(sends.allSatisfy { $0.destinationPort == port && $0.destinationAddress == .v4(127, 0, 0, 1) }, "the peer: \(sends)")
        XCTAssertEqual(sends.reduce(0) { $0 + $1.sentPackets }, 3, "\(events.events)")
        XCTAssertEqual(sends.reduce(0) { $0 + $1.sentBytes }, 963)
        for event in sends {
            XCTAssertEqual(event.pid, getpid())
            XCTAssertEqual(event.command, processName, "comm is the process's name")
            XCTAssertEqual(event.executable, ownExecutable, "the executable, read in the kernel")
            XCTAssertEqual(event.thread, Self.workerName, "the sending thread's name")
        }
    }
}

private struct CallError: Error, CustomStringConvertible {
    let code: Int32
    let call: String
    init(_ code: Int32, _ call: String) { self.code = code; self.call = call }
    var description: String { "\(call): \(String(cString: strerror(code)))" }
}
