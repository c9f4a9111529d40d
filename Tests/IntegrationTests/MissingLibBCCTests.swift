import Foundation
import Glibc
import XCTest

/// On a machine without BCC's library, the tools start (libbcc is opened at the first compile,
/// not linked), answer `--help`, and end with an error that names the package to install,
/// instead of the dynamic loader's "cannot open shared object file" before `main`. The library
/// is hidden by a bind mount of /dev/null over it in a mount namespace of the tool's own.
final class MissingLibBCCTests: XCTestCase {
    func testEachToolNamesThePackageToInstall() throws {
        try requireBPF()
        let library = try XCTUnwrap(Self.installedLibBCC(), "no libbcc.so.0 in the dynamic loader's cache (ldconfig -p)")
        let cases: [(tool: String, arguments: [String])] = [
            ("tcp-events", ["--duration", "3"]),
            ("udp-events", ["--duration", "3"]),
            ("dns-events", ["--duration", "3"]),
            ("tcp-top", ["--json", "--duration", "3"]),
            ("netevents", ["serve", "--listen", "127.0.0.1:\(freePort())"]),
        ]
        for (tool, arguments) in cases {
            let path = try builtExecutable(tool).path
            // Hidden for sure (an empty file), and bounded: a tool that found libbcc after all
            // would trace until killed (the agent has no --duration).
            let script = "mount --bind /dev/null \"$0\" && [ ! -s \"$0\" ] && exec timeout -s KILL 60 \"$@\""
            let unshare = URL(fileURLWithPath: "/usr/bin/unshare")
            let help = try runCapturing(unshare, ["-m", "/bin/sh", "-c", script, library, path, "--help"])
            XCTAssertEqual(help.status, 0, "\(tool) --help without libbcc: \(help.errors)")
            XCTAssertTrue(help.output.contains("USAGE"), "\(tool) --help printed no usage: \(help.output)")
            let started = try runCapturing(unshare, ["-m", "/bin/sh", "-c", script, library, path] + arguments)
            XCTAssertEqual(started.status, 1, "\(tool) without libbcc: \(started.errors)")
            XCTAssertFalse(started.errors.contains("Tracing"), "\(tool) traced without libbcc: \(started.errors)")
            for words in ["could not open libbcc.so.0", "apt-get install libbpfcc"] {
                XCTAssertTrue(started.errors.contains(words), "\(tool): the error does not say '\(words)': \(started.errors)")
            }
        }
        XCTAssertGreaterThan(Self.fileSize(library), 0, "libbcc was hidden outside the tools' namespace")
    }

    /// The file the dynamic loader would open for libbcc.so.0, from its cache.
    static func installedLibBCC() -> String? {
        guard let cache = runToEnd("/sbin/ldconfig", ["-p"]) else { return nil }
        return String(decoding: cache.output, as: UTF8.self).split(separator: "\n").first { $0.contains("libbcc.so.0 (") }
            .flatMap { $0.components(separatedBy: " => ").last }.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    static func fileSize(_ path: String) -> Int {
        var status = stat()
        return stat(path, &status) == 0 ? Int(status.st_size) : 0
    }
}
