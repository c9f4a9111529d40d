@testable import BCCRuntime
import Glibc
import XCTest

/// Capabilities read from `/proc/PID/status`, the needs the monitors check, and the error that
/// names what is missing.
final class CapabilitiesTests: XCTestCase {
    /// Root's full set on a machine whose bounding set lacks CAP_SYS_RESOURCE (24), as this one's does.
    static let status = """
        Name:\tcat
        Uid:\t0\t0\t0\t0
        CapInh:\t0000000000000000
        CapPrm:\t000001fffeffffff
        CapEff:\t000001fffeffffff
        CapBnd:\t000001fffeffffff
        CapAmb:\t0000000000000000
        """

    func testTheEffectiveSetIsTheCapEffLine() throws {
        let set = try XCTUnwrap(CapabilitySet.effective(inStatus: Self.status))
        XCTAssertEqual(set.mask, 0x1ff_feff_ffff)
        for capability in [Capability.dacReadSearch, .netAdmin, .sysPtrace, .sysAdmin, .perfmon, .bpf] {
            XCTAssertTrue(set.contains(capability), capability.name)
        }
        XCTAssertFalse(set.contains(.sysResource), "bit 24 is clear")
        // Not CapPrm or CapBnd: only the effective set counts.
        let dropped = Self.status.replacingOccurrences(of: "CapEff:\t000001fffeffffff", with: "CapEff:\t0000008000000000")
        XCTAssertEqual(CapabilitySet.effective(inStatus: dropped), CapabilitySet([.bpf]))
        XCTAssertEqual(CapabilitySet.effective(inStatus: "CapEff:\t0000000000000000\n"), CapabilitySet(mask: 0))
    }

    func testAStatusWithoutAReadableCapEffGivesNil() {
        XCTAssertNil(CapabilitySet.effective(inStatus: "Name:\tcat\nCapPrm:\t000001ffffffffff\n"))
        XCTAssertNil(CapabilitySet.effective(inStatus: "CapEff:\tzz\n"))
        XCTAssertNil(CapabilitySet.effective(inStatus: ""))
    }

    func testMasksNamesAndDescriptions() {
        XCTAssertEqual(CapabilitySet([.bpf]).mask, 1 << 39)
        XCTAssertEqual(CapabilitySet([.perfmon, .dacReadSearch]).mask, 1 << 38 | 1 << 2)
        XCTAssertEqual(CapabilitySet([.bpf, .netAdmin, .perfmon]).capabilities, [.netAdmin, .perfmon, .bpf], "by number")
        XCTAssertEqual(CapabilitySet([.bpf, .perfmon]).description, "CAP_PERFMON, CAP_BPF")
        XCTAssertEqual(CapabilitySet(mask: 0).description, "none")
        XCTAssertEqual(CapabilitySet(mask: 1 << 5).description, "0x20", "only capabilities without a name here")
        XCTAssertEqual(Capability.dacReadSearch.shortName, "dac_read_search")
        XCTAssertEqual(Capability.bpf.description, "CAP_BPF")
    }

    /// The kernel takes CAP_SYS_ADMIN for CAP_BPF, CAP_PERFMON and the eBPF uses of
    /// CAP_NET_ADMIN, and CAP_DAC_OVERRIDE for reading tracefs; nothing stands in for
    /// CAP_SYS_PTRACE.
    func testNeedsAreMetByTheCapabilityOrItsAlternatives() {
        let admin = CapabilitySet([.sysAdmin])
        for need in [CapabilityNeed.programs, .tracing, .cgroupPrograms] {
            XCTAssertTrue(need.isMet(by: admin), need.description)
            XCTAssertTrue(need.isMet(by: CapabilitySet([need.capability])), need.description)
            XCTAssertFalse(need.isMet(by: CapabilitySet([.dacOverride, .sysPtrace])), need.description)
        }
        XCTAssertFalse(CapabilityNeed.tracefs.isMet(by: admin))
        XCTAssertTrue(CapabilityNeed.tracefs.isMet(by: CapabilitySet([.dacOverride])))
        XCTAssertTrue(CapabilityNeed.tracefs.isMet(by: CapabilitySet([.dacReadSearch])))
        XCTAssertFalse(CapabilityNeed.connectionOwners.isMet(by: admin))
        XCTAssertTrue(CapabilityNeed.connectionOwners.isMet(by: CapabilitySet([.sysPtrace])))
    }

    func testTheMonitorsNeedNetAdminForCgroupProgramsAndDacReadSearchWhereTracefsIsClosed() {
        XCTAssertEqual(CapabilityNeed.monitors(cgroupPrograms: false, tracefsClosedToUser: false).map(\.capability), [.bpf, .perfmon])
        XCTAssertEqual(
            CapabilityNeed.monitors(cgroupPrograms: true, tracefsClosedToUser: true).map(\.capability),
            [.bpf, .perfmon, .netAdmin, .dacReadSearch])
        // This test process: cgroup v2 here means CAP_NET_ADMIN; its user decides the tracefs need.
        let needs = SystemChecks.monitorNeeds.map(\.capability)
        XCTAssertEqual(needs.contains(.netAdmin), SystemChecks.cgroup2Path != nil)
        XCTAssertEqual(needs.contains(.dacReadSearch), SystemChecks.tracefsClosedToUser)
        if geteuid() == 0 { XCTAssertFalse(SystemChecks.tracefsClosedToUser, "tracefs is root's: open to root's uid") }
    }

    /// The message names each missing capability with its purpose, and the whole set to run with
    /// as `setpriv` and `setcap` commands.
    func testTheErrorNamesWhatIsMissingAndTheFix() {
        let error = BPFError.missingCapabilities(
            operation: "tracing TCP connections", missing: [.cgroupPrograms, .tracefs], required: [.bpf, .perfmon, .netAdmin, .dacReadSearch])
        let text = error.description
        for fragment in [
            "tracing TCP connections needs CAP_NET_ADMIN (cgroup socket programs), CAP_DAC_READ_SEARCH (reading tracefs",
            "which this process lacks (its effective capabilities: ",
            "Run it as root, or with exactly CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN + CAP_DAC_READ_SEARCH",
            "setpriv --inh-caps=+bpf,+perfmon,+net_admin,+dac_read_search --ambient-caps=+bpf,+perfmon,+net_admin,+dac_read_search ",
            "setcap cap_bpf,cap_perfmon,cap_net_admin,cap_dac_read_search+ep ",
            SystemChecks.executablePath ?? "TOOL",
        ] {
            XCTAssertTrue(text.contains(fragment), "no '\(fragment)' in: \(text)")
        }
        XCTAssertFalse(text.contains("CAP_BPF ("), "CAP_BPF is not missing: \(text)")
    }

    /// A capability no process holds (bit 63, unused by the kernel) is reported missing; an empty
    /// list of needs always passes.
    func testRequireCapabilitiesThrowsForWhatIsNotHeld() {
        XCTAssertNoThrow(try SystemChecks.requireCapabilities([], for: "nothing"))
        let unheld = CapabilityNeed(Capability(number: 63, name: "CAP_TEST"), for: "testing")
        XCTAssertThrowsError(try SystemChecks.requireCapabilities([.programs, unheld], for: "a test")) { error in
            guard case .missingCapabilities(let operation, let missing, let required) = error as? BPFError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(operation, "a test")
            XCTAssertEqual(missing, SystemChecks.holds([.programs]) ? [unheld] : [.programs, unheld])
            XCTAssertEqual(required, [.bpf, unheld.capability])
        }
    }
}
