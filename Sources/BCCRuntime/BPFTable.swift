import CBCCLoader
import CLibBPF
import Foundation
import Glibc
import SystemPackage

/// The kernel map types the runtime names; others are carried by their raw number.
public struct BPFMapType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `BPF_MAP_TYPE_HASH`.
    public static let hash = BPFMapType(rawValue: 1)
    /// `BPF_MAP_TYPE_ARRAY`.
    public static let array = BPFMapType(rawValue: 2)
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (`BPF_PERF_OUTPUT`).
    public static let perfEventArray = BPFMapType(rawValue: 4)
    /// `BPF_MAP_TYPE_PERCPU_HASH`.
    public static let perCPUHash = BPFMapType(rawValue: 5)
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`.
    public static let perCPUArray = BPFMapType(rawValue: 6)
    /// `BPF_MAP_TYPE_LRU_HASH`. Linux 4.10+.
    public static let lruHash = BPFMapType(rawValue: 9)
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`. Linux 4.10+.
    public static let lruPerCPUHash = BPFMapType(rawValue: 10)
    /// Linux 5.8+.
    public static let ringBuffer = BPFMapType(rawValue: 27)

    /// Whether each key holds one value per possible CPU.
    public var isPerCPU: Bool { self == .perCPUHash || self == .perCPUArray || self == .lruPerCPUHash }

    public var description: String {
        switch self {
        case .hash: return "hash"
        case .array: return "array"
        case .perfEventArray: return "perf event array"
        case .perCPUHash: return "per-CPU hash"
        case .perCPUArray: return "per-CPU array"
        case .lruHash: return "LRU hash"
        case .lruPerCPUHash: return "LRU per-CPU hash"
        case .ringBuffer: return "ring buffer"
        default: return "map type \(rawValue)"
        }
    }
}

/// A map a compiled program declared. Its file descriptor belongs to the ``BPFModule``, which this
/// value keeps alive.
public struct BPFTable: Sendable {
    /// The map's name in the C source.
    public let name: String
    /// The map's file descriptor, valid while the module lives.
    public let fd: Int32
    /// The kind of map.
    public let type: BPFMapType
    /// Bytes per key, as declared in C.
    public let keySize: Int
    /// Bytes per value (per CPU, for per-CPU maps), as declared in C.
    public let valueSize: Int
    /// The most entries the map holds (for ring buffers: its size in bytes).
    public let maxEntries: Int
    let module: BPFModule

    /// Typed access with Swift key and value types whose sizes must match the C declaration.
    /// - Throws: `BPFError.invalidArgument` when a size differs.
    public func typed<Key: BitwiseCopyable, Value: BitwiseCopyable>(
        key: Key.Type = Key.self, value: Value.Type = Value.self
    ) throws(BPFError) -> BPFMap<Key, Value> {
        try BPFMap(table: self)
    }
}

/// Typed access to a hash, LRU hash or array map (and their per-CPU variants).
///
/// The corresponding C functions are `bpf_lookup_elem`, `bpf_update_elem`, `bpf_delete_elem` and
/// `bpf_get_next_key`.
public struct BPFMap<Key: BitwiseCopyable, Value: BitwiseCopyable>: Sendable {
    /// The table this map reads and writes.
    public let table: BPFTable
    /// Number of values per key: 1, or the number of possible CPUs for per-CPU maps.
    public let valuesPerKey: Int

    init(table: BPFTable) throws(BPFError) {
        guard MemoryLayout<Key>.size == table.keySize else {
            throw BPFError.invalidArgument(
                "map \(table.name): key is \(table.keySize) bytes in C, \(MemoryLayout<Key>.size) in Swift (\(Key.self))")
        }
        guard MemoryLayout<Value>.size == table.valueSize else {
            throw BPFError.invalidArgument(
                "map \(table.name): value is \(table.valueSize) bytes in C, \(MemoryLayout<Value>.size) in Swift (\(Value.self))")
        }
        if table.type.isPerCPU {
            // The kernel lays per-CPU values out 8-byte aligned, one per possible CPU.
            guard MemoryLayout<Value>.stride % 8 == 0 else {
                throw BPFError.invalidArgument("map \(table.name): per-CPU values must have a stride that is a multiple of 8")
            }
            valuesPerKey = CPUs.possibleCount
        } else {
            valuesPerKey = 1
        }
        self.table = table
    }

    /// The value for `key`, or nil when absent. For per-CPU maps, the value on CPU 0; use
    /// ``lookupPerCPU(_:)`` for all of them.
    /// - Throws: `BPFError.mapOperationFailed` for any failure but absence.
    public func lookup(_ key: Key) throws(BPFError) -> Value? { try lookupPerCPU(key)?.first }

    /// Every CPU's value for `key` (one element for maps that are not per-CPU).
    /// - Returns: nil when the key is absent.
    /// - Throws: `BPFError.mapOperationFailed` for any failure but absence.
    public func lookupPerCPU(_ key: Key) throws(BPFError) -> [Value]? {
        var key = key
        var values = [Value](unsafeUninitializedCapacity: valuesPerKey) { buffer, count in
            memset(buffer.baseAddress!, 0, MemoryLayout<Value>.stride * valuesPerKey)
            count = valuesPerKey
        }
        let (result, code) = values.withUnsafeMutableBytes { bytes in
            (LibBCC.functions.bpf_lookup_elem(table.fd, &key, bytes.baseAddress), Errno.current)
        }
        if result == 0 { return values }
        if code == .noSuchFileOrDirectory { return nil }
        throw BPFError.mapOperationFailed(map: table.name, operation: "lookup", errno: code)
    }

