// Generates loopback traffic with exact, known byte counts, for the integration tests, the
// benchmarks and anyone checking the tracers by hand. Each command prints what it did as
// `key=value` words on one line, so a test can check every field of the events it caused.
//
//   netevents-traffic tcp-server [-6] --port P --receive N --send M [--uid U] [--expect-reset]
//   netevents-traffic tcp-client [-6] --port P --send N --receive M [--uid U] [--abort]
//   netevents-traffic tcp-burst  [-6] --count C [--port P]
//   netevents-traffic tcp-connect [-6] --port P [--uid U] [--syn-retries N] [--give-up-ms MS]
//       one connect that may fail: says `connected`, `failed ... errno=E`, or (--give-up-ms) closes
//       the socket still connecting after MS milliseconds and says `gave-up`; exits 0 in each case
//   netevents-traffic udp-receiver [-6] --packets K [--port P] [--uid U] [--hold] [--connect-after-first]
//   netevents-traffic udp-sender   [-6] --port P --packets K --sizes S[,S...] [--connect] [--uid U] [--hold]
//       [--mapped]: with -6, to ::ffff:127.0.0.1 (a v4-mapped peer; the receiver is IPv4)
//   netevents-traffic dns-query [-6] --port P --names N[,N...]: one A query per name, sent at once
//       with sendmmsg and answered through recvmmsg (as the C library sends A and AAAA)
//   netevents-traffic udp-flood    [-6] --count N [--size 64] [--sink-port P] [--dns]: sendto to a
//       loopback sink that never reads; --dns sends an A query (a new id each) instead of the bytes
//   netevents-traffic udp-sockets  --count N [--source 127.0.0.K] [--peers M]: N UDP sockets (as
//       many as the descriptor limit allows), each bound to the source address (the ephemeral ports
//       of one address run out near 28,000) and sending one 8-byte datagram to each of M sinks
//       (default 1) that never read; says `ready`, then holds them all until SIGTERM, when the exit
//       closes them at once
//   netevents-traffic tcp-sockets  --count N [--source 127.0.0.K]: N loopback connections to a
//       listener of its own on the source address, each accepted (2N sockets); says `ready` with
//       the listener's port, then holds them all until SIGTERM, when the exit closes them at once
// --hold: after the traffic, wait for a line on standard input before closing the socket.
// --name N: set the process's comm to N first (as prctl(PR_SET_NAME) does), as any process may.
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())
let usage = "usage: netevents-traffic tcp-server|tcp-client|tcp-burst|tcp-connect|udp-receiver|udp-sender|udp-flood|udp-sockets|tcp-sockets|dns-query [options]"
guard let command = arguments.first else {
    say(usage)
    exit(2)
}
// Help anywhere, as in `netevents-traffic tcp-sockets --help`: a generator must not start then.
// (Not the value of --name, which may be any text.)
let asksHelp = arguments.indices.contains { ["--help", "-h"].contains(arguments[$0]) && ($0 == 0 || arguments[$0 - 1] != "--name") }
if command == "help" || asksHelp {
    say(usage + "\n(the options of each command are listed at the top of Sources/netevents-traffic/main.swift)")
    exit(0)
}
if let index = arguments.firstIndex(of: "--name"), index + 1 < arguments.count {
    // Writing the main thread's comm is what prctl(PR_SET_NAME) does; any process may.
    let fd = open("/proc/self/comm", O_WRONLY)
    if fd >= 0 {
        let name = Array(arguments[index + 1].utf8)
        _ = name.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

@MainActor func flag(_ name: String) -> Bool { arguments.contains(name) }
@MainActor func value(_ name: String) -> Int? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return Int(arguments[index + 1])
}

/// Says what a UDP command did, holds the socket open if asked (`--hold`), closes it and says so.
@MainActor func finishUDP(_ verb: String, fd: Int32, packets: Int, bytes: Int) {
    say("\(verb) pid=\(getpid()) port=\(Sockets.localPort(fd)) packets=\(packets) bytes=\(bytes)")
    if flag("--hold") { waitForLine() }
    close(fd)
    say("closed pid=\(getpid())")
}

let family = flag("-6") ? AF_INET6 : AF_INET
let port = UInt16(value("--port") ?? 0)
let uid = value("--uid").map(UInt32.init)

switch command {
case "tcp-server":
    Sockets.become(uid: uid)
    let listener = Sockets.bound(family: family, type: Int32(SOCK_STREAM.rawValue), port: port)
    _ = Sockets.check(listen(listener, 16), "listen")
    say("listening pid=\(getpid()) port=\(Sockets.localPort(listener))")
    let fd = Sockets.check(accept(listener, nil, nil), "accept")
    close(listener)
    let received = Sockets.receiveAll(fd, count: value("--receive") ?? 0)
    if flag("--expect-reset") {
        say("received pid=\(getpid()) received=\(received)")
        // Wait for the peer's RST (recv returns 0 or ECONNRESET), then close.
        _ = Sockets.receiveAll(fd, count: 1)
    } else {
        Sockets.sendAll(fd, count: value("--send") ?? 0)
        // Wait for the client's FIN, so both sides close cleanly.
        _ = Sockets.receiveAll(fd, count: 1)
    }
    close(fd)
    say("done pid=\(getpid()) received=\(received)")

case "tcp-client":
    Sockets.become(uid: uid)
    let fd = Sockets.check(socket(family, Int32(SOCK_STREAM.rawValue), 0), "socket")
    Sockets.connectLoopback(fd, family: family, port: port)
    say("connected pid=\(getpid()) port=\(Sockets.localPort(fd))")
    Sockets.sendAll(fd, count: value("--send") ?? 0)
    if flag("--abort") {
        // Let the server read everything first, so its counters are final, then reset.
        waitForLine()
        Sockets.abort(fd)
        say("done pid=\(getpid()) received=0")
    } else {
        let received = Sockets.receiveAll(fd, count: value("--receive") ?? 0)
        close(fd)
        say("done pid=\(getpid()) received=\(received)")
    }

case "tcp-connect":
    Sockets.become(uid: uid)
    let fd = Sockets.check(socket(family, Int32(SOCK_STREAM.rawValue), 0), "socket")
    if var retries = value("--syn-retries").map(Int32.init) {
        _ = Sockets.check(setsockopt(fd, Int32(IPPROTO_TCP), TCP_SYNCNT, &retries, 4), "TCP_SYNCNT")
    }
    let giveUp = value("--give-up-ms")
    if giveUp != nil { _ = Sockets.check(fcntl(fd, F_SETFL, O_NONBLOCK), "O_NONBLOCK") }
    let result = Sockets.withLoopback(family: family, port: port) { connect(fd, $0, $1) }
    let error = result == 0 ? 0 : errno
    if let giveUp, error == EINPROGRESS {
        let local = Sockets.localPort(fd)
        var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        _ = poll(&descriptor, 1, Int32(giveUp))
        close(fd)
        say("gave-up pid=\(getpid()) port=\(local)")
    } else if error == 0 {
        say("connected pid=\(getpid()) port=\(Sockets.localPort(fd))")
        close(fd)
    } else {
        say("failed pid=\(getpid()) errno=\(error)")
        close(fd)
    }

case "tcp-burst":
    // Opens and closes connections as fast as it can: one byte each way, both ends closed.
    let count = value("--count") ?? 1000
    let listener = Sockets.bound(family: family, type: Int32(SOCK_STREAM.rawValue), port: port)
    _ = Sockets.check(listen(listener, 1024), "listen")
    say("listening pid=\(getpid()) port=\(Sockets.localPort(listener))")
    if flag("--wait") { waitForLine() }
    let serverPort = Sockets.localPort(listener)
    var byte: UInt8 = 1
    var start = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    for _ in 0..<count {
        let client = Sockets.check(socket(family, Int32(SOCK_STREAM.rawValue), 0), "socket")
        Sockets.connectLoopback(client, family: family, port: serverPort)
        let server = Sockets.check(accept(listener, nil, nil), "accept")
        _ = send(client, &byte, 1, Int32(MSG_NOSIGNAL))
        _ = recv(server, &byte, 1, 0)
        _ = send(server, &byte, 1, Int32(MSG_NOSIGNAL))
        _ = recv(client, &byte, 1, 0)
        close(client)
        close(server)
    }
    var end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &end)
    let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
    say("done pid=\(getpid()) connections=\(count) seconds=\(seconds) rate=\(Int(Double(count) / seconds))")

case "udp-receiver":
    let fd = Sockets.bound(family: family, type: Int32(SOCK_DGRAM.rawValue), port: port)
    // Room for every datagram of a test even if this process is slow to read (loopback drops what
    // overflows the buffer), set while still privileged; and never wait forever.
    var bufferSize: Int32 = 32 << 20
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
    var timeout = timeval(tv_sec: 30, tv_usec: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    Sockets.become(uid: uid)
    say("bound pid=\(getpid()) port=\(Sockets.localPort(fd))")
    var buffer = [UInt8](repeating: 0, count: 65536)
    var packets = 0
    var bytes = 0
    // As iperf3's UDP server does: connect to the first sender, then read without an address.
    let connectAfterFirst = flag("--connect-after-first")
    while packets < (value("--packets") ?? 1) {
        // With the sender's address, as servers ask for it (so the kernel's recvmsg hook sees it).
        var peer = sockaddr_storage()
        var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let asksAddress = !(connectAfterFirst && packets > 0)
        let got = buffer.withUnsafeMutableBytes { bytes in
            withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    asksAddress ? recvfrom(fd, bytes.baseAddress, bytes.count, 0, $0, &peerLength) : recv(fd, bytes.baseAddress, bytes.count, 0)
                }
            }
        }
        if got < 0 {
            if errno == EINTR { continue }
            if errno == EAGAIN { Sockets.die("no datagram for 30 s after \(packets) (dropped?)") }
            Sockets.die("recvfrom")
        }
        if connectAfterFirst && packets == 0 {
            let connected = withUnsafePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, peerLength) } }
            if connected != 0 { Sockets.die("connect") }
        }
        packets += 1
        bytes += got
    }
    finishUDP("received", fd: fd, packets: packets, bytes: bytes)

