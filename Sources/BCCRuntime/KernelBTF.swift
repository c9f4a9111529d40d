import CLibBPF
import Glibc
import Synchronization
import SystemPackage

/// Where a member of a kernel struct sits, as BTF describes it.
public struct MemberLayout: Sendable, Equatable {
    /// Byte offset from the start of the outermost struct named in the lookup.
    public var offset: Int
    /// Size of the member in bytes.
    public var size: Int

    /// A layout of `size` bytes at `offset`.
    public init(offset: Int, size: Int) {
        self.offset = offset
        self.size = size
    }
}

/// The kernel's own type information (BTF), used to find struct member offsets at run time.
///
/// Headers on these machines belong to other kernel versions, so programs take no struct layout
/// from them: every field a program reads is resolved here and passed in as a `-D` constant.
/// Requires a kernel built with `CONFIG_DEBUG_INFO_BTF` (Linux 5.4 or later), which exposes
/// `/sys/kernel/btf/vmlinux`; reading it needs no privileges.
///
/// The same BTF answers questions about kernel functions: whether one exists (``hasFunction(_:)``)
/// and where a parameter sits in its prototype (``parameterIndex(_:ofFunction:)``), which differs
/// between kernel versions.
///
/// The corresponding C API is libbpf's `btf__parse`, `btf__find_by_name_kind`, `btf_members` and
/// `btf_params`.
public final class KernelBTF: @unchecked Sendable {
    // libbpf's `struct btf` is immutable once parsed, so reads from several threads are safe.
    private let btf: OpaquePointer
    /// The file this BTF was read from.
    public let path: String

    /// The default location of the running kernel's BTF.
    public static let vmlinuxPath = "/sys/kernel/btf/vmlinux"

    private static let shared = Locked<KernelBTF?>(nil)

    /// The running kernel's BTF, parsed once per process.
    /// - Throws: `BPFError.notSupported` when the kernel exposes no BTF, `.btf` when it cannot be
    ///   parsed.
    public static func vmlinux() throws(BPFError) -> KernelBTF {
        try shared.withLock { (cached) throws(BPFError) in
            if let cached { return cached }
            let btf = try KernelBTF(path: vmlinuxPath)
            cached = btf
            return btf
        }
    }

    /// Parses a BTF file (raw BTF such as `/sys/kernel/btf/vmlinux`, or an ELF file with a
    /// `.BTF` section).
    /// - Parameter path: the file to read.
    /// - Throws: `BPFError.notSupported` when the file cannot be read (a kernel without
    ///   `CONFIG_DEBUG_INFO_BTF`), `.btf` with libbpf's errno when it is not BTF.
    public init(path: String) throws(BPFError) {
        guard access(path, R_OK) == 0 else {
            throw BPFError.notSupported(
                feature: "kernel BTF (\(path))", minimumKernel: "5.4",
                reason: "the kernel was built without CONFIG_DEBUG_INFO_BTF; struct offsets must then come from headers")
        }
        let parsed = btf__parse(path, nil)
        // libbpf 1.x returns NULL and sets errno; 0.x may return an encoded error pointer instead.
        let code = Errno.current
        guard let parsed, libbpf_get_error(UnsafeRawPointer(parsed)) == 0 else {
            throw BPFError.btf("libbpf could not parse \(path): \(code.withNumber)")
        }
        self.btf = parsed
        self.path = path
    }

    deinit { btf__free(btf) }

    /// The layout of a member, found by a dotted path that starts with a struct or union name:
    /// `"tcp_sock.bytes_received"`, `"sock_common.skc_dport"`, `"net.ns.inum"`.
    ///
    /// Members of anonymous unions and structs are found as if they were direct members, so
    /// `"sock_common.skc_daddr"` works though the kernel nests it in an anonymous union.
    /// - Parameter path: `struct.member`, with more `.member` steps into nested structs.
    /// - Throws: `BPFError.btf` when the type or a member is missing, or is a bit field;
    ///   `.invalidArgument` when `path` names no member.
    public func member(_ path: String) throws(BPFError) -> MemberLayout {
        let parts = path.split(separator: ".").map(String.init)
        guard parts.count >= 2 else {
            throw BPFError.invalidArgument("a member path needs a type and a member: \(path)")
        }
        var typeID = try structID(named: parts[0])
        var offset = 0
        var size = 0
        for name in parts.dropFirst() {
            guard let found = findMember(named: name, in: typeID) else {
                throw BPFError.btf("\(path): no member \(name) in this kernel's \(typeName(typeID) ?? parts[0])")
            }
            if found.bitfield {
                throw BPFError.btf("\(path) is a bit field; read it with a mask, not at a byte offset")
            }
            offset += found.bitOffset / 8
            typeID = skipModifiers(found.typeID)
            let resolved = btf__resolve_size(btf, found.typeID)
            guard resolved >= 0 else { throw BPFError.btf("\(path): size unknown") }
            size = Int(resolved)
        }
        return MemberLayout(offset: offset, size: size)
    }

    /// Whether the struct or union exists in this kernel.
    public func hasStruct(_ name: String) -> Bool { (try? structID(named: name)) != nil }

    /// Whether the kernel has a function of this name (a candidate for fentry/kprobe).
    public func hasFunction(_ name: String) -> Bool {
        btf__find_by_name_kind(btf, name, BTFKind.function.rawValue) > 0
    }

    /// The BTF type id of a kernel function, for loading fentry programs.
    public func functionID(_ name: String) -> Int32? {
        let id = btf__find_by_name_kind(btf, name, BTFKind.function.rawValue)
        return id > 0 ? id : nil
    }

