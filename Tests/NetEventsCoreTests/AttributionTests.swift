import Foundation
import XCTest
@testable import NetEventsCore

/// Names of network namespaces and the user-space half of the cgroup filters, on directories the
/// test makes (no privileges needed).
final class AttributionTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("attribution-\(getpid())-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func inode(_ path: String) throws -> UInt32 { UInt32(truncatingIfNeeded: try XCTUnwrap(FileSystem.inode(of: path))) }

    /// A name appears as soon as it is looked up after it was made (an unseen inode reads the
    /// directory again); an inode known to have no name keeps that answer without rereading.
    func testNamespaceNamesFollowTheDirectory() throws {
        let netns = directory + "/netns"
        try FileManager.default.createDirectory(atPath: netns, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: netns + "/blue", contents: nil))
        let names = NetworkNamespaceNames(directory: netns)
        let blue = try inode(netns + "/blue")
        XCTAssertEqual(names.name(of: blue), "blue")
        XCTAssertNil(names.name(of: 0))
        XCTAssertTrue(FileManager.default.createFile(atPath: netns + "/red", contents: nil))
        XCTAssertEqual(names.name(of: try inode(netns + "/red")), "red", "made after the first read")
        let unnamed = try inode(directory)
        XCTAssertNil(names.name(of: unnamed))
        XCTAssertNil(NetworkNamespaceNames(directory: directory + "/none").name(of: blue), "no directory, no names")
    }

    /// The snapshot's filter agrees with the kernel's: a cgroup filter keeps that cgroup and what
    /// lies below it (by path components), a container filter the cgroups that name a matching id.
    func testUserSpaceFilterMatchesByCgroupPathAndContainerID() throws {
        let id = String(repeating: "ab", count: 32)
        for path in ["/app/one", "/appx", "/docker/\(id)/inner", "/other"] {
            try FileManager.default.createDirectory(atPath: directory + path, withIntermediateDirectories: true)
        }
        let resolver = try CgroupResolver(mountPoint: directory)
        let endpoints = SocketEndpoints(
            family: .ipv4, sourceAddress: IPAddress("127.0.0.1")!, sourcePort: 80, destinationAddress: IPAddress("127.0.0.1")!,
            destinationPort: 4000)
        func passes(_ filter: EventFilter, _ path: String, netns: UInt32 = 7) throws -> Bool {
            let resolved = try ResolvedFilter(filter, resolver: resolver)
            let cgroupID = try XCTUnwrap(FileSystem.inode(of: directory + path))
            return resolved.matches(pid: 5, uid: 0, endpoints: endpoints, cgroupID: cgroupID, networkNamespace: netns)
        }
        // The temporary directory is no cgroupfs: ids resolve by walking it.
        XCTAssertTrue(try passes(EventFilter(cgroups: ["/app"]), "/app/one"))
        XCTAssertFalse(try passes(EventFilter(cgroups: ["/app"]), "/appx"), "a sibling that shares a prefix")
        XCTAssertTrue(try passes(EventFilter(cgroups: [directory + "/app"]), "/app"), "a full path inside the mount point")
        XCTAssertTrue(try passes(EventFilter(containers: ["abab"]), "/docker/\(id)/inner"))
        XCTAssertFalse(try passes(EventFilter(containers: ["abab"]), "/other"))
        XCTAssertTrue(try passes(EventFilter(cgroups: ["/other"], containers: ["abab"]), "/other"), "either one")
        XCTAssertFalse(try passes(EventFilter(networkNamespaces: [8]), "/other"))
        XCTAssertTrue(try passes(EventFilter(ports: [80], networkNamespaces: [7, 8]), "/other"))
        XCTAssertFalse(try passes(EventFilter(pids: [6]), "/other"))
        XCTAssertThrowsError(try ResolvedFilter(EventFilter(cgroups: ["/missing"]), resolver: resolver)) { error in
            XCTAssertTrue("\(error)".contains("/missing"), "\(error)")
        }
        XCTAssertThrowsError(try ResolvedFilter(EventFilter(containers: ["cdcd"]), resolver: resolver)) { error in
            XCTAssertTrue("\(error)".contains("cdcd"), "\(error)")
        }
    }
}