case "udp-sender":
    Sockets.become(uid: uid)
    let fd = Sockets.check(socket(family, Int32(SOCK_DGRAM.rawValue), 0), "socket")
    let connected = flag("--connect")
    if connected { Sockets.connectLoopback(fd, family: family, port: port) }
    let sizes = (arguments.firstIndex(of: "--sizes").map { arguments[$0 + 1] } ?? "64").split(separator: ",").compactMap { Int($0) }
    let payload = [UInt8](repeating: 0x75, count: (sizes.max() ?? 64))
    var packets = 0
    var bytes = 0
    for index in 0..<(value("--packets") ?? 1) {
        let size = sizes[index % sizes.count]
        let sent: Int = payload.withUnsafeBytes { raw in
            if connected { return send(fd, raw.baseAddress, size, 0) }
            return Sockets.withLoopback(family: family, port: port, mapped: flag("--mapped")) { sendto(fd, raw.baseAddress, size, 0, $0, $1) }
        }
        if sent < 0 { Sockets.die("send") }
        packets += 1
        bytes += sent
    }
    finishUDP("sent", fd: fd, packets: packets, bytes: bytes)

case "dns-query":
    let names = (arguments.firstIndex(of: "--names").map { arguments[$0 + 1] } ?? "web.test").split(separator: ",").map(String.init)
    let queries: [[UInt8]] = names.enumerated().map { index, name in Sockets.query(id: 0x4e00 + UInt16(index + 1), name: name) }
    let fd = Sockets.check(socket(family, Int32(SOCK_DGRAM.rawValue), 0), "socket")
    Sockets.connectLoopback(fd, family: family, port: port)
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let sent = Sockets.mmsg(fd, buffers: queries.map { $0 }, send: true)
    if sent != queries.count { Sockets.die("sendmmsg sent \(sent) of \(queries.count)") }
    var answered = 0
    while answered < queries.count {
        let got = Sockets.mmsg(fd, buffers: Array(repeating: [UInt8](repeating: 0, count: 512), count: queries.count - answered), send: false)
        if got <= 0 { Sockets.die("recvmmsg") }
        answered += got
    }
    say("answered pid=\(getpid()) port=\(Sockets.localPort(fd)) queries=\(queries.count) responses=\(answered)")

