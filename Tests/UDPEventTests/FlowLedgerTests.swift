import XCTest
@testable import UDPEvent

final class FlowLedgerTests: XCTestCase {
    let clock = WallClock(offsetNanoseconds: 1_700_000_000_000_000_000)
    /// The ledger under test: a new one for each test, as XCTest makes an instance per test.
    lazy var ledger = FlowLedger(clock: clock)

    /// Counts calls to `evict` and returns what it is given.
    final class Evictions {
        var calls = 0
        var result: UDPFlow?
        init(_ result: UDPFlow? = nil) { self.result = result }
        func evict() -> UDPFlow? {
            calls += 1
            return result
        }
    }

    func scan(
        _ ledger: FlowLedger, _ flow: UDPFlow?, reason: UDPTrafficEvent.Reason = .interval, at time: UInt64 = 42,
        idleLimit: Int? = nil, evictions: Evictions = Evictions()
    ) -> UDPTrafficEvent? {
        ledger.scan(reason: reason, at: time, idleLimit: idleLimit, fetch: { flow }, evict: { evictions.evict() })
    }

    func testScanReportsTheDeltaSinceThePreviousReport() throws {
        let first = try XCTUnwrap(scan(ledger, makeFlow(start: 500, counts: counts(tx: 100, rx: 10, txPackets: 1, rxPackets: 1)), at: 7))
        XCTAssertEqual(first.reason, .interval)
        XCTAssertEqual(first.timeNanoseconds, 7)
        XCTAssertEqual(first.deltaCounts, counts(tx: 100, rx: 10, txPackets: 1, rxPackets: 1))
        XCTAssertEqual(first.pid, 100)
        XCTAssertEqual(first.uid, 1000)
        XCTAssertEqual(first.command, "flowtest")
        XCTAssertEqual(first.family, .ipv4)
        XCTAssertEqual(first.sourcePort, 5353)
        XCTAssertEqual(first.destinationPort, 0)
        XCTAssertFalse(first.hasPeer)
        XCTAssertEqual(first.cgroupID, 9)
        XCTAssertEqual(first.networkNamespace, 4_026_531_840)
        XCTAssertEqual(first.socketID, 0xffff_8880_0000_1000 + 1000, "the cookie of the flow")
        XCTAssertEqual(first.socketFirstSeenNanoseconds, 1_700_000_000_000_000_500)
        XCTAssertEqual(ledger.count, 1)

        let second = try XCTUnwrap(scan(ledger, makeFlow(start: 500, counts: counts(tx: 150, rx: 30, txPackets: 2, rxPackets: 3)), at: 8))
        XCTAssertEqual(second.deltaCounts, counts(tx: 50, rx: 20, txPackets: 1, rxPackets: 2))
        XCTAssertEqual(second.timeNanoseconds, 8)

        // Only one direction moved.
        let third = try XCTUnwrap(scan(ledger, makeFlow(start: 500, counts: counts(tx: 150, rx: 31, txPackets: 2, rxPackets: 4))))
        XCTAssertEqual(third.deltaCounts, counts(tx: 0, rx: 1, txPackets: 0, rxPackets: 1))
        XCTAssertEqual(ledger.count, 1)
    }

    func testNoEventWhenNothingMoved() {
        let flow = makeFlow(counts: counts(tx: 10, rx: 0, txPackets: 1, rxPackets: 0))
        XCTAssertNotNil(scan(ledger, flow))
        XCTAssertNil(scan(ledger, flow))
        XCTAssertNil(scan(ledger, flow, reason: .stop))
        XCTAssertNil(scan(ledger, flow, idleLimit: 100))
        // A fresh entry nothing was counted in yet.
        XCTAssertNil(scan(ledger, makeFlow(pid: 5, counts: .init())))
    }

    func testFinishAfterAScanReportsOnlyTheRemainderThenForgetsThePair() throws {
        XCTAssertNotNil(scan(ledger, makeFlow(start: 1, counts: counts(tx: 100, rx: 100, txPackets: 1, rxPackets: 1))))
        var last = makeFlow(start: 1, counts: counts(tx: 130, rx: 100, txPackets: 4, rxPackets: 1))
        last.closeNanoseconds = 77
        let close = try XCTUnwrap(ledger.finish(last, reason: .close, at: 99))
        XCTAssertEqual(close.reason, .close)
        XCTAssertEqual(close.timeNanoseconds, 99)
        XCTAssertEqual(close.deltaCounts, counts(tx: 30, rx: 0, txPackets: 3, rxPackets: 0))
        XCTAssertEqual(ledger.count, 0, "the pair is forgotten")

        // Address reuse: a new socket at the same address, same process, later start: counts from zero.
        let reused = try XCTUnwrap(scan(ledger, makeFlow(start: 2, counts: counts(tx: 5, rx: 6, txPackets: 1, rxPackets: 1))))
        XCTAssertEqual(reused.deltaCounts, counts(tx: 5, rx: 6, txPackets: 1, rxPackets: 1))
        XCTAssertEqual(reused.socketFirstSeenNanoseconds, clock.wallClock(fromMonotonic: 2))
    }

