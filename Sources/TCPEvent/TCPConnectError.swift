#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a connect failed: the error the kernel left on the socket (`sk_err`), which is what
/// `connect(2)` or `SO_ERROR` gives the connecting process.
public struct TCPConnectError: Sendable, Hashable, CustomStringConvertible {
    /// The errno value, e.g. `ECONNREFUSED` (111 on Linux).
    public var code: Int32

    /// The error with this errno value.
    public init(code: Int32) { self.code = code }

    /// The error with this name (`ECONNREFUSED`, or `errno 200` for one without a name here).
    public init?(name: String) {
        if let known = Self.names.first(where: { $0.name == name }) {
            code = known.code
        } else if name.hasPrefix("errno "), let code = Int32(name.dropFirst(6)) {
            self.code = code
        } else {
            return nil
        }
    }

    /// The errno name, as C spells it (`ECONNREFUSED`, `ETIMEDOUT`, `EHOSTUNREACH`), or
    /// `errno N` for a code without a name here.
    public var name: String { Self.names.first { $0.code == code }?.name ?? "errno \(code)" }

    public var description: String { name }

    /// The errors a TCP connect can end with (tcp_reset, tcp_write_err, the ICMP handlers).
    static let names: [(code: Int32, name: String)] = [
        (ECONNREFUSED, "ECONNREFUSED"), (ETIMEDOUT, "ETIMEDOUT"), (EHOSTUNREACH, "EHOSTUNREACH"),
        (ENETUNREACH, "ENETUNREACH"), (ECONNRESET, "ECONNRESET"), (ECONNABORTED, "ECONNABORTED"),
        (EHOSTDOWN, "EHOSTDOWN"), (ENETDOWN, "ENETDOWN"), (ENONET, "ENONET"), (EPROTO, "EPROTO"),
        (EACCES, "EACCES"), (EPERM, "EPERM"), (EPIPE, "EPIPE"), (EMSGSIZE, "EMSGSIZE"),
        (ENOPROTOOPT, "ENOPROTOOPT"), (EADDRNOTAVAIL, "EADDRNOTAVAIL"), (ENOBUFS, "ENOBUFS"),
        (ENOMEM, "ENOMEM"), (EINVAL, "EINVAL"), (EOPNOTSUPP, "EOPNOTSUPP"),
    ]
}
