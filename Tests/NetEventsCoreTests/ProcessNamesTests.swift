import NetEventsCore
import XCTest

/// `ProcessNames` reuses a sample's names only when all three name fields are byte for byte
/// those of the sample before.
final class ProcessNamesTests: XCTestCase {
    /// Name fields as the kernel writes them: `comm` and `thread` of 16 bytes, `exe` of 64.
    private struct Fields {
        var comm = [UInt8](repeating: 0, count: 16)
        var thread = [UInt8](repeating: 0, count: 16)
        var exe = [UInt8](repeating: 0, count: 64)

        init(comm: String, thread: String? = nil, exe: String = "") {
            Self.write(comm, into: &self.comm)
            Self.write(thread ?? comm, into: &self.thread)
            Self.write(exe, into: &self.exe)
        }

        static func write(_ text: String, into field: inout [UInt8]) {
            for (index, byte) in text.utf8.prefix(field.count - 1).enumerated() { field[index] = byte }
        }

        func process(_ names: inout ProcessNames, pid: Int32 = 7, uid: UInt32 = 1000) -> EventProcess {
            comm.withUnsafeBytes { comm in
                thread.withUnsafeBytes { thread in
                    exe.withUnsafeBytes { exe in names.process(pid: pid, uid: uid, comm: comm, thread: thread, exe: exe) }
                }
            }
        }
    }

    func testEachFieldChangeGivesItsOwnNames() {
        var names = ProcessNames()
        let curl = Fields(comm: "curl", exe: "/usr/bin/curl")
        XCTAssertEqual(curl.process(&names), EventProcess(pid: 7, uid: 1000, command: "curl", executable: "/usr/bin/curl"))
        // Same names, another pid and uid: those are the sample's own.
        XCTAssertEqual(curl.process(&names, pid: 8, uid: 0), EventProcess(pid: 8, uid: 0, command: "curl", executable: "/usr/bin/curl"))

        var renamed = curl
        Fields.write("wget", into: &renamed.comm)
        XCTAssertEqual(renamed.process(&names).command, "wget")
        XCTAssertEqual(renamed.process(&names).thread, "curl", "the thread kept its name, which now differs")

        var otherExecutable = renamed
        Fields.write("/usr/bin/wget", into: &otherExecutable.exe)
        XCTAssertEqual(otherExecutable.process(&names).executable, "/usr/bin/wget")

        let threaded = Fields(comm: "dig", thread: "isc-net-0000", exe: "/usr/bin/dig")
        XCTAssertEqual(threaded.process(&names), EventProcess(pid: 7, uid: 1000, command: "dig", thread: "isc-net-0000", executable: "/usr/bin/dig"))
        XCTAssertEqual(curl.process(&names), EventProcess(pid: 7, uid: 1000, command: "curl", executable: "/usr/bin/curl"))
    }

    func testBytesAfterTheTerminatorDecodeAnewToTheSameName() {
        var names = ProcessNames()
        let clean = Fields(comm: "nginx", exe: "/usr/sbin/nginx")
        var stale = clean
        stale.comm[10] = 0x41  // left over from a longer name, after the NUL
        XCTAssertEqual(clean.process(&names).command, "nginx")
        XCTAssertEqual(stale.process(&names).command, "nginx")
        XCTAssertEqual(clean.process(&names).command, "nginx")
    }

    func testAKernelThreadHasNoExecutableAndAnEmptyFirstSampleIsDecoded() {
        var names = ProcessNames()
        XCTAssertEqual(Fields(comm: "").process(&names), EventProcess(pid: 7, uid: 1000, command: ""))
        XCTAssertEqual(Fields(comm: "ksoftirqd/0").process(&names), EventProcess(pid: 7, uid: 1000, command: "ksoftirqd/0"))
        XCTAssertNil(Fields(comm: "ksoftirqd/0").process(&names).executable)
    }

    func testInvalidUTF8IsRepairedTheSameWayEachTime() {
        var names = ProcessNames()
        var fields = Fields(comm: "ab")
        fields.comm[2] = 0xFF
        fields.thread = fields.comm
        XCTAssertEqual(fields.process(&names).command, "ab\u{FFFD}")
        XCTAssertEqual(fields.process(&names).command, "ab\u{FFFD}")
    }
}
