// swift-tools-version:6.0
// libFuzzer targets for what reads untrusted bytes: the frame decoder, the control-frame envelopes,
// the generated JSON message decoders, the HTTP/2 edge's session, and the Kafka port's decoders. A package of its own, built
// only by `Scripts/fuzz` with `-sanitize=fuzzer,address`, so the main package never builds with the
// sanitizers. Each target's `main` hands its test function to libFuzzer (FuzzSupport).
import PackageDescription

let cqrs = "cqrs"
let package = Package(
    name: "cqrs-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: cqrs, path: "../.."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // Runs libFuzzer from an ordinary main (LLVMFuzzerRunDriver).
        .target(name: "FuzzSupport", dependencies: [.product(name: "RPCCore", package: cqrs)]),
        .executableTarget(
            name: "fuzz-frames",
            dependencies: [
                "FuzzSupport", .product(name: "RPCCore", package: cqrs), .product(name: "RPCTransportTCP", package: cqrs),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        .executableTarget(name: "fuzz-envelopes", dependencies: ["FuzzSupport", .product(name: "RPCCore", package: cqrs)]),
        .executableTarget(
            name: "fuzz-messages",
            dependencies: [
                "FuzzSupport", .product(name: "RPCCore", package: cqrs), .product(name: "Contracts", package: cqrs),
                .product(name: "Domain", package: cqrs),
            ]),
        .executableTarget(name: "fuzz-http2", dependencies: ["FuzzSupport", .product(name: "NGHTTP2", package: cqrs)]),
        .executableTarget(
            name: "fuzz-kafka",
            dependencies: ["FuzzSupport", .product(name: "KafkaWire", package: cqrs), .product(name: "KafkaMessages", package: cqrs)]),
    ]
)