    /// How ``update(_:_:flags:)`` treats an existing key.
    public enum UpdateFlags: UInt64, Sendable {
        /// Create or replace (`BPF_ANY`).
        case any = 0
        /// Only create (`BPF_NOEXIST`).
        case noExist = 1
        /// Only replace (`BPF_EXIST`).
        case exist = 2
    }

    /// Sets `key` to `value` (on every CPU, for per-CPU maps).
    /// - Throws: `BPFError.mapOperationFailed`: `EEXIST` or `ENOENT` when `flags` forbid the
    ///   update, `E2BIG` when a hash map is full.
    public func update(_ key: Key, _ value: Value, flags: UpdateFlags = .any) throws(BPFError) {
        var key = key
        var values = [Value](repeating: value, count: valuesPerKey)
        let (result, code) = values.withUnsafeMutableBytes { bytes in
            (LibBCC.functions.bpf_update_elem(table.fd, &key, bytes.baseAddress, flags.rawValue), Errno.current)
        }
        guard result == 0 else { throw BPFError.mapOperationFailed(map: table.name, operation: "update", errno: code) }
    }

    /// Removes `key`; returns whether it was present.
    /// - Throws: `BPFError.mapOperationFailed`, with `EINVAL` for array maps, which cannot delete.
    @discardableResult
    public func delete(_ key: Key) throws(BPFError) -> Bool {
        var key = key
        if LibBCC.functions.bpf_delete_elem(table.fd, &key) == 0 { return true }
        let code = Errno.current
        if code == .noSuchFileOrDirectory { return false }
        throw BPFError.mapOperationFailed(map: table.name, operation: "delete", errno: code)
    }

    /// Removes `key` and returns the value it held, in one step, so no update in between is lost.
    /// Hash maps only. Minimum kernel: 5.14 (for hash maps).
    /// - Returns: nil when the key was absent.
    /// - Throws: `BPFError.mapOperationFailed`, with `EINVAL` or `ENOTSUPP` where the kernel
    ///   cannot do it for this map type.
    public func lookupAndDelete(_ key: Key) throws(BPFError) -> Value? {
        var key = key
        var value = [UInt8](repeating: 0, count: MemoryLayout<Value>.stride * valuesPerKey)
        // libbpf sets errno as well as returning -errno.
        let (result, code) = value.withUnsafeMutableBytes { bytes in
            (bpf_map_lookup_and_delete_elem(table.fd, &key, bytes.baseAddress), Errno.current)
        }
        if result == 0 { return value.withUnsafeBytes { $0.loadUnaligned(as: Value.self) } }
        if code == .noSuchFileOrDirectory { return nil }
        throw BPFError.mapOperationFailed(map: table.name, operation: "lookup and delete", errno: code)
    }

    /// Every key present now. Keys inserted or deleted while iterating may be missed or repeated,
    /// as with any walk of a live kernel map.
    /// - Throws: `BPFError.mapOperationFailed` when the walk fails other than by reaching the end.
    public func keys() throws(BPFError) -> [Key] {
        var keys: [Key] = []
        var current: Key? = nil
        while true {
            var next = [UInt8](repeating: 0, count: table.keySize)
            let (result, code): (Int32, Errno) = next.withUnsafeMutableBytes { nextBytes in
                if var key = current {
                    return (LibBCC.functions.bpf_get_next_key(table.fd, &key, nextBytes.baseAddress), Errno.current)
                }
                return (LibBCC.functions.bpf_get_next_key(table.fd, nil, nextBytes.baseAddress), Errno.current)
            }
            if result != 0 {
                if code == .noSuchFileOrDirectory { return keys }
                throw BPFError.mapOperationFailed(map: table.name, operation: "iterate", errno: code)
            }
            let key = next.withUnsafeBytes { $0.loadUnaligned(as: Key.self) }
            keys.append(key)
            current = key
        }
    }

    /// Every (key, value) pair present now; values summed over CPUs are up to the caller.
    /// - Throws: `BPFError.mapOperationFailed` from the walk or a lookup.
    public func entries() throws(BPFError) -> [(key: Key, values: [Value])] {
        var entries: [(key: Key, values: [Value])] = []
        // A loop, not `compactMap`: that rethrows as `any Error`.
        for key in try keys() {
            if let values = try lookupPerCPU(key) { entries.append((key, values)) }
        }
        return entries
    }
}

/// CPU counts from sysfs, as BCC and libbpf read them.
public enum CPUs {
    /// CPUs that may ever come online: the length of per-CPU map values.
    public static let possibleCount: Int = parse("/sys/devices/system/cpu/possible").count
    /// CPUs online now: one perf buffer each.
    public static var online: [Int32] { parse("/sys/devices/system/cpu/online") }

    /// Parses a list like `0-3,5`.
    static func parse(_ path: String) -> [Int32] {
        guard let text = SystemChecks.readKernelFile(path) else { return [0] }
        return parseList(text)
    }

    static func parseList(_ text: String) -> [Int32] {
        var cpus: [Int32] = []
        for range in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let bounds = range.split(separator: "-").compactMap { Int32($0) }
            if bounds.count == 2 { cpus.append(contentsOf: bounds[0]...bounds[1]) } else if let one = bounds.first { cpus.append(one) }
        }
        return cpus.isEmpty ? [0] : cpus
    }
}
