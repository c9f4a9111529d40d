import Glibc
import XCTest
@testable import netevents

/// `--listen`: numeric addresses only, IPv6 in brackets, ports 1 to 65535; and the bind check
/// that says at start that a port is taken.
final class ListenAddressTests: XCTestCase {
    func testAcceptsNumericAddressesWithAPort() throws {
        for (argument, host, port) in [
            ("127.0.0.1:9750", "127.0.0.1", 9750), ("0.0.0.0:1", "0.0.0.0", 1), ("[::1]:9750", "::1", 9750),
            ("[::]:80", "::", 80), ("10.1.2.3:65535", "10.1.2.3", 65_535),
        ] {
            let address = try XCTUnwrap(ListenAddress(argument: argument), argument)
            XCTAssertEqual(address.host, host, argument)
            XCTAssertEqual(address.port, port, argument)
            XCTAssertEqual(address.description, argument, "the description reads back as the argument")
        }
    }

    func testRejectsAnythingElse() {
        for argument in [
            "", "foo", "127.0.0.1", "127.0.0.1:", ":9750", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1",
            "127.0.0.1:port", "::1:9750", "[::1]", "[::1:9750", "::1]:9750", "[127.0.0.1]:80", "[]:80",
            "localhost:9750", "1.2.3:80", "256.0.0.1:80", "127.0.0.1 :80",
        ] {
            XCTAssertNil(ListenAddress(argument: argument), argument.debugDescription)
        }
    }

    func testDescriptionBracketsIPv6() throws {
        XCTAssertEqual(try XCTUnwrap(ListenAddress(argument: "[::1]:9750")).description, "[::1]:9750")
        XCTAssertEqual(try XCTUnwrap(ListenAddress(argument: "[fe80::1]:443")).description, "[fe80::1]:443")
        XCTAssertEqual(try XCTUnwrap(ListenAddress(argument: "127.0.0.1:443")).description, "127.0.0.1:443")
    }

    func testBindErrorIsAddressInUseForAListeningPortAndNilForAFreeOne() throws {
        for (family, host) in [(AF_INET, "127.0.0.1"), (AF_INET6, "::1")] {
            let (fd, port) = try listeningSocket(family: family, host: host)
            let address = try XCTUnwrap(ListenAddress(argument: family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"))
            XCTAssertEqual(address.bindError(), EADDRINUSE, address.description)
            close(fd)
            // The port is free once the listener is gone (the check binds and lets go, so twice works too).
            XCTAssertNil(address.bindError(), address.description)
            XCTAssertNil(address.bindError(), address.description)
        }
    }

    /// The host is a `var`: one set by hand past the parser is refused, not resolved.
    func testBindErrorIsInvalidForAHostThatIsNoNumericAddress() throws {
        var address = try XCTUnwrap(ListenAddress(argument: "127.0.0.1:80"))
        address.host = "localhost"
        XCTAssertEqual(address.bindError(), EINVAL)
    }

    struct SystemCallFailed: Error {
        var call: String
        var errno: Int32
    }

    /// A socket listening on `host` at a port the kernel picks (port 0), and that port.
    private func listeningSocket(family: Int32, host: String) throws -> (Int32, Int) {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SystemCallFailed(call: "socket", errno: errno) }
        var storage = sockaddr_storage()
        storage.ss_family = sa_family_t(family)
        let (addressOffset, length) = family == AF_INET
            ? (MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!, MemoryLayout<sockaddr_in>.size)
            : (MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!, MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutableBytes(of: &storage) { inet_pton(family, host, $0.baseAddress! + addressOffset) }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        guard bound == 0 else { throw SystemCallFailed(call: "bind", errno: errno) }
        guard listen(fd, 1) == 0 else { throw SystemCallFailed(call: "listen", errno: errno) }
        var namedLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &namedLength) }
        }
        guard named == 0 else { throw SystemCallFailed(call: "getsockname", errno: errno) }
        // sin_port and sin6_port share their offset, in network order.
        let port = withUnsafeBytes(of: storage) {
            UInt16(bigEndian: $0.load(fromByteOffset: MemoryLayout<sockaddr_in>.offset(of: \.sin_port)!, as: UInt16.self))
        }
        return (fd, Int(port))
    }
}
