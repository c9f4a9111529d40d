// swift-tools-version: 6.1
// A consumer of swift-net-events as a user writes one: it depends on the package, imports only
// TCPEvent, and builds with zero warnings in Swift 6 mode (CI builds it with -warnings-as-errors).
import PackageDescription

let package = Package(
    name: "ConnectionLog",
    platforms: [.macOS(.v15)],
    dependencies: [
        // In your own package: .package(url: "https://github.com/OWNER/swift-net-events", from: "0.3.0")
        .package(name: "swift-net-events", path: "../..")
    ],
    targets: [
        .executableTarget(
            name: "connection-log",
            dependencies: [.product(name: "TCPEvent", package: "swift-net-events")],
            path: "Sources/ConnectionLog"
        )
    ],
    swiftLanguageModes: [.v6]
)
