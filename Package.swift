// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "swift-net-events",
    products: [
        .library(name: "BCCRuntime", targets: ["BCCRuntime"]),
        .library(name: "TCPEvent", targets: ["TCPEvent"]),
        .library(name: "UDPEvent", targets: ["UDPEvent"]),
        .executable(name: "tcp-events", targets: ["tcp-events"]),
        .executable(name: "udp-events", targets: ["udp-events"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    ],
    targets: [
        // C APIs, as system libraries resolved through pkg-config.
        .systemLibrary(
            name: "CBCC",
            pkgConfig: "libbcc",
            providers: [.apt(["libbpfcc-dev"])]
        ),
        .systemLibrary(
            name: "CLibBPF",
            pkgConfig: "libbpf",
            providers: [.apt(["libbpf-dev"])]
        ),

        // glibc's malloc.h (malloc_trim), which Swift's Glibc module leaves out.
        .systemLibrary(name: "CMalloc"),

        // Embeds bpf/*.c and bpf/*.h into the targets that run them.
        .executableTarget(name: "EmbedBPFTool"),
        .plugin(name: "EmbedBPF", capability: .buildTool(), dependencies: ["EmbedBPFTool"]),

        // Compile, load, attach, read; BTF, features, headers, errors.
        .target(
            name: "BCCRuntime",
            dependencies: ["CBCC", "CLibBPF", "CMalloc", .product(name: "SystemPackage", package: "swift-system")]
        ),

        .target(
            name: "TCPEvent",
            dependencies: ["BCCRuntime"],
            plugins: ["EmbedBPF"]
        ),

        .target(
            name: "UDPEvent",
            dependencies: ["BCCRuntime"],
            plugins: ["EmbedBPF"]
        ),

        // What the example executables share: JSON lines, tables, signal handling.
        .target(
            name: "EventOutput",
            dependencies: ["TCPEvent", "UDPEvent", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        .executableTarget(
            name: "tcp-events",
            dependencies: [
                "TCPEvent",
                "EventOutput",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .executableTarget(
            name: "udp-events",
            dependencies: [
                "UDPEvent",
                "EventOutput",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Throughput, loss, overhead and footprint (BENCHMARKS.md).
        .executableTarget(
            name: "netevents-bench",
            dependencies: ["BCCRuntime", "TCPEvent", "UDPEvent", "EventOutput"]
        ),

        // Loopback traffic with known byte counts, for tests, benchmarks and checks by hand.
        .executableTarget(name: "netevents-traffic"),

        .testTarget(name: "BCCRuntimeTests", dependencies: ["BCCRuntime"], plugins: ["EmbedBPF"]),
        .testTarget(name: "TCPEventTests", dependencies: ["TCPEvent", "BCCRuntime", "EventOutput"]),
        .testTarget(name: "UDPEventTests", dependencies: ["UDPEvent", "BCCRuntime", "EventOutput"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["BCCRuntime", "TCPEvent", "UDPEvent", "netevents-traffic"],
            plugins: ["EmbedBPF"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
