import Glibc

/// A kernel version, as `uname -r` reports it, comparable by its numeric prefix.
public struct KernelVersion: Sendable, Comparable, CustomStringConvertible {
    /// The full release string, e.g. `6.1.0-56-amd64`.
    public let release: String
    /// Major, minor and patch numbers: `[6, 1, 0]`.
    public let numbers: [Int]

    /// Parses a release string such as `6.1.0-56-amd64`; missing numbers are 0.
    public init(release: String) {
        self.release = release
        var numbers: [Int] = []
        for part in release.split(whereSeparator: { $0 == "." || $0 == "-" || $0 == "+" }).prefix(3) {
            guard let value = Int(part) else { break }
            numbers.append(value)
        }
        self.numbers = numbers
    }

    /// The running kernel.
    public static let running: KernelVersion = {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        return KernelVersion(release: release)
    }()

    /// Whether this kernel is at least `major.minor`.
    public func isAtLeast(_ major: Int, _ minor: Int) -> Bool {
        numbers.lexicographicallyPrecedes([major, minor]) == false
    }

    public static func < (lhs: KernelVersion, rhs: KernelVersion) -> Bool {
        lhs.numbers.lexicographicallyPrecedes(rhs.numbers)
    }

    public static func == (lhs: KernelVersion, rhs: KernelVersion) -> Bool { lhs.numbers == rhs.numbers }

    public var description: String { release }
}
