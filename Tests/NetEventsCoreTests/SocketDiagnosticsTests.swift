import XCTest
@testable import NetEventsCore

/// The parsing of a `sock_diag` reply (`struct inet_diag_msg` and its attributes), from bytes laid
/// out as the kernel writes them.
final class SocketDiagnosticsTests: XCTestCase {
    /// An `inet_diag_msg` of `family`, then an attribute of `type` holding `attribute`.
    func message(family: UInt8, attribute: [UInt8], type: UInt16 = 2) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 72)
        bytes[0] = family
        bytes[1] = 1  // ESTABLISHED
        bytes[4] = 0x1f; bytes[5] = 0x90  // sport 8080, network order
        bytes[6] = 0x01; bytes[7] = 0xbb  // dport 443
        if family == 2 {
            bytes.replaceSubrange(8..<12, with: [127, 0, 0, 1])
            bytes.replaceSubrange(24..<28, with: [10, 0, 0, 2])
        } else {
            bytes[23] = 1  // ::1
            bytes.replaceSubrange(24..<40, with: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7])
        }
        bytes.store(UInt32(0x0000_1234), at: 44)  // cookie, low half
        bytes.store(UInt32(0x0000_0001), at: 48)  // cookie, high half
        bytes.store(UInt32(1_000), at: 64)  // uid
        bytes.store(UInt32(987_654), at: 68)  // inode
        var header = [UInt8](repeating: 0, count: 4)
        header.store(UInt16(4 + attribute.count), at: 0)
        header.store(type, at: 2)
        let padding = [UInt8](repeating: 0, count: (4 - attribute.count % 4) % 4)
        return bytes + header + attribute + padding
    }

    func testAnIPv4MessageAndItsInfoAttribute() throws {
        let info = (0..<232).map { UInt8($0 & 0xff) }
        let socket = try XCTUnwrap(SocketDiagnostics.parse(ArraySlice(message(family: 2, attribute: info))))
        XCTAssertEqual(socket.endpoints.family, .ipv4)
        XCTAssertEqual(socket.endpoints.sourceAddress.description, "127.0.0.1")
        XCTAssertEqual(socket.endpoints.sourcePort, 8080)
        XCTAssertEqual(socket.endpoints.destinationAddress.description, "10.0.0.2")
        XCTAssertEqual(socket.endpoints.destinationPort, 443)
        XCTAssertEqual(socket.state, 1)
        XCTAssertEqual(socket.cookie, 0x1_0000_1234)
        XCTAssertEqual(socket.uid, 1_000)
        XCTAssertEqual(socket.inode, 987_654)
        XCTAssertEqual(socket.info, info)
    }

    func testAnIPv6MessageWithOtherAttributesFirst() throws {
        // An attribute of another type (and odd length, padded) before the info one.
        var bytes = message(family: 10, attribute: [1, 2, 3], type: 5)
        var info = [UInt8](repeating: 0, count: 4)
        info.store(UInt16(4 + 8), at: 0)
        info.store(UInt16(2), at: 2)
        bytes += info + [9, 9, 9, 9, 9, 9, 9, 9]
        let socket = try XCTUnwrap(SocketDiagnostics.parse(ArraySlice(bytes)))
        XCTAssertEqual(socket.endpoints.sourceAddress.description, "::1")
        XCTAssertEqual(socket.endpoints.destinationAddress.description, "2001:db8::7")
        XCTAssertEqual(socket.info, [9, 9, 9, 9, 9, 9, 9, 9])
    }

    func testShortOrForeignMessagesAreNotSockets() {
        XCTAssertNil(SocketDiagnostics.parse(ArraySlice([UInt8](repeating: 0, count: 71))))
        XCTAssertNil(SocketDiagnostics.parse(ArraySlice(message(family: 1, attribute: []))), "AF_UNIX is no inet socket")
        // An attribute whose length runs past the message is ignored, not read out of bounds.
        var bytes = message(family: 2, attribute: [1, 2, 3, 4])
        bytes.store(UInt16(200), at: 72)
        XCTAssertEqual(SocketDiagnostics.parse(ArraySlice(bytes))?.info, [])
    }

    func testStatesAreBitsOfTheirNumbers() {
        XCTAssertEqual(SocketDiagnostics.states([1, 4]), 0b10010)
    }
}
