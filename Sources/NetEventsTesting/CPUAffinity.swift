import Foundation

/// The CPUs the calling thread may run on (`sched_setaffinity(2)`), for code that needs work done
/// on a given CPU: a pinned measurement, or traffic on every CPU so that each per-CPU perf buffer
/// sees a sample.
public enum CPUAffinity {
    /// Why the thread's CPU mask could not be read or set.
    public struct Failure: Error, CustomStringConvertible {
        /// The call that failed and the reason `strerror(3)` gives.
        public let description: String
    }

    /// Pins the calling thread, and every thread it creates later, to `cpu`.
    public static func pin(to cpu: Int) throws {
        var set = cpu_set_t()
        withUnsafeMutableBytes(of: &set) { $0[cpu / 8] = UInt8(1 << (cpu % 8)) }
        try apply(set, what: "cpu \(cpu)")
    }

    /// The CPUs the calling thread may run on now, in ascending order.
    public static func allowed() throws -> [Int] {
        // sched_getaffinity and sched_setaffinity are GNU extensions the Glibc module does not import.
        typealias GetAffinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
        let get = try symbol("sched_getaffinity", as: GetAffinity.self)
        var set = cpu_set_t()
        guard withUnsafeMutableBytes(of: &set, { get(0, $0.count, $0.baseAddress!) }) == 0 else {
            throw Failure(description: "sched_getaffinity: \(String(cString: strerror(errno)))")
        }
        return withUnsafeBytes(of: &set) { bytes in
            (0..<bytes.count * 8).filter { bytes[$0 / 8] & UInt8(1 << ($0 % 8)) != 0 }
        }
    }

    /// Runs `body` once on each CPU the thread may run on, pinned to it, and then lets the thread
    /// run where it could before, also when `body` throws.
    public static func onEachCPU(_ body: (Int) throws -> Void) throws {
        let cpus = try allowed()
        var set = cpu_set_t()
        withUnsafeMutableBytes(of: &set) { bytes in
            for cpu in cpus { bytes[cpu / 8] |= UInt8(1 << (cpu % 8)) }
        }
        defer { try? apply(set, what: "the CPUs \(cpus)") }
        for cpu in cpus {
            try pin(to: cpu)
            try body(cpu)
        }
    }

    private static func apply(_ set: cpu_set_t, what: String) throws {
        typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
        let setAffinity = try symbol("sched_setaffinity", as: SetAffinity.self)
        var set = set
        guard withUnsafeBytes(of: &set, { setAffinity(0, $0.count, $0.baseAddress!) }) == 0 else {
            throw Failure(description: "sched_setaffinity(\(what)): \(String(cString: strerror(errno)))")
        }
    }

    private static func symbol<Function>(_ name: String, as type: Function.Type) throws -> Function {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, name) else {
            throw Failure(description: "\(name) not found in libc")
        }
        return unsafeBitCast(symbol, to: type)
    }
}