    func testFinishWithoutAPreviousScanReportsEverything() throws {
        let close = try XCTUnwrap(ledger.finish(makeFlow(counts: counts(tx: 1, rx: 2, txPackets: 3, rxPackets: 4)), reason: .close, at: 5))
        XCTAssertEqual(close.deltaCounts, counts(tx: 1, rx: 2, txPackets: 3, rxPackets: 4))
        XCTAssertEqual(ledger.count, 0)
    }

    func testNoCloseCarriesNothingNew() throws {
        // Nothing moved since the last scan: the close makes no event of zeros, and the pair is forgotten.
        let flow = makeFlow(pid: 2, counts: counts(tx: 9, rx: 0, txPackets: 1, rxPackets: 0))
        XCTAssertNotNil(scan(ledger, flow))
        XCTAssertNil(ledger.finish(flow, reason: .close, at: 6))
        XCTAssertEqual(ledger.count, 0, "and the pair is forgotten")
        // What moved after the scan is the close's whole report.
        var moved = flow
        moved.key.pid = 3
        XCTAssertNotNil(scan(ledger, moved))
        moved.counts = counts(tx: 19, rx: 4, txPackets: 2, rxPackets: 1)
        let close = try XCTUnwrap(ledger.finish(moved, reason: .close, at: 7))
        XCTAssertEqual(close.reason, .close)
        XCTAssertEqual(close.deltaCounts, counts(tx: 10, rx: 4, txPackets: 1, rxPackets: 1))
        // No final report without movement, whatever the reason.
        for reason: UDPTrafficEvent.Reason in [.close, .idle, .stop] {
            XCTAssertNil(ledger.finish(makeFlow(pid: 4), reason: reason, at: 8), "\(reason)")
        }
    }

    func testReusedAddressWithAnEntryStillOnRecordCountsFromZero() throws {
        // The old socket's close sample was lost: its report is still on record.
        XCTAssertNotNil(scan(ledger, makeFlow(start: 1, counts: counts(tx: 1_000, rx: 1_000, txPackets: 10, rxPackets: 10))))
        let reused = try XCTUnwrap(scan(ledger, makeFlow(start: 2, counts: counts(tx: 30, rx: 0, txPackets: 1, rxPackets: 0))))
        XCTAssertEqual(reused.deltaCounts, counts(tx: 30, rx: 0, txPackets: 1, rxPackets: 0), "no wrap-around from the old counts")
    }

    func testPairsAreKeptApartBySocketAndPid() throws {
        let c = counts(tx: 10, rx: 10, txPackets: 1, rxPackets: 1)
        XCTAssertNotNil(scan(ledger, makeFlow(socket: 1, pid: 1, counts: c)))
        XCTAssertNotNil(scan(ledger, makeFlow(socket: 1, pid: 2, counts: c)))
        XCTAssertNotNil(scan(ledger, makeFlow(socket: 2, pid: 1, counts: c)))
        XCTAssertEqual(ledger.count, 3)
        XCTAssertNil(scan(ledger, makeFlow(socket: 1, pid: 2, counts: c)))
        XCTAssertEqual(try XCTUnwrap(ledger.finish(makeFlow(socket: 1, pid: 1, counts: counts(tx: 11, rx: 10, txPackets: 2, rxPackets: 1)), reason: .close, at: 0)).sentBytes, 1)
        XCTAssertEqual(ledger.count, 2)
    }

    func testIdleEvictionAfterThreeScansWithoutMovement() throws {
        let flow = makeFlow(counts: counts(tx: 100, rx: 50, txPackets: 2, rxPackets: 1))
        // Traffic that arrived between the scan's read and the eviction is the remainder.
        let last = makeFlow(counts: counts(tx: 107, rx: 50, txPackets: 3, rxPackets: 1))
        let evictions = Evictions(last)
        XCTAssertNotNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        XCTAssertNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        XCTAssertNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        XCTAssertEqual(evictions.calls, 0, "two idle scans are not enough")
        let idle = try XCTUnwrap(scan(ledger, flow, at: 1234, idleLimit: 3, evictions: evictions))
        XCTAssertEqual(evictions.calls, 1)
        XCTAssertEqual(idle.reason, .idle)
        XCTAssertEqual(idle.timeNanoseconds, 1234)
        XCTAssertEqual(idle.deltaCounts, counts(tx: 7, rx: 0, txPackets: 1, rxPackets: 0))
        XCTAssertEqual(ledger.count, 0, "an evicted pair is forgotten")
    }

