import Foundation
import XCTest

/// A real container, run by podman (with runc) from a busybox image the tests make, on the host's
/// network. Its script waits for ``proceed()`` before it runs, so a tracer can start first (a
/// container filter needs the container running). Removed by ``remove()`` (and at deinit).
final class TestContainer: @unchecked Sendable {
    /// The image: a static `/bin/busybox` and its `sh`, `nc` and `sleep` links.
    static let image = "localhost/netevents-test:latest"
    /// The full container id, as `podman run -d` prints it.
    let id: String
    /// Mounted at `/signal` in the container; ``proceed()`` makes `go` in it.
    private let signal: URL

    /// Starts a container that runs `script` (busybox sh) once the test proceeds.
    init(script: String) throws {
        try Self.makeImage()
        signal = FileManager.default.temporaryDirectory.appendingPathComponent("netevents-signal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: signal, withIntermediateDirectories: true)
        let output = try Self.podman([
            "run", "-d", "--rm", "--runtime", "runc", "--network", "host", "-v", "\(signal.path):/signal", Self.image,
            "/bin/sh", "-c", "while [ ! -e /signal/go ]; do sleep 0.02; done; \(script)",
        ])
        id = output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard id.count == 64, id.allSatisfy(\.isHexDigit) else { throw ContainerError("podman run printed '\(output)', not a container id") }
    }

    deinit { remove() }

    /// Lets the script run.
    func proceed() throws { try Data().write(to: signal.appendingPathComponent("go")) }

    /// The host pid of the container's first process (its `sh`).
    func pid() throws -> Int32 {
        let text = try Self.podman(["inspect", "--format", "{{.State.Pid}}", id])
        guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else {
            throw ContainerError("podman inspect gave no pid: '\(text)'")
        }
        return pid
    }

    /// Removes the container (whether it still runs or not) and its signal directory.
    func remove() {
        _ = try? Self.podman(["rm", "--force", "--time", "0", "--ignore", id])
        try? FileManager.default.removeItem(at: signal)
    }

    /// Runs `podman ARGUMENTS` to its end; its standard output.
    ///
    /// Foundation's `Process` learns that a child ended when the last copy of a socket it hands
    /// the child closes; `podman run -d` leaves conmon running with every descriptor podman had,
    /// so `waitUntilExit()` would never return. A shell closes every descriptor above 2 first.
    @discardableResult
    static func podman(_ arguments: [String]) throws -> String {
        // No default ulimits: podman's would need CAP_SYS_RESOURCE, which these machines lack.
        let configuration = FileManager.default.temporaryDirectory.appendingPathComponent("netevents-test-containers.conf")
        try Data("[containers]\ndefault_ulimits = []\n".utf8).write(to: configuration)
        let closeAndRun = #"for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; exec "$@""#
        return try NetworkNamespace.run(
            try NetworkNamespace.tool("bash"),
            ["-c", closeAndRun, "podman", "/usr/bin/env", "CONTAINERS_CONF=\(configuration.path)", try NetworkNamespace.tool("podman")] + arguments)
    }

    /// Imports ``image`` unless podman has it: a root file system of the host's static busybox.
    static func makeImage() throws {
        if (try? podman(["image", "exists", image])) != nil { return }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("netevents-image-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let bin = work.appendingPathComponent("rootfs/bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let busybox = try NetworkNamespace.tool("busybox")
        if (try? NetworkNamespace.run(try NetworkNamespace.tool("ldd"), [busybox])) != nil {
            throw ContainerError("\(busybox) is linked dynamically; the image needs a static one (busybox-static)")
        }
        try FileManager.default.copyItem(atPath: busybox, toPath: bin.appendingPathComponent("busybox").path)
        for applet in ["sh", "nc", "sleep"] {
            try FileManager.default.createSymbolicLink(atPath: bin.appendingPathComponent(applet).path, withDestinationPath: "busybox")
        }
        let archive = work.appendingPathComponent("rootfs.tar").path
        try NetworkNamespace.run(try NetworkNamespace.tool("tar"), ["-C", work.appendingPathComponent("rootfs").path, "-cf", archive, "."])
        try podman(["import", archive, image])
    }

    struct ContainerError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
