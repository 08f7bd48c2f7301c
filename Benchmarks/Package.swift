// swift-tools-version:6.0
// The benchmark executables: a package of their own (like Tests/Fuzz and edge-bench), so a
// user's `swift build` of the main package builds the product only. `Scripts/bench` builds them
// in release mode with `--package-path Benchmarks --scratch-path .build-bench`; CI builds them
// in debug so they keep compiling.
import PackageDescription

let cqrs = "cqrs"
let settings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]
func ours(_ names: String...) -> [Target.Dependency] { names.map { .product(name: $0, package: cqrs) } }
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "cqrs-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: cqrs, path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Output and percentiles the benchmark executables share.
        .target(name: "BenchSupport", path: "BenchSupport", swiftSettings: settings),
        // The RPC benchmark client, and the raw-TCP streaming floor.
        .executableTarget(
            name: "rpc-bench", dependencies: ours("RPCCore", "RPCTransportTCP", "RPCHosting", "Contracts", "WallTime") + [argumentParser],
            path: "rpc-bench",
            swiftSettings: settings),
        // The hour's context, printed by every Scripts/bench run: loopback ping-pong, fdatasync rate.
        .executableTarget(
            name: "bench-context", dependencies: ["BenchSupport", argumentParser], path: "bench-context", swiftSettings: settings),
        // Produce, consume and end-to-end load on the broker; the raw write+fdatasync limit.
        .executableTarget(
            name: "broker-bench", dependencies: ["BenchSupport"] + ours("RPCCore", "RPCTransportTCP", "RPCHosting", "Contracts") + [argumentParser],
            path: "broker-bench", swiftSettings: settings),
        // The broker's Kafka port driven by librdkafka from Swift (KafkaClient), beside the
        // confluent-kafka (Python) cases of Scripts/lib/kafka_bench.py.
        .executableTarget(
            name: "kafka-bench",
            dependencies: ["BenchSupport"] + ours("KafkaClient", "KafkaWire", "KafkaMessages", "EventBus", "RPCCore", "RPCTransportTCP", "Contracts")
                + [argumentParser],
            path: "kafka-bench", swiftSettings: settings),
        // Deposits against a command-service; the raw durable SQLite insert limit.
        .executableTarget(
            name: "commands-bench",
            dependencies: ["BenchSupport"] + ours("RPCCore", "RPCTransportTCP", "RPCHosting", "Contracts", "SQLite") + [argumentParser],
            path: "commands-bench", swiftSettings: settings),
        // History writer, rebuild, lag and get-by-id; batched SQLite inserts and Echo baselines.
        .executableTarget(
            name: "queries-bench",
            dependencies: ["BenchSupport"]
                + ours("Domain", "EventStore", "SQLite", "RPCCore", "RPCTransportTCP", "RPCHosting", "Contracts") + [argumentParser],
            path: "queries-bench", swiftSettings: settings),
    ]
)
