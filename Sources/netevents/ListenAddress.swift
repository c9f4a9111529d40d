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
        // getaddrinfo makes the sockaddr of either family from the numeric address and port.
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let info = found?.pointee else { return EINVAL }
        defer { freeaddrinfo(found) }
        let fd = socket(info.ai_family, info.ai_socktype, info.ai_protocol)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        return bind(fd, info.ai_addr, info.ai_addrlen) == 0 ? nil : errno
    }
}
