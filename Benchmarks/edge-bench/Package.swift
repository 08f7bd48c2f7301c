// swift-tools-version:6.0
// The HTTP/2 edge's benchmark client: the grpc-swift-2 baseline's client (../shared/bench-grpc-baseline),
// unchanged but for the method it calls, so "grpc-swift-2 client -> grpc-swift-2 server" and
// "grpc-swift-2 client -> our HTTP/2 edge" differ only in the server. A package of its own so the
// main package never builds grpc-swift; `Scripts/bench rpc` builds it.
import PackageDescription

let package = Package(
    name: "edge-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", exact: "2.9.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .executableTarget(
            name: "edge-bench",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