case "udp-sockets":
    // A mass close: many sockets, one datagram each, all released together by the exit.
    Sockets.raiseDescriptorLimit()
    let wanted = value("--count") ?? 1000
    let sinks = (0..<max(1, value("--peers") ?? 1)).map { _ in Sockets.bound(family: AF_INET, type: Int32(SOCK_DGRAM.rawValue), port: 0) }
    let sinkPorts = sinks.map(Sockets.localPort)
    var opened = 0
    var payload: UInt64 = 0x7564_7073_6f63_6b73
    let sourceText = arguments.firstIndex(of: "--source").map { arguments[$0 + 1] } ?? "127.0.0.1"
    let source = Sockets.ipv4(sourceText)
    while opened < wanted {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { break }  // the descriptor limit
        if Sockets.use(fd, source) != 0 { Sockets.die("bind \(sourceText)") }
        for port in sinkPorts {
            Sockets.withLoopback(family: AF_INET, port: port) { address, length in
                if sendto(fd, &payload, 8, 0, address, length) != 8 { Sockets.die("sendto") }
            }
        }
        opened += 1
    }
    if opened < wanted { say("limited pid=\(getpid()) sockets=\(opened) wanted=\(wanted) errno=\(errno)") }
    say("ready pid=\(getpid()) sockets=\(opened) peers=\(sinkPorts.count)")
    while true { pause() }  // SIGTERM ends the process: its exit closes every socket at once

