import Foundation
import Glibc
import TCPEvent
import UDPEvent
import XCTest
@testable import NetEventsCore

/// The flags the core adds to every kind's program (transport, ring size) and the kinds' map sizes,
/// checked where they end up: in the maps the kernel made. Needs root.
final class ProgramLoaderIntegrationTests: XCTestCase {
    override func setUpWithError() throws {
        try requireBPF()
    }

    /// Loads `configuration`'s program, hands it to `body`, then detaches everything.
    func withLoaded<Kind: EventKind>(
        _ configuration: MonitorConfiguration<Kind>, as kind: Kind.Type, _ body: (ProgramLoader.Loaded<Kind>) throws -> Void
    ) throws {
        let loaded = try ProgramLoader.load(configuration, as: kind)
        defer {
            loaded.links.forEach { $0.close() }
            loaded.source.close()
        }
        try body(loaded)
    }

    /// `-DUSE_RINGBUF -DRINGBUF_PAGES=n`: the `events` map is a ring of `n` pages.
    func testTheRingBufferHasTheConfiguredPages() throws {
        guard KernelFeatures.shared.ringBuffer.isYes else { throw XCTSkip("no BPF ring buffer: \(KernelFeatures.shared.ringBuffer)") }
        for pages in [16, 128] {
            var tcp = TCPMonitor.Configuration(filter: .init(ports: [freePort()]))
            tcp.transport = .ringBuffer
            tcp.bufferPages = pages
            try withLoaded(tcp, as: TCPKind.self) { loaded in
                XCTAssertEqual(loaded.report.transport, .ringBuffer)
                let events = try loaded.module.table("events")
                XCTAssertEqual(events.type, .ringBuffer)
                XCTAssertEqual(events.maxEntries, pages * Int(getpagesize()), "a ring of \(pages) pages")
                XCTAssertTrue(loaded.source is RingBuffer)
            }
            var udp = UDPMonitor.Configuration(filter: .init(ports: [freePort(udp: true)]))
            udp.transport = .ringBuffer
            udp.bufferPages = pages
            try withLoaded(udp, as: UDPKind.self) { loaded in
                XCTAssertEqual(try loaded.module.table("events").maxEntries, pages * Int(getpagesize()))
            }
        }
    }

    /// Without `-DUSE_RINGBUF` the `events` map is a perf event array, read by a perf buffer.
    func testThePerfBufferTransportDeclaresAPerfEventArray() throws {
        var tcp = TCPMonitor.Configuration(filter: .init(ports: [freePort()]))
        tcp.transport = .perfBuffer
        tcp.bufferPages = 8
        try withLoaded(tcp, as: TCPKind.self) { loaded in
            XCTAssertEqual(loaded.report.transport, .perfBuffer)
            XCTAssertEqual(try loaded.module.table("events").type, .perfEventArray)
            XCTAssertTrue(loaded.source is PerfBuffer)
        }
        var udp = UDPMonitor.Configuration()
        udp.transport = .perfBuffer
        udp.closeHook = UDPKind.CloseHook.none
        try withLoaded(udp, as: UDPKind.self) { loaded in
            XCTAssertEqual(try loaded.module.table("events").type, .perfEventArray)
        }
    }

    /// `-DMAX_SOCKETS` and `-DMAX_FLOWS` size the kinds' maps; `stats` has a slot per counter.
    func testTheKindsMapsHaveTheConfiguredSizes() throws {
        var tcp = TCPMonitor.Configuration(filter: .init(ports: [freePort()]))
        tcp.maxTrackedSockets = 1_024
        try withLoaded(tcp, as: TCPKind.self) { loaded in
            let owners = try loaded.module.table("owners")
            XCTAssertEqual(owners.maxEntries, 1_024)
            XCTAssertEqual(owners.type, .lruHash)
            XCTAssertEqual(owners.keySize, 8)
            XCTAssertEqual(owners.valueSize, 128, "struct ne_tcp_owner")
            XCTAssertEqual(try loaded.module.table("stats").type, .perCPUArray)
            XCTAssertEqual(loaded.report.hook, loaded.report.hooks.hook)
            XCTAssertFalse(loaded.report.attachments.isEmpty)
        }
        var udp = UDPMonitor.Configuration(filter: .init(ports: [freePort(udp: true)]))
        udp.maxFlows = 2_048
        try withLoaded(udp, as: UDPKind.self) { loaded in
            let flows = try loaded.module.table("flows")
            XCTAssertEqual(flows.maxEntries, 2_048)
            XCTAssertEqual(flows.keySize, 32, "struct ne_udp_key: socket, pid, peer")
            XCTAssertEqual(flows.valueSize, 208, "struct ne_udp_flow")
            XCTAssertFalse(loaded.report.attachments.isEmpty)
        }
    }

    /// Offsets from BTF where the kernel has it: the report says so, and nothing is flagged.
    func testOffsetsComeFromBTFWhereTheKernelHasIt() throws {
        guard KernelFeatures.shared.btf.isYes else { throw XCTSkip("this kernel has no BTF") }
        try withLoaded(TCPMonitor.Configuration(filter: .init(ports: [freePort()])), as: TCPKind.self) { loaded in
            XCTAssertEqual(loaded.report.offsetSource, .btf)
            XCTAssertFalse(loaded.report.offsetsUntrusted)
            XCTAssertFalse(loaded.report.description.contains("WARNING"), loaded.report.description)
        }
    }
}
