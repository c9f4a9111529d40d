import XCTest
import BCCRuntime
import Glibc
import Foundation

final class SmokeTests: XCTestCase {
    func testSmoke() throws {
        let module = try BPFModule(source: EmbeddedBPF.stateChangeProbe, cflags: [])
        print(module.headers, module.compilerOutput.prefix(500))
        let program = try module.loadProgram("tracepoint__sock__inet_sock_set_state", type: .tracepoint)
        let link = try BPFLink.tracepoint(program, category: "sock", name: "inet_sock_set_state")
        let perf = try PerfBuffer(table: module.table("events"))
        let count = Mutex2()
        try perf.start(SampleHandler(onSample: { _ in count.inc() }))
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in(); addr.sin_family = sa_family_t(AF_INET); addr.sin_port = UInt16(1).bigEndian; addr.sin_addr.s_addr = UInt32(0x7f000001).bigEndian
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        close(s)
        usleep(200_000)
        perf.close()
        link.close()
        print("samples", count.value)
        XCTAssertGreaterThan(count.value, 0)
    }
}
final class Mutex2: @unchecked Sendable { let l = NSLock(); var value = 0; func inc() { l.lock(); value += 1; l.unlock() } }
