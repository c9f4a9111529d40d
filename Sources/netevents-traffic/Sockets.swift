import CMessages
import Glibc

/// Thin socket helpers for the traffic generator: exact byte counts, errors that exit loudly.
enum Sockets {
    static func die(_ message: String) -> Never {
        let text = "netevents-traffic: \(message): \(String(cString: strerror(errno)))\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        exit(1)
    }

    static func check(_ result: Int32, _ what: String) -> Int32 {
        if result < 0 { die(what) }
        return result
    }

    /// A DNS query built by hand (RFC 1035): `id`, RD, one question for `name`, type A, class IN.
    static func query(id: UInt16, name: String) -> [UInt8] {
        var message: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") { message += [UInt8(label.utf8.count)] + Array(label.utf8) }
        return message + [0, 0, 1, 0, 1]
    }

    /// A socket of `type` bound to the loopback address of `family` at `port` (0: any free port).
    static func bound(family: Int32, type: Int32, port: UInt16) -> Int32 {
        let fd = check(socket(family, type, 0), "socket")
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        withLoopback(family: family, port: port) { address, length in
            _ = check(bind(fd, address, length), "bind")
        }
        return fd
    }

    /// Calls `body` with a sockaddr for loopback (`127.0.0.1` or `::1`; with `mapped`, an IPv6
    /// socket's `::ffff:127.0.0.1`) and `port`.
    static func withLoopback<R>(family: Int32, port: UInt16, mapped: Bool = false, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        if family == AF_INET6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr = in6addr_loopback
            if mapped { withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]) } }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// One sendmmsg (each buffer a datagram) or recvmmsg (into buffers of their size, waiting for
    /// the first): the number of messages moved, or -1.
    static func mmsg(_ fd: Int32, buffers: [[UInt8]], send: Bool) -> Int {
        var storage = buffers
        let count = storage.count
        var vectors = [iovec](repeating: iovec(), count: count)
        let messages = UnsafeMutableRawPointer.allocate(byteCount: Int(NE_MMSGHDR_SIZE) * count, alignment: 8)
        defer { messages.deallocate() }
        messages.initializeMemory(as: UInt8.self, repeating: 0, count: Int(NE_MMSGHDR_SIZE) * count)
        return storage.withUnsafeMutableBufferPointer { all in
            for index in all.indices {
                all[index].withUnsafeMutableBytes { vectors[index] = iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
            }
            return vectors.withUnsafeMutableBufferPointer { iov in
                for index in 0..<count {
                    var header = msghdr()
                    header.msg_iov = iov.baseAddress! + index
                    header.msg_iovlen = 1
                    messages.storeBytes(of: header, toByteOffset: index * Int(NE_MMSGHDR_SIZE), as: msghdr.self)
                }
                let moved = send
                    ? ne_sendmmsg(fd, messages, UInt32(count), 0)
                    : ne_recvmmsg(fd, messages, UInt32(count), Int32(MSG_WAITFORONE), nil)
                return Int(moved)
            }
        }
    }

    /// The local port of a bound socket.
    static func localPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return withUnsafeBytes(of: &storage) { raw in
            // sin_port and sin6_port sit at the same offset.
            UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        }
    }

    /// Raises the soft limit on descriptors to the hard one: the mass-socket commands hold many.
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// `text` (an IPv4 address such as `127.0.0.5`) at `port`, or the end of the process.
    static func ipv4(_ text: String, port: UInt16 = 0) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, text, &address.sin_addr) == 1 else { die("\(text): not an IPv4 address") }
        return address
    }

    /// Binds (or, with `connecting`, connects) `fd` to `address`; the call's result.
    static func use(_ fd: Int32, _ address: sockaddr_in, connecting: Bool = false) -> Int32 {
        var address = address
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connecting ? connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) : bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    static func connectLoopback(_ fd: Int32, family: Int32, port: UInt16) {
        withLoopback(family: family, port: port) { address, length in
            _ = check(connect(fd, address, length), "connect")
        }
    }

    /// Sends exactly `count` bytes.
    static func sendAll(_ fd: Int32, count: Int) {
        let chunk = [UInt8](repeating: 0x61, count: min(max(count, 1), 65536))
        var left = count
        while left > 0 {
            let sent = chunk.withUnsafeBytes { send(fd, $0.baseAddress, min(left, chunk.count), Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                die("send")
            }
            left -= sent
        }
    }

    /// Receives exactly `count` bytes, or fewer if the peer closes first; returns how many.
    @discardableResult
    static func receiveAll(_ fd: Int32, count: Int) -> Int {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var received = 0
        while received < count {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min(count - received, $0.count), 0) }
            if got < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { return received }
                die("recv")
            }
            if got == 0 { break }
            received += got
        }
        return received
    }

    /// Closes with `SO_LINGER` 0: the kernel sends a RST instead of a FIN.
    static func abort(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = check(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size)), "SO_LINGER")
        close(fd)
    }

    /// Drops privileges to `uid` (and the same gid), so the traffic belongs to another user.
    static func become(uid: UInt32?) {
        guard let uid else { return }
        _ = check(setgroups(0, nil), "setgroups")
        _ = check(setgid(uid), "setgid")
        _ = check(setuid(uid), "setuid")
    }
}

/// Prints a line to standard output at once (the test reads it through a pipe).
func say(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(1, $0, strlen($0)) }
}

/// Waits for a line on standard input (a go-ahead from the test).
func waitForLine() {
    var byte: UInt8 = 0
    while read(0, &byte, 1) == 1 && byte != 10 {}
}