    func testIdleEvictionWithNothingLeftIsSilentButForgetsThePair() {
        // The usual case: nothing moved at all, so the remainder is zero and no event is made.
        let flow = makeFlow(counts: counts(tx: 100, rx: 50, txPackets: 2, rxPackets: 1))
        let evictions = Evictions(flow)
        XCTAssertNotNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        for _ in 0..<3 { XCTAssertNil(scan(ledger, flow, idleLimit: 3, evictions: evictions)) }
        XCTAssertEqual(evictions.calls, 1)
        XCTAssertEqual(ledger.count, 0)
    }

    func testMovementResetsTheIdleCount() {
        var flow = makeFlow(counts: counts(tx: 1, rx: 0, txPackets: 1, rxPackets: 0))
        let evictions = Evictions(flow)
        XCTAssertNotNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        XCTAssertNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        XCTAssertNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        flow.counts.txBytes += 1
        flow.counts.txPackets += 1
        evictions.result = flow  // what the kernel holds now
        XCTAssertNotNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        XCTAssertNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        XCTAssertNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        XCTAssertEqual(evictions.calls, 0)
        XCTAssertNil(scan(ledger, flow, idleLimit: 3, evictions: evictions))
        XCTAssertEqual(evictions.calls, 1)
    }

    func testIdleLimitOneEvictsAtTheFirstIdleScan() {
        let flow = makeFlow(counts: counts(tx: 1, rx: 0, txPackets: 1, rxPackets: 0))
        let evictions = Evictions(flow)
        XCTAssertNotNil(scan(ledger, flow, idleLimit: 1, evictions: evictions))
        XCTAssertEqual(evictions.calls, 0, "a scan that reports is not idle")
        XCTAssertNil(scan(ledger, flow, idleLimit: 1, evictions: evictions))
        XCTAssertEqual(evictions.calls, 1)
    }

    func testOnlyIntervalScansWithALimitEvict() {
        let flow = makeFlow(counts: counts(tx: 1, rx: 0, txPackets: 1, rxPackets: 0))
        let evictions = Evictions(flow)
        XCTAssertNotNil(scan(ledger, flow))
        for _ in 0..<10 {
            XCTAssertNil(scan(ledger, flow, idleLimit: nil, evictions: evictions))
            XCTAssertNil(scan(ledger, flow, reason: .stop, idleLimit: 1, evictions: evictions))
        }
        XCTAssertEqual(evictions.calls, 0)
        XCTAssertEqual(ledger.count, 1)
    }

    func testEvictionThatFindsNothingProducesNothing() {
        let flow = makeFlow(counts: counts(tx: 1, rx: 0, txPackets: 1, rxPackets: 0))
        let evictions = Evictions(nil)  // closed between the read and the eviction
        XCTAssertNotNil(scan(ledger, flow, idleLimit: 1, evictions: evictions))
        XCTAssertNil(scan(ledger, flow, idleLimit: 1, evictions: evictions))
        XCTAssertEqual(evictions.calls, 1)
        // The close sample then reports the remainder.
        var last = flow
        last.counts.rxBytes = 9
        last.counts.rxPackets = 1
        XCTAssertEqual(ledger.finish(last, reason: .close, at: 0)?.deltaCounts, counts(tx: 0, rx: 9, txPackets: 0, rxPackets: 1))
    }

    func testScanOfAGoneEntryProducesNothing() {
        let evictions = Evictions(makeFlow(counts: counts(tx: 1, rx: 1, txPackets: 1, rxPackets: 1)))
        for reason in [UDPTrafficEvent.Reason.interval, .stop] {
            XCTAssertNil(scan(ledger, nil, reason: reason, idleLimit: 1, evictions: evictions))
        }
        XCTAssertEqual(evictions.calls, 0)
        XCTAssertEqual(ledger.count, 0)
    }

