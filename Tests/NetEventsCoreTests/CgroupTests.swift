import XCTest
@testable import NetEventsCore

/// What a cgroup path says, by the conventions of the runtimes and of systemd: the container,
/// the pod and the service, and nothing where the path follows no convention.
final class CgroupTests: XCTestCase {
    static let id = String(repeating: "3f2a", count: 16)
    static let podUID = "1b2c3d4e-0000-4000-8000-00000000abcd"

    func testPathsOfEveryRuntimeNameTheirContainer() {
        let id = Self.id
        let cases: [(String, ContainerRuntime?, String?, String?)] = [
            // path, runtime, pod uid, service
            ("/system.slice/docker-\(id).scope", .docker, nil, nil),
            ("/docker/\(id)", .docker, nil, nil),
            ("/moby/\(id)", .docker, nil, nil),
            ("/system.slice/docker-\(id).scope/init.scope", .docker, nil, nil),
            ("/system.slice/containerd.service/system.slice/cri-containerd-\(id).scope", .containerd, nil, "containerd.service"),
            ("/k8s.io/\(id)", .containerd, nil, nil),
            (
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_4000_8000_00000000abcd.slice/cri-containerd-\(id).scope",
                .containerd, Self.podUID, nil
            ),
            ("/kubepods.slice/kubepods-pod1b2c3d4e_0000_4000_8000_00000000abcd.slice/crio-\(id).scope", .crio, Self.podUID, nil),
            ("/kubepods/besteffort/pod\(Self.podUID)/\(id)", .cri, Self.podUID, nil),
            ("/kubepods/burstable/pod\(Self.podUID)/crio-\(id)", .crio, Self.podUID, nil),
            (
                "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod1b2c3d4e_0000_4000_8000_00000000abcd.slice/cri-containerd-\(id).scope",
                .containerd, Self.podUID, nil
            ),
            ("/machine.slice/libpod-\(id).scope", .podman, nil, nil),
            ("/libpod_parent/libpod-\(id)", .podman, nil, nil),
            ("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-\(id).scope/container", .podman, nil, "user@1000.service"),
        ]
        for (path, runtime, pod, service) in cases {
            let cgroup = Cgroup(id: 9, path: path)
            XCTAssertEqual(cgroup.container, runtime.map { Cgroup.Container(id: id, runtime: $0) }, path)
            XCTAssertEqual(cgroup.podUID, pod, path)
            XCTAssertEqual(cgroup.service, service, path)
            XCTAssertEqual(cgroup.path, path)
        }
    }

    /// Monitors of the runtimes, short or long ids, upper case, pods without kubepods: no
    /// container and no pod, never a guess.
    func testPathsThatFollowNoConventionNameNothing() {
        let id = Self.id
        for path in [
            "/", "/system.slice", "/user.slice/user-0.slice/session-3.scope", "/machine.slice/libpod-conmon-\(id).scope",
            "/system.slice/crio-conmon-\(id).scope", "/system.slice/docker-\(id.prefix(12)).scope",
            "/system.slice/docker-\(id.uppercased()).scope", "/system.slice/docker-\(id)", "/mine/\(id)", "/\(id)",
            "/docker-\(id)x.scope", "/pods/pod\(Self.podUID)/x",
        ] {
            let cgroup = Cgroup(id: 9, path: path)
            XCTAssertNil(cgroup.container, path)
            XCTAssertNil(cgroup.podUID, path)
        }
        XCTAssertNil(Cgroup(id: 1, path: "/system.slice/.service").service, "a unit needs a name")
        XCTAssertNil(Cgroup(id: 1, path: "/kubepods/pod1234/x").podUID, "a pod uid is a UUID")
    }

    func testServiceIsTheInnermostServiceUnit() {
        XCTAssertEqual(Cgroup(id: 1, path: "/system.slice/nginx.service").service, "nginx.service")
        XCTAssertEqual(Cgroup(id: 1, path: "system.slice/nginx.service").path, "/system.slice/nginx.service", "a leading / is added")
        XCTAssertEqual(
            Cgroup(id: 1, path: "/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service").service, "dbus.service")
        XCTAssertNil(Cgroup(id: 1, path: "/user.slice/user-1000.slice/session-2.scope").service)
    }

    func testInsideIsByWholeComponents() {
        let cgroup = Cgroup(id: 1, path: "/a/bc/d")
        XCTAssertTrue(cgroup.isInside("/"))
        XCTAssertTrue(cgroup.isInside("/a"))
        XCTAssertTrue(cgroup.isInside("/a/bc/"))
        XCTAssertTrue(cgroup.isInside("/a/bc/d"))
        XCTAssertFalse(cgroup.isInside("/a/b"), "/a/b is no ancestor of /a/bc")
        XCTAssertFalse(cgroup.isInside("/a/bc/d/e"))
    }

    func testEqualityIsByIDAndPath() {
        XCTAssertEqual(Cgroup(id: 4, path: "/x"), Cgroup(id: 4, path: "/x"))
        XCTAssertNotEqual(Cgroup(id: 4, path: "/x"), Cgroup(id: 5, path: "/x"))
        XCTAssertEqual(Cgroup(id: 4, path: "/system.slice/docker-\(Self.id).scope").description,
                       "/system.slice/docker-\(Self.id).scope (docker container 3f2a3f2a3f2a)")
    }

    /// Paths given to filters: relative to the hierarchy, or full paths inside its mount point.
    func testFilterPathsAreMadeRelativeToTheMountPoint() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory + "/app/one", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let resolver = try CgroupResolver(mountPoint: directory)
        XCTAssertEqual(resolver.relativePath(directory), "/")
        XCTAssertEqual(resolver.relativePath(directory + "/app/"), "/app")
        XCTAssertEqual(resolver.relativePath("app/one"), "/app/one")
        XCTAssertEqual(resolver.relativePath("/app"), "/app")
        XCTAssertNil(resolver.relativePath("/sys/fs/cgroup/memory/app"), "another hierarchy")
        XCTAssertEqual(resolver.absolutePath("/app"), directory + "/app")
        XCTAssertEqual(resolver.cgroup(path: "/app/one")?.path, "/app/one")
        XCTAssertNil(resolver.cgroup(path: "/app/two"))
        // Walking a tree finds containers by prefix, outermost only.
        try FileManager.default.createDirectory(
            atPath: directory + "/docker/\(Self.id)/inner", withIntermediateDirectories: true)
        XCTAssertEqual(resolver.containers(matching: "3f2a").map(\.path), ["/docker/\(Self.id)"])
        XCTAssertEqual(resolver.containers(matching: "ffff"), [])
    }
}
