// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "swift-net-events",
    products: [
        // The event kinds: each brings the monitor core and the BCC binding with it.
        .library(name: "TCPEvent", targets: ["TCPEvent"]),
        .library(name: "UDPEvent", targets: ["UDPEvent"]),
        .library(name: "DNSEvent", targets: ["DNSEvent"]),
        // Mock sample sources and sample builders, for tests of code that consumes events.
        .library(name: "NetEventsTesting", targets: ["NetEventsTesting"]),
        // The BCC binding alone (compile, load, attach, read), for programs of one's own.
        .library(name: "BCCRuntime", targets: ["BCCRuntime"]),
        .executable(name: "tcp-events", targets: ["tcp-events"]),
        .executable(name: "udp-events", targets: ["udp-events"]),
        .executable(name: "dns-events", targets: ["dns-events"]),
        .executable(name: "tcp-top", targets: ["tcp-top"]),
        // The fleet agent: `netevents serve` exports the monitors' counts to Prometheus.
        .executable(name: "netevents", targets: ["netevents"]),
        // The monitors' events as Prometheus metrics, for agents of one's own.
        .library(name: "NetEventsMetrics", targets: ["NetEventsMetrics"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        // The agent: the Prometheus registry and exposition, its HTTP server, SIGTERM, logs.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // `swift package generate-documentation` (CI builds the documentation with it).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // C APIs, as system libraries resolved through pkg-config.
        .systemLibrary(
            name: "CLibBPF",
            pkgConfig: "libbpf",
            providers: [.apt(["libbpf-dev"])]
        ),

        // BCC's C API (Debian `libbpfcc-dev`), from libbcc opened at the first compile rather
        // than linked (CBCCLoader.c says why). Not a system library: pkg-config would link libbcc.
        .target(name: "CBCCLoader"),

        // glibc's malloc.h (malloc_trim), which Swift's Glibc module leaves out.
        .systemLibrary(name: "CMalloc"),
        // glibc's open_by_handle_at (a cgroup v2 directory from its id), which Swift's Glibc module leaves out.
        .systemLibrary(name: "CFileHandles"),
        // glibc's sendmmsg/recvmmsg, for the traffic generator's DNS client.
        .systemLibrary(name: "CMessages"),
        // perf_event_open(2) and its ioctls: the kernel's own count of a tracepoint's hits.
        .systemLibrary(name: "CPerfEvents"),
        // Blocks SIGINT and SIGTERM before main, so a signal that comes before the handlers is kept.
        // For executables only: a library must not change its users' signal masks.
        .target(name: "CEarlySignals"),

        // Embeds bpf/*.c and bpf/*.h into the targets that run them.
        .executableTarget(name: "EmbedBPFTool"),
        .plugin(name: "EmbedBPF", capability: .buildTool(), dependencies: ["EmbedBPFTool"]),

        // Compile, load, attach, read; BTF, features, headers, errors.
        .target(
            name: "BCCRuntime",
            dependencies: ["CBCCLoader", "CLibBPF", "CMalloc", "CPerfEvents", .product(name: "SystemPackage", package: "swift-system")]
        ),

        // The kernel/user contract: sample, map and counter layouts, shared by bpf/ and Swift.
        .target(name: "CNetEventsABI"),

        // The event machinery every kind plugs into: monitor, delivery, options, reports, JSON.
        .target(name: "NetEventsCore", dependencies: ["BCCRuntime", "CFileHandles", "CNetEventsABI", .product(name: "SystemPackage", package: "swift-system")]),

        .target(name: "TCPEvent", dependencies: ["NetEventsCore", "CNetEventsABI"], plugins: ["EmbedBPF"]),
        .target(name: "UDPEvent", dependencies: ["NetEventsCore", "CNetEventsABI"], plugins: ["EmbedBPF"]),
        // DNS queries and responses seen on UDP sockets, parsed from the datagrams in user space.
        .target(name: "DNSEvent", dependencies: ["NetEventsCore", "UDPEvent", "CNetEventsABI"], plugins: ["EmbedBPF"]),

        .target(name: "NetEventsTesting", dependencies: ["NetEventsCore", "TCPEvent", "UDPEvent", "CNetEventsABI"]),

        // What the command-line tools share: options, the run loop, tables, output. No event kind.
        .target(
            name: "EventOutput",
            dependencies: ["NetEventsCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        .executableTarget(
            name: "tcp-events",
            dependencies: [
                "TCPEvent",
                "EventOutput",
                "CEarlySignals",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .executableTarget(
            name: "udp-events",
            dependencies: [
                "UDPEvent",
                "EventOutput",
                "CEarlySignals",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .executableTarget(
            name: "dns-events",
            dependencies: [
                "DNSEvent",
                "EventOutput",
                "CEarlySignals",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // A live terminal view of the busiest connections or processes.
        .executableTarget(
            name: "tcp-top",
            dependencies: [
                "TCPEvent",
                "EventOutput",
                "CEarlySignals",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // TCP and UDP events counted into a Prometheus registry, with bounded labels.
        .target(
            name: "NetEventsMetrics",
            dependencies: ["TCPEvent", "UDPEvent", .product(name: "Prometheus", package: "swift-prometheus")]
        ),

        // The agent: monitors, metrics and an HTTP server under one service group.
        .executableTarget(
            name: "netevents",
            dependencies: [
                "NetEventsMetrics",
                "EventOutput",
                "CEarlySignals",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Throughput, loss, overhead and footprint (BENCHMARKS.md).
        .executableTarget(
            name: "netevents-bench",
            dependencies: ["TCPEvent", "UDPEvent", "NetEventsTesting", "EventOutput", "CLibBPF"]
        ),

        // Loopback traffic with known byte counts, for tests, benchmarks and checks by hand.
        .executableTarget(name: "netevents-traffic", dependencies: ["CMessages"]),

        .testTarget(name: "BCCRuntimeTests", dependencies: ["BCCRuntime", "NetEventsTesting"], plugins: ["EmbedBPF"]),
        .testTarget(name: "NetEventsCoreTests", dependencies: ["NetEventsCore", "NetEventsTesting", "TCPEvent"]),
        .testTarget(name: "TCPEventTests", dependencies: ["TCPEvent", "NetEventsTesting", "CNetEventsABI"]),
        .testTarget(name: "UDPEventTests", dependencies: ["UDPEvent", "NetEventsTesting", "CNetEventsABI"]),
        .testTarget(name: "DNSEventTests", dependencies: ["DNSEvent", "NetEventsCore", "NetEventsTesting", "CNetEventsABI"]),
        .testTarget(name: "EventOutputTests", dependencies: ["EventOutput", "TCPEvent", "UDPEvent", "DNSEvent"]),
        .testTarget(name: "TCPTopTests", dependencies: ["tcp-top", "TCPEvent"]),
        .testTarget(
            name: "NetEventsMetricsTests",
            dependencies: [
                "NetEventsMetrics", "NetEventsTesting", "netevents", "TCPEvent", "UDPEvent", "NetEventsCore",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["TCPEvent", "UDPEvent", "DNSEvent", "NetEventsTesting", "netevents-traffic"],
            plugins: ["EmbedBPF"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