    /// The names of a kernel function's parameters, in order, from its BTF prototype.
    ///
    /// Parameter lists change between kernel versions (`udp_recvmsg` lost its `noblock` parameter
    /// in Linux 5.19), so a program that reads a parameter by position asks here instead of
    /// guessing from the version.
    /// - Parameter function: the kernel function, e.g. `udp_recvmsg`.
    /// - Returns: nil when the kernel's BTF has no such function.
    public func parameterNames(ofFunction function: String) -> [String]? {
        let id = btf__find_by_name_kind(btf, function, BTFKind.function.rawValue)
        guard id > 0, let type = btf__type_by_id(btf, UInt32(id)) else { return nil }
        // A FUNC's `type` is its FUNC_PROTO, whose entries are the parameters.
        guard let proto = btf__type_by_id(btf, type.pointee.type), BTFKind(of: proto) == .functionPrototype
        else { return nil }
        let count = Int(btf_vlen(proto))
        guard count > 0, let parameters = btf_params(proto) else { return [] }
        return (0..<count).map { index in
            btf__name_by_offset(btf, parameters[index].name_off).map { String(cString: $0) } ?? ""
        }
    }

    /// Where a parameter sits in a kernel function's prototype, found by name in BTF.
    ///
    /// For example `flags` of `udp_recvmsg` is parameter 4 from Linux 5.19 and 5 before (after
    /// `noblock`); a kprobe reads it from `PT_REGS_PARM4` or `PT_REGS_PARM5` accordingly.
    /// - Parameters:
    ///   - name: the parameter's name in the kernel source, e.g. `flags`.
    ///   - function: the kernel function, e.g. `udp_recvmsg`.
    /// - Returns: the 1-based position (as in `PT_REGS_PARMn`), or nil when the function or the
    ///   parameter is absent.
    public func parameterIndex(_ name: String, ofFunction function: String) -> Int? {
        parameterNames(ofFunction: function)?.firstIndex(of: name).map { $0 + 1 }
    }

    /// Resolves each member path and returns `-DNAME=offset` compiler flags.
    /// - Parameter offsets: macro name to member path, e.g. `"OFF_TCP_BYTES_RECEIVED": "tcp_sock.bytes_received"`.
    /// - Throws: what ``member(_:)`` throws for the first path that does not resolve.
    public func offsetDefines(_ offsets: KeyValuePairs<String, String>) throws(BPFError) -> [String] {
        var flags: [String] = []
        for (macro, path) in offsets { flags.append("-D\(macro)=\(try member(path).offset)") }
        return flags
    }

    // MARK: - Walking types

    private func structID(named name: String) throws(BPFError) -> Int32 {
        for kind in [BTFKind.structure, .union] {
            let id = btf__find_by_name_kind(btf, name, kind.rawValue)
            if id > 0 { return id }
        }
        throw BPFError.btf("this kernel's BTF has no struct or union \(name)")
    }

    private func typeName(_ id: Int32) -> String? {
        guard let type = btf__type_by_id(btf, UInt32(id)), let name = btf__name_by_offset(btf, type.pointee.name_off)
        else { return nil }
        return String(cString: name)
    }

    /// Follows typedefs and const/volatile/restrict qualifiers to the underlying type.
    private func skipModifiers(_ id: UInt32) -> Int32 {
        var current = id
        while let type = btf__type_by_id(btf, current) {
            switch BTFKind(of: type) {
            case .typedef, .const, .volatile, .restrict, .typeTag:
                current = type.pointee.type
            default:
                return Int32(current)
            }
        }
        return Int32(current)
    }

    private struct FoundMember {
        var typeID: UInt32
        var bitOffset: Int
        var bitfield: Bool
    }

    /// Depth-first search through anonymous members, adding their offsets.
    private func findMember(named name: String, in structID: Int32) -> FoundMember? {
        guard let type = btf__type_by_id(btf, UInt32(structID)) else { return nil }
        guard let kind = BTFKind(of: type), kind == .structure || kind == .union else { return nil }
        guard let members = btf_members(type) else { return nil }
        for index in 0..<Int(btf_vlen(type)) {
            let member = members[index]
            let bitOffset = Int(btf_member_bit_offset(type, UInt32(index)))
            let bitfield = btf_member_bitfield_size(type, UInt32(index)) != 0
            if member.name_off == 0 {
                if let inner = findMember(named: name, in: skipModifiers(member.type)) {
                    return FoundMember(typeID: inner.typeID, bitOffset: bitOffset + inner.bitOffset, bitfield: inner.bitfield)
                }
                continue
            }
            if let cName = btf__name_by_offset(btf, member.name_off), String(cString: cName) == name {
                return FoundMember(typeID: member.type, bitOffset: bitOffset, bitfield: bitfield)
            }
        }
        return nil
    }
}

/// BTF kind numbers (stable kernel ABI, `include/uapi/linux/btf.h`). Spelled out because the C
/// enumerators import twice, from libbpf's and BCC's copies of `linux/btf.h`, and are ambiguous.
private enum BTFKind: UInt32 {
    case structure = 4, union = 5, typedef = 8, volatile = 9, const = 10, restrict = 11
    case function = 12, functionPrototype = 13, typeTag = 18

    /// The kind of a BTF type; nil for the kinds this file does not look at.
    init?(of type: UnsafePointer<btf_type>) { self.init(rawValue: UInt32(btf_kind(type))) }
}
