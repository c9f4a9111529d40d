@testable import BCCRuntime
import Foundation
import XCTest

/// Checks ``KernelBTF`` against an independent reading of the same BTF: `bpftool btf dump file`,
/// parsed here, with anonymous members followed by their type ids and their offsets added up.
final class KernelBTFTests: XCTestCase {
    /// Members the eBPF programs read, which sit at several depths of anonymous unions and structs.
    static let checkedMembers = [
        "tcp_sock.bytes_received", "tcp_sock.bytes_acked", "tcp_sock.segs_in", "tcp_sock.segs_out",
        "tcp_sock.data_segs_in", "tcp_sock.data_segs_out",
        "sock_common.skc_daddr", "sock_common.skc_rcv_saddr", "sock_common.skc_num", "sock_common.skc_dport",
        "sock_common.skc_family", "sock_common.skc_state", "sock_common.skc_v6_daddr",
        "sock_common.skc_v6_rcv_saddr",
        "net.ns.inum", "sock.__sk_common", "sock.__sk_common.skc_dport", "sock.__sk_common.skc_net",
    ]

    private func vmlinux() throws -> KernelBTF {
        guard access(KernelBTF.vmlinuxPath, R_OK) == 0 else {
            let reason = "\(KernelBTF.vmlinuxPath) is not readable: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF)"
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
        return try KernelBTF.vmlinux()
    }

    func testOffsetsMatchBpftool() throws {
        let btf = try vmlinux()
        let dump = try BpftoolDump.vmlinux()
        for path in Self.checkedMembers {
            let expected = try XCTUnwrap(dump.resolve(path), "bpftool's dump has no \(path)")
            let actual = try btf.member(path)
            XCTAssertEqual(actual.offset, expected.offset, "offset of \(path)")
            XCTAssertEqual(actual.size, expected.size, "size of \(path)")
        }
    }

    func testAnonymousMembersAreReallyNested() throws {
        // Guards the test above against a parser that never follows an anonymous member: on every
        // kernel since 2.6, skc_daddr is inside an anonymous union (of skc_addrpair), and tcp_sock
        // counters are deep inside tcp_sock, far past inet_connection_sock.
        let dump = try BpftoolDump.vmlinux()
        XCTAssertNotNil(dump.resolve("sock_common.skc_daddr"))
        XCTAssertNil(dump.directMember("sock_common", "skc_daddr"), "skc_daddr should not be a direct member")
        XCTAssertNil(dump.directMember("sock_common", "skc_dport"), "skc_dport should not be a direct member")
        let received = try vmlinux().member("tcp_sock.bytes_received")
        let connection = try vmlinux().member("tcp_sock.inet_conn")
        XCTAssertGreaterThan(received.offset, connection.size)
        XCTAssertEqual(received.size, 8)
    }

    func testNestedPaths() throws {
        let btf = try vmlinux()
        let common = try btf.member("sock.__sk_common")
        XCTAssertEqual(common.offset, 0, "struct sock starts with its sock_common")
        XCTAssertGreaterThan(common.size, try btf.member("sock_common.skc_v6_rcv_saddr").offset)
        XCTAssertEqual(try btf.member("sock.__sk_common.skc_family"), try btf.member("sock_common.skc_family"))
        let inum = try btf.member("net.ns.inum")
        XCTAssertEqual(inum.size, 4)
        XCTAssertEqual(inum.offset, try btf.member("net.ns").offset + btf.member("ns_common.inum").offset)
        // Sizes fixed by the kernel's ABI, whatever the offsets.
        XCTAssertEqual(try btf.member("sock_common.skc_daddr").size, 4)
        XCTAssertEqual(try btf.member("sock_common.skc_rcv_saddr").size, 4)
        XCTAssertEqual(try btf.member("sock_common.skc_dport").size, 2)
        XCTAssertEqual(try btf.member("sock_common.skc_num").size, 2)
        XCTAssertEqual(try btf.member("sock_common.skc_family").size, 2)
        XCTAssertEqual(try btf.member("sock_common.skc_state").size, 1)
        XCTAssertEqual(try btf.member("sock_common.skc_v6_daddr").size, 16)
        XCTAssertEqual(try btf.member("sock_common.skc_net").size, MemoryLayout<UnsafeRawPointer>.size)
        // skc_daddr and skc_rcv_saddr share one 8-byte union (skc_addrpair), as do dport and num.
        XCTAssertEqual(try btf.member("sock_common.skc_rcv_saddr").offset, try btf.member("sock_common.skc_daddr").offset + 4)
        XCTAssertEqual(try btf.member("sock_common.skc_num").offset, try btf.member("sock_common.skc_dport").offset + 2)
    }

    func testUnknownNamesThrowBTFErrors() throws {
        let btf = try vmlinux()
        XCTAssertThrowsError(try btf.member("tcp_sock.no_such_member_here")) { error in
            guard case BPFError.btf(let message) = error else { return XCTFail("expected .btf, got \(error)") }
            XCTAssertTrue(message.contains("no_such_member_here"), message)
        }
        XCTAssertThrowsError(try btf.member("no_such_struct_here.member")) { error in
            guard case BPFError.btf(let message) = error else { return XCTFail("expected .btf, got \(error)") }
            XCTAssertTrue(message.contains("no_such_struct_here"), message)
        }
        XCTAssertThrowsError(try btf.member("net.ns.no_such_member_here")) { error in
            guard case BPFError.btf = error else { return XCTFail("expected .btf, got \(error)") }
        }
        XCTAssertThrowsError(try btf.member("tcp_sock")) { error in
            guard case BPFError.invalidArgument = error else { return XCTFail("expected .invalidArgument, got \(error)") }
        }
    }

    func testBitFieldsAreRefused() throws {
        let btf = try vmlinux()
        let dump = try BpftoolDump.vmlinux()
        let member = try XCTUnwrap(dump.directMember("sock_common", "skc_reuse"))
        guard member.bitfieldSize != nil else {
            let reason = "sock_common.skc_reuse is not a bit field in this kernel"
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
        XCTAssertThrowsError(try btf.member("sock_common.skc_reuse")) { error in
            guard case BPFError.btf(let message) = error else { return XCTFail("expected .btf, got \(error)") }
            XCTAssertTrue(message.contains("bit field"), message)
        }
    }

    func testFunctionsAndStructs() throws {
        let btf = try vmlinux()
        XCTAssertTrue(btf.hasStruct("tcp_sock"))
        XCTAssertTrue(btf.hasStruct("sock_common"))
        XCTAssertFalse(btf.hasStruct("no_such_struct_here"))
        let dump = try BpftoolDump.vmlinux()
        if let expected = dump.functionID(named: "tcp_set_state") {
            XCTAssertTrue(btf.hasFunction("tcp_set_state"))
            XCTAssertEqual(btf.functionID("tcp_set_state"), expected)
        } else {
            XCTAssertFalse(btf.hasFunction("tcp_set_state"))
        }
        XCTAssertFalse(btf.hasFunction("no_such_function_here"))
        XCTAssertNil(btf.functionID("no_such_function_here"))
    }

    /// `udp_recvmsg` lost its `noblock` parameter in Linux 5.19 (commit ec095263a965), which moved
    /// `flags` from 5th to 4th: the position is read from BTF, and agrees with bpftool's dump.
    func testParameterIndexOfUDPReceiveFlags() throws {
        let btf = try vmlinux()
        let dump = try BpftoolDump.vmlinux()
        guard let expected = dump.parameterNames(ofFunction: "udp_recvmsg") else {
            let reason = "this kernel's BTF has no udp_recvmsg"
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
        XCTAssertEqual(btf.parameterNames(ofFunction: "udp_recvmsg"), expected)
        let flags = try XCTUnwrap(btf.parameterIndex("flags", ofFunction: "udp_recvmsg"))
        XCTAssertEqual(flags, try XCTUnwrap(expected.firstIndex(of: "flags")) + 1, "1-based, as in PT_REGS_PARMn")
        XCTAssertEqual(btf.parameterIndex("sk", ofFunction: "udp_recvmsg"), 1)
        if KernelVersion.running.isAtLeast(5, 19) {
            XCTAssertEqual(flags, 4, "udp_recvmsg(sk, msg, len, flags) since Linux 5.19")
            XCTAssertNil(btf.parameterIndex("noblock", ofFunction: "udp_recvmsg"))
        } else {
            XCTAssertEqual(flags, 5, "udp_recvmsg(sk, msg, len, noblock, flags) before Linux 5.19")
            XCTAssertEqual(btf.parameterIndex("noblock", ofFunction: "udp_recvmsg"), 4)
        }
    }

    func testParameterNamesMatchBpftool() throws {
        let btf = try vmlinux()
        let dump = try BpftoolDump.vmlinux()
        for function in ["tcp_set_state", "udp_sendmsg", "udpv6_recvmsg", "tcp_v4_connect", "inet_csk_accept"] {
            let expected = dump.parameterNames(ofFunction: function)
            XCTAssertEqual(btf.parameterNames(ofFunction: function), expected, function)
            if let expected {
                XCTAssertFalse(expected.isEmpty, "\(function) takes parameters")
                for (position, name) in expected.enumerated() where !name.isEmpty && expected.firstIndex(of: name) == position {
                    XCTAssertEqual(btf.parameterIndex(name, ofFunction: function), position + 1, "\(function)(\(name))")
                }
            }
        }
        XCTAssertEqual(btf.parameterIndex("sk", ofFunction: "tcp_set_state"), 1)
        XCTAssertEqual(btf.parameterIndex("state", ofFunction: "tcp_set_state"), 2)
    }

    func testParameterIndexOfWhatIsAbsentIsNil() throws {
        let btf = try vmlinux()
        XCTAssertNil(btf.parameterIndex("flags", ofFunction: "no_such_function_here"))
        XCTAssertNil(btf.parameterNames(ofFunction: "no_such_function_here"))
        XCTAssertNil(btf.parameterIndex("no_such_parameter_here", ofFunction: "udp_recvmsg"))
        // A struct's name is not a function.
        XCTAssertNil(btf.parameterNames(ofFunction: "tcp_sock"))
    }

    func testOffsetDefines() throws {
        let btf = try vmlinux()
        let flags = try btf.offsetDefines([
            "OFF_RX": "tcp_sock.bytes_received",
            "OFF_DPORT": "sock_common.skc_dport",
        ])
        XCTAssertEqual(flags, [
            "-DOFF_RX=\(try btf.member("tcp_sock.bytes_received").offset)",
            "-DOFF_DPORT=\(try btf.member("sock_common.skc_dport").offset)",
        ])
        XCTAssertThrowsError(try btf.offsetDefines(["OFF_BAD": "tcp_sock.no_such_member_here"]))
    }

    func testMissingFileIsNotSupported() {
        XCTAssertThrowsError(try KernelBTF(path: "/nonexistent/vmlinux")) { error in
            guard case BPFError.notSupported(_, let minimum, _) = error else {
                return XCTFail("expected .notSupported, got \(error)")
            }
            XCTAssertEqual(minimum, "5.4")
        }
    }

    func testGarbageFileIsABTFError() throws {
        let path = NSTemporaryDirectory() + "not-btf-\(getpid())"
        try Data("this is not BTF".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try KernelBTF(path: path)) { error in
            guard case BPFError.btf = error else { return XCTFail("expected .btf, got \(error)") }
        }
    }
}

/// The text `bpftool btf dump file F` prints, parsed into types: enough to resolve member paths
/// the way the kernel lays them out, independently of libbpf's member walk.
struct BpftoolDump: Sendable {
    struct Member: Sendable {
        var name: String
        var typeID: Int
        var bitsOffset: Int
        var bitfieldSize: Int?
    }

    struct TypeEntry: Sendable {
        var kind: String
        var name: String
        var attributes: [String: Int]
        var members: [Member] = []
        /// A FUNC_PROTO's parameter names, in order.
        var parameters: [String] = []
    }

    var types: [Int: TypeEntry] = [:]
    var byName: [String: [Int]] = [:]

    private static let cached: Result<BpftoolDump, SkipReason> = {
        do throws(SkipReason) { return .success(try load(KernelBTF.vmlinuxPath)) } catch { return .failure(error) }
    }()

    struct SkipReason: Error { var message: String }

    /// The running kernel's BTF as bpftool prints it, parsed once per test run; skips the test with
    /// the reason when bpftool is missing or fails.
    static func vmlinux() throws -> BpftoolDump {
        switch cached {
        case .success(let dump): return dump
        case .failure(let reason):
            print("skipping: \(reason.message)")
            throw XCTSkip(reason.message)
        }
    }

    static func bpftoolPath() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/usr/local/sbin"]
        return directories.map { $0 + "/bpftool" }.first { access($0, X_OK) == 0 }
    }

    private static func load(_ file: String) throws(SkipReason) -> BpftoolDump {
        guard access(file, R_OK) == 0 else { throw SkipReason(message: "\(file) is not readable: no kernel BTF") }
        guard let bpftool = bpftoolPath() else {
            throw SkipReason(message: "bpftool is not installed (apt-get install bpftool)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bpftool)
        process.arguments = ["btf", "dump", "file", file]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { throw SkipReason(message: "could not run \(bpftool): \(error)") }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, !data.isEmpty else {
            throw SkipReason(message: "\(bpftool) btf dump file \(file) exited \(process.terminationStatus)")
        }
        return parse(String(decoding: data, as: UTF8.self))
    }

    /// Parses lines like
    /// `[3777] STRUCT 'sock_common' size=136 vlen=25` and `\t'(anon)' type_id=3766 bits_offset=0`.
    static func parse(_ text: String) -> BpftoolDump {
        var dump = BpftoolDump()
        var current: Int?
        var currentPrototype: Int?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.first == "[" {
                current = nil
                currentPrototype = nil
                guard let close = line.firstIndex(of: "]"), let id = Int(line[line.index(after: line.startIndex)..<close])
                else { continue }
                let rest = line[line.index(after: close)...].drop { $0 == " " }
                let kind = String(rest.prefix { $0 != " " })
                guard let (name, attributes) = quotedNameAndAttributes(rest.dropFirst(kind.count)) else { continue }
                dump.types[id] = TypeEntry(kind: kind, name: name, attributes: attributes)
                if kind == "STRUCT" || kind == "UNION" || kind == "FUNC" {
                    dump.byName["\(kind) \(name)", default: []].append(id)
                }
                if kind == "STRUCT" || kind == "UNION" { current = id }
                if kind == "FUNC_PROTO" { currentPrototype = id }
            } else if let id = currentPrototype, line.first == "\t" {
                // `\t'flags' type_id=21`; a variadic prototype ends with `\t'(anon)' type_id=0`.
                guard let (name, _) = quotedNameAndAttributes(line.dropFirst()) else { continue }
                dump.types[id]?.parameters.append(name == "(anon)" ? "" : name)
            } else if let id = current, line.first == "\t" {
                guard let (name, attributes) = quotedNameAndAttributes(line.dropFirst()),
                    let typeID = attributes["type_id"], let bits = attributes["bits_offset"]
                else { continue }
                dump.types[id]?.members.append(
                    Member(name: name, typeID: typeID, bitsOffset: bits, bitfieldSize: attributes["bitfield_size"]))
            }
        }
        return dump
    }

    /// `'name' key=value key=value`; values that are not integers are left out.
    private static func quotedNameAndAttributes(_ text: Substring) -> (String, [String: Int])? {
        let text = text.drop { $0 == " " }
        guard text.first == "'" else { return nil }
        let afterQuote = text.dropFirst()
        guard let end = afterQuote.firstIndex(of: "'") else { return nil }
        let name = String(afterQuote[..<end])
        var attributes: [String: Int] = [:]
        for token in afterQuote[afterQuote.index(after: end)...].split(separator: " ") {
            guard let equals = token.firstIndex(of: "="), let value = Int(token[token.index(after: equals)...]) else { continue }
            attributes[String(token[..<equals])] = value
        }
        return (name, attributes)
    }

    func structID(named name: String) -> [Int]? {
        byName["STRUCT \(name)"] ?? byName["UNION \(name)"]
    }

    func functionID(named name: String) -> Int32? { byName["FUNC \(name)"]?.first.map(Int32.init) }

    /// The parameter names of the first FUNC of this name, from its FUNC_PROTO.
    func parameterNames(ofFunction name: String) -> [String]? {
        guard let id = byName["FUNC \(name)"]?.first, let proto = types[id]?.attributes["type_id"],
            let entry = types[proto], entry.kind == "FUNC_PROTO"
        else { return nil }
        return entry.parameters
    }

    /// Follows typedefs and qualifiers.
    func skipModifiers(_ id: Int) -> Int {
        var id = id
        while let type = types[id], ["TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"].contains(type.kind),
            let next = type.attributes["type_id"]
        {
            id = next
        }
        return id
    }

    func size(of id: Int) -> Int? {
        let id = skipModifiers(id)
        guard let type = types[id] else { return nil }
        switch type.kind {
        case "INT", "STRUCT", "UNION", "ENUM", "ENUM64", "FLOAT": return type.attributes["size"]
        case "PTR": return MemoryLayout<UnsafeRawPointer>.size
        case "ARRAY":
            guard let element = type.attributes["type_id"], let count = type.attributes["nr_elems"] else { return nil }
            return size(of: element).map { $0 * count }
        default: return nil
        }
    }

    func directMember(_ structName: String, _ member: String) -> Member? {
        guard let id = structID(named: structName)?.first else { return nil }
        return types[id]?.members.first { $0.name == member }
    }

    /// Depth-first through `(anon)` members, returning the member and its bit offset from `id`.
    func find(_ name: String, in id: Int) -> (member: Member, bits: Int)? {
        guard let type = types[skipModifiers(id)] else { return nil }
        for member in type.members {
            if member.name == "(anon)" {
                if let inner = find(name, in: member.typeID) {
                    return (inner.member, member.bitsOffset + inner.bits)
                }
            } else if member.name == name {
                return (member, member.bitsOffset)
            }
        }
        return nil
    }

    /// The byte offset and size of a dotted member path, as in ``KernelBTF/member(_:)``.
    func resolve(_ path: String) -> MemberLayout? {
        let parts = path.split(separator: ".").map(String.init)
        guard parts.count >= 2, var id = structID(named: parts[0])?.first else { return nil }
        var bits = 0
        var size: Int?
        for part in parts.dropFirst() {
            guard let (member, offset) = find(part, in: id) else { return nil }
            bits += offset
            id = member.typeID
            size = self.size(of: member.typeID)
        }
        guard bits % 8 == 0, let size else { return nil }
        return MemberLayout(offset: bits / 8, size: size)
    }
}