case "tcp-sockets":
    // Many live connections held by one process: a listener on the source address, and N clients
    // bound to it, each accepted at once (2N sockets, every one in the tracer's map of owners).
    Sockets.raiseDescriptorLimit()
    let wanted = value("--count") ?? 1000
    let sourceText = arguments.firstIndex(of: "--source").map { arguments[$0 + 1] } ?? "127.0.0.1"
    let source = Sockets.ipv4(sourceText)
    let listener = Sockets.check(socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0), "socket")
    if Sockets.use(listener, source) != 0 { Sockets.die("bind \(sourceText)") }
    _ = Sockets.check(listen(listener, 128), "listen")
    let server = Sockets.ipv4(sourceText, port: Sockets.localPort(listener))
    var connections = 0
    while connections < wanted {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard client >= 0 else { break }  // the descriptor limit
        if Sockets.use(client, source) != 0 { Sockets.die("bind \(sourceText)") }
        if Sockets.use(client, server, connecting: true) != 0 { Sockets.die("connect \(sourceText)") }
        let accepted = accept(listener, nil, nil)
        guard accepted >= 0 else {
            close(client)
            break  // the descriptor limit
        }
        connections += 1
    }
    if connections < wanted { say("limited pid=\(getpid()) connections=\(connections) wanted=\(wanted) errno=\(errno)") }
    say("ready pid=\(getpid()) sockets=\(2 * connections) port=\(Sockets.localPort(listener))")
    while true { pause() }  // SIGTERM ends the process: its exit closes every socket at once

case "udp-flood":
    // 64-byte datagrams to a loopback sink that never reads (the kernel drops what overflows it).
    let count = value("--count") ?? 100_000
    let dns = flag("--dns")
    var payload = dns ? Sockets.query(id: 0, name: "flood.test") : [UInt8](repeating: 0x75, count: value("--size") ?? 64)
    let size = payload.count
    let sink = Sockets.bound(family: family, type: Int32(SOCK_DGRAM.rawValue), port: UInt16(value("--sink-port") ?? 0))
    let sinkPort = Sockets.localPort(sink)
    let fd = Sockets.check(socket(family, Int32(SOCK_DGRAM.rawValue), 0), "socket")
    say("ready pid=\(getpid()) sink=\(sinkPort)")
    if flag("--wait") { waitForLine() }
    var start = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    var bytes = 0
    Sockets.withLoopback(family: family, port: sinkPort) { address, length in
        payload.withUnsafeMutableBytes { raw in
            for index in 0..<count {
                if dns { raw.storeBytes(of: UInt16(truncatingIfNeeded: index).bigEndian, as: UInt16.self) }  // the query's id
                let sent = sendto(fd, raw.baseAddress, size, 0, address, length)
                if sent < 0 { Sockets.die("sendto") }
                bytes += sent
            }
        }
    }
    var end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &end)
    let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
    say("sent pid=\(getpid()) port=\(Sockets.localPort(fd)) packets=\(count) bytes=\(bytes) seconds=\(seconds) rate=\(Int(Double(count) / seconds))")
    if flag("--hold") { waitForLine() }
    close(fd)
    close(sink)

default:
    say("unknown command \(command)")
    exit(2)
}
