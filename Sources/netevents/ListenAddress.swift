import ArgumentParser
import Glibc
import NetEventsCore

/// Where the agent listens: an IP address (IPv6 in brackets) and a port, `127.0.0.1:9750`,
/// `[::1]:9750`, or `0.0.0.0:9750` for every interface.
struct ListenAddress: ExpressibleByArgument, CustomStringConvertible, Sendable {
    var host: String
    var port: Int

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":") else { return nil }
        let digits = argument[argument.index(after: colon)...]
        // Digits only, as written back: Int() would also take "+80".
        guard digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber), !digits.hasPrefix("0"),
            let port = Int(digits), (1...65_535).contains(port)
        else { return nil }
        var host = String(argument[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard host.contains(":") else { return nil }
        } else if host.contains(":") {
            return nil  // an IPv6 address needs its brackets: [::1]:9750
        }
        // Only numeric addresses: a name would be resolved at bind, where a typo is a poor error.
        guard Self.family(of: host) != nil else { return nil }
        self.host = host
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    static let help = ArgumentHelp(
        "Address and port to serve /metrics on: IP:PORT, [IPv6]:PORT.", valueName: "address")

    /// AF_INET or AF_INET6 for a numeric address; nil for anything else.
    static func family(of host: String) -> Int32? {
        IPAddress(host).map { $0.family == .ipv4 ? AF_INET : AF_INET6 }
    }

    /// Binds a socket to the address and lets it go: whether the server will be able to, asked
    /// before the monitors compile, so that a port in use is said at once. nil when it can.
    func bindError() -> Int32? {
        guard let family = Self.family(of: host) else { return EINVAL }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let result: Int32
        if family == AF_INET {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, host, &address.sin_addr)
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } else {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET6, host, &address.sin6_addr)
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        return result == 0 ? nil : errno
    }
}