    /// Random interleavings of traffic, scans (with idle eviction, and traffic racing the eviction),
    /// closes and socket reuse: every pair's events add up exactly to its traffic.
    func testEventsSumToTheTrafficOverRandomInterleavings() {
        var random = LCG(seed: 0x5eed_cafe)
        let socket: UInt64 = 0xffff_8880_0000_2000
        let pids: [UInt32] = [100, 200, 300]
        var totalEvents = 0
        var reasonsSeen = Set<UDPTrafficEvent.Reason>()
        for iteration in 0..<1000 {
            let ledger = FlowLedger(clock: clock)
            let idleLimit: Int? = [nil, 1, 2, 3][random.below(4)]
            var kernel: [UInt32: UDPFlow] = [:]  // the flows map, for one socket
            var traffic: [UInt32: UDPFlow.Counts] = [:]  // what was really sent and received
            var reported: [UInt32: UDPFlow.Counts] = [:]  // what the events add up to
            var monotonic: UInt64 = 1

            func add(_ event: UDPTrafficEvent?) {
                guard let event else { return }
                let pid = UInt32(event.pid)
                if event.reason != .close { XCTAssertFalse(event.deltaCounts.isZero, "\(event.reason) with nothing moved") }
                reported[pid, default: .init()].txBytes += event.sentBytes
                reported[pid, default: .init()].rxBytes += event.receivedBytes
                reported[pid, default: .init()].txPackets += event.sentPackets
                reported[pid, default: .init()].rxPackets += event.receivedPackets
                reasonsSeen.insert(event.reason)
                totalEvents += 1
            }
            func packet(_ pid: UInt32) {
                monotonic += 1
                if kernel[pid] == nil { kernel[pid] = makeFlow(socket: socket, pid: pid, start: monotonic) }
                let bytes = UInt64(1 + random.below(1500))
                if random.chance(50) {
                    kernel[pid]!.counts.txBytes += bytes
                    kernel[pid]!.counts.txPackets += 1
                    traffic[pid, default: .init()].txBytes += bytes
                    traffic[pid, default: .init()].txPackets += 1
                } else {
                    kernel[pid]!.counts.rxBytes += bytes
                    kernel[pid]!.counts.rxPackets += 1
                    traffic[pid, default: .init()].rxBytes += bytes
                    traffic[pid, default: .init()].rxPackets += 1
                }
            }
            func close(_ pid: UInt32) {
                guard var flow = kernel.removeValue(forKey: pid) else { return }
                monotonic += 1
                flow.closeNanoseconds = monotonic
                add(ledger.finish(flow, reason: .close, at: monotonic))
            }

            let steps = 20 + random.below(80)
            for _ in 0..<steps {
                let pid = pids[random.below(pids.count)]
                switch random.below(10) {
                case 0..<5:
                    packet(pid)
                case 5..<9:
                    let reason: UDPTrafficEvent.Reason = random.chance(90) ? .interval : .stop
                    for pid in pids {
                        // A close processed between the map walk and the read: the scan finds nothing.
                        if random.chance(3) { close(pid) }
                        let racing = random.chance(30)
                        add(ledger.scan(
                            reason: reason, at: monotonic, idleLimit: reason == .interval ? idleLimit : nil,
                            fetch: { kernel[pid] },
                            evict: {
                                if racing { packet(pid) }  // traffic between the read and the eviction
                                return kernel.removeValue(forKey: pid)
                            }))
                    }
                default:
                    close(pid)  // the socket address may be reused by the next packet
                }
            }
            for pid in pids { close(pid) }

            for pid in pids {
                XCTAssertEqual(reported[pid] ?? .init(), traffic[pid] ?? .init(), "iteration \(iteration), pid \(pid)")
            }
            XCTAssertEqual(ledger.count, 0, "iteration \(iteration): every pair is finished")
        }
        XCTAssertGreaterThan(totalEvents, 1000)
        XCTAssertEqual(reasonsSeen, [.interval, .close, .stop, .idle], "the loop exercised every kind of report")
    }
}

final class FlowLedgerPruningTests: XCTestCase {
    /// A pair whose kernel entry vanished without a close sample (the sample was lost) is forgotten
    /// after three scans without it, and only then.
    func testPairsAbsentForThreeScansAreForgotten() {
        let ledger = FlowLedger(clock: WallClock(offsetNanoseconds: 0))
        let flow = makeFlow(socket: 7, counts: .init(txBytes: 10, rxBytes: 0, txPackets: 1, rxPackets: 0))
        XCTAssertNotNil(ledger.scan(reason: .interval, at: 0, idleLimit: nil, fetch: { flow }, evict: { nil }))
        ledger.endScan()
        XCTAssertEqual(ledger.count, 1)
        for _ in 0..<2 {
            XCTAssertNil(ledger.scan(reason: .interval, at: 0, idleLimit: nil, fetch: { nil }, evict: { nil }))
            ledger.endScan()
            XCTAssertEqual(ledger.count, 1, "kept while a close sample could still be in flight")
        }
        ledger.endScan()
        XCTAssertEqual(ledger.count, 0)
    }
}
