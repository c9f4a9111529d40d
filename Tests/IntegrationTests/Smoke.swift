import BCCRuntime
import Foundation
import Glibc
import Synchronization
import XCTest

/// The shortest end-to-end check that the runtime works on this kernel: compile, load, attach a
/// tracepoint, read a perf buffer. `RuntimeIntegrationTests` checks each step in detail; this one
/// is quick to run on a new machine or kernel (`--filter IntegrationTests.SmokeTests`).
final class SmokeTests: XCTestCase {
    func testSmoke() throws {
        try requireBPF()
        let module = try BPFModule(source: EmbeddedBPF.stateChangeProbe, cflags: [])
        print("headers: \(module.headers.source) \(module.headers.path ?? "(found by BCC)")")
        print("kernel features: \(KernelFeatures.shared.summary)")
        let program = try module.loadProgram("tracepoint__sock__inet_sock_set_state", type: .tracepoint)
        let link = try BPFLink.tracepoint(program, category: "sock", name: "inet_sock_set_state")
        let perf = try PerfBuffer(table: module.table("events"))
        let count = Atomic<Int>(0)
        try perf.start(SampleHandler(onSample: { _ in count.add(1, ordering: .relaxed) }))
        defer {
            perf.close()
            link.close()
            program.close()
        }

        // A connection to a closed loopback port: SYN_SENT, then CLOSE on the RST.
        let deadline = Date().addingTimeInterval(5)
        while count.load(ordering: .relaxed) == 0 && Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(1).bigEndian
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            usleep(20_000)
        }
        XCTAssertGreaterThan(count.load(ordering: .relaxed), 0, "no state change seen within 5 s")
    }
}
