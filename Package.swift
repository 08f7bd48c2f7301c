// swift-tools-version:6.1
import PackageDescription

/// One set of settings for every target: Swift 6 language mode (strict concurrency),
/// `ExistentialAny`, so every existential is spelled `any P` and costs are visible, and
/// `NonisolatedNonsendingByDefault` (SE-0461): a nonisolated async function runs on its caller's
/// executor instead of hopping to the generic one at its entry and after every call it makes,
/// each hop a runtime switch that asks the task for its preferred executor under a lock.
let settings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let postgresNIO = Target.Dependency.product(name: "PostgresNIO", package: "postgres-nio")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let tracing = Target.Dependency.product(name: "Tracing", package: "swift-distributed-tracing")
let otel = Target.Dependency.product(name: "OTel", package: "swift-otel")

let package = Package(
    name: "cqrs",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RPCCore", targets: ["RPCCore"]),
        .library(name: "RPCTransportNIO", targets: ["RPCTransportNIO"]),
        .library(name: "RPCTransportTCP", targets: ["RPCTransportTCP"]),
        .library(name: "RPCInProcessTransport", targets: ["RPCInProcessTransport"]),
        .library(name: "RPCTransportHTTP2", targets: ["RPCTransportHTTP2"]),
        .library(name: "NGHTTP2", targets: ["NGHTTP2"]),
        .library(name: "Contracts", targets: ["Contracts"]),
        .library(name: "RPCStandardServices", targets: ["RPCStandardServices"]),
        .library(name: "RPCHosting", targets: ["RPCHosting"]),
        .library(name: "MetricsExposition", targets: ["MetricsExposition"]),
        .library(name: "LogStorage", targets: ["LogStorage"]),
        .library(name: "KafkaWire", targets: ["KafkaWire"]),
        .library(name: "KafkaMessages", targets: ["KafkaMessages"]),
        .library(name: "BrokerCore", targets: ["BrokerCore"]),
        .library(name: "BrokerClient", targets: ["BrokerClient"]),
        .library(name: "SQLite", targets: ["SQLite"]),
        .library(name: "Domain", targets: ["Domain"]),
        .library(name: "EventStore", targets: ["EventStore"]),
        .library(name: "PostgresEventStore", targets: ["PostgresEventStore"]),
        .library(name: "CommandHandling", targets: ["CommandHandling"]),
        .library(name: "EventBus", targets: ["EventBus"]),
        .library(name: "KafkaClient", targets: ["KafkaClient"]),
        .library(name: "WallTime", targets: ["WallTime"]),
        .library(name: "Outbox", targets: ["Outbox"]),
        .library(name: "ReadModels", targets: ["ReadModels"]),
        .executable(name: "jframe-gen", targets: ["jframe-gen"]),
        .executable(name: "rpc-testserver", targets: ["rpc-testserver"]),
        .executable(name: "broker", targets: ["broker"]),
        .executable(name: "cqrs", targets: ["cqrs"]),
        .executable(name: "command-service", targets: ["command-service"]),
        .executable(name: "query-service", targets: ["query-service"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // OTLP over HTTP only: the gRPC exporter would pull in grpc-swift for nothing.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // The RPC model: frames and envelopes, status codes, metadata, deadlines, the router,
        // interceptors and the per-connection call multiplexers. No NIO: transports plug in.
        .target(
            name: "RPCCore", dependencies: ["JSONCoding", "WallTime", "MetricsSupport", "TracingSupport", logging, metrics, tracing, lifecycle],
            swiftSettings: settings),
        // What our modules share on top of swift-metrics: labeled metrics made once and kept,
        // and sources whose gauges are read off their state when scraped.
        .target(name: "MetricsSupport", dependencies: [metrics], swiftSettings: settings),
        // Spans inside a call's handling, only when the process exports traces.
        .target(name: "TracingSupport", dependencies: [tracing], swiftSettings: settings),
        // A strict JSON scanner and writer that read and write straight into typed fields (no
        // tree, no Codable): what generated messages and the domain's events are coded with.
        .target(name: "JSONCoding", swiftSettings: settings),
        // The broker's storage: segments of checksummed record batches, sparse indexes, group
        // commit, roll, retention, compaction, recovery. Files only, no networking.
        .target(
            name: "LogStorage", dependencies: ["Watermarks", "CommitScheduling", "Checksums", "WallTime", logging, metrics], swiftSettings: settings),
        // CRC-32C for stored data (the broker's record batches, the event store's events).
        .target(name: "Checksums", dependencies: ["CCRC32C"], swiftSettings: settings),
        // CRC-32C with the CPU's instruction (SSE4.2, ARMv8 CRC), chosen at run time.
        .target(name: "CCRC32C"),
        // Mutual exclusion across awaits, per key, first come first served, cancellation-aware.
        .target(name: "AsyncLocks", swiftSettings: settings),
        // Waiting, without polling, for a value that only grows to pass a point (long-poll).
        .target(name: "Watermarks", swiftSettings: settings),
        // The wall clock the services store times from (skewable for fault-injection tests), and
        // the ISO 8601 form of its readings.
        .target(name: "WallTime", swiftSettings: settings),
        // Where the blocking half of a durable write (fdatasync, SQLite commit) runs.
        .target(name: "CommitScheduling", swiftSettings: settings),
        // Topics of partition logs, keyed routing, idempotent produce, long-poll fetch, consumer
        // groups and committed offsets. No networking.
        .target(
            name: "BrokerCore", dependencies: ["LogStorage", "Partitioning", "WallTime", logging], exclude: ["README.md"], swiftSettings: settings),
        // Kafka's key-to-partition routing (murmur2): the broker and its clients must agree, and
        // a client must not link the broker's engine to get it.
        .target(name: "Partitioning", swiftSettings: settings),
        // What both NIO transports share: the listening socket (accept pacing), TLS contexts
        // from PEM files, and an event loop as a task executor.
        .target(name: "RPCTransportNIO", dependencies: [nioCore, nioPosix, nioSSL, logging], swiftSettings: settings),
        // The swift-metrics backend (swift-prometheus) and the HTTP/1.1 port a Prometheus server
        // scrapes (`GET /metrics`).
        // Traces exported over OTLP/HTTP (swift-otel as the swift-distributed-tracing backend).
        .target(name: "TraceExport", dependencies: [otel, tracing, logging, lifecycle], exclude: ["README.md"], swiftSettings: settings),
        .target(
            name: "MetricsExposition",
            dependencies: ["RPCCore", "MetricsSupport", "RPCTransportNIO", nioCore, nioHTTP1, prometheus, metrics, logging, lifecycle],
            exclude: ["README.md"], swiftSettings: settings),
        // SwiftNIO TCP transport: frame codec, connection handler and dialer, each optionally
        // over TLS (swift-nio-ssl).
        .target(
            name: "RPCTransportTCP",
            dependencies: ["RPCCore", "RPCTransportNIO", "WallTime", nioCore, nioPosix, nioSSL, logging],
            swiftSettings: settings
        ),
        // The codecs Kafka clients compress record batches with: zlib, snappy, lz4, zstd (Debian's -dev packages).
        .systemLibrary(
            name: "CCompressionCodecs", path: "Sources/CCompressionCodecs",
            providers: [.apt(["zlib1g-dev", "libsnappy-dev", "liblz4-dev", "libzstd-dev"])]),
        // Kafka's wire format without I/O: primitive types, request and response headers, record
        // batches v2 with CRC-32C and the four codecs.
        .target(name: "KafkaWire", dependencies: ["Checksums", "CCompressionCodecs"], swiftSettings: settings),
        // Kafka's requests and responses, generated from Kafka's JSON definitions (Protocols/kafka)
        // by Scripts/generate.
        .target(name: "KafkaMessages", dependencies: ["KafkaWire"], swiftSettings: settings),
        // The broker's Kafka-protocol port: the same topics, offsets and producer ids as the jframe
        // port, for Kafka's clients and tools.
        .target(
            name: "KafkaListener",
            dependencies: ["KafkaWire", "KafkaMessages", "BrokerCore", "LogStorage", "JSONCoding", "RPCTransportNIO", nioCore, logging, lifecycle],
            exclude: ["README.md"], swiftSettings: settings),
        // The system's libnghttp2 (Debian: libnghttp2-dev).
        .systemLibrary(name: "CNGHTTP2", path: "Sources/CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        // A server-side HTTP/2 session over libnghttp2 without I/O: bytes in, bytes out, requests to a delegate.
        .target(name: "NGHTTP2", dependencies: ["CNGHTTP2"], swiftSettings: settings),
        // The HTTP/2 edge: gRPC and Connect requests mapped onto the same RPC server and handlers.
        .target(
            name: "RPCTransportHTTP2",
            dependencies: ["RPCCore", "RPCTransportNIO", "NGHTTP2", "WallTime", nioCore, nioPosix, nioSSL, logging],
            exclude: ["README.md"],
            swiftSettings: settings
        ),
        // Spinner threads that keep the CPUs out of their halt state for a moment after I/O (opt-in).
        .target(name: "CIdlePolling"),
        // An atomic compare-and-swap for installing the runtime's global-executor hook.
        .target(name: "CExecutorHook"),
        .target(name: "IdlePolling", dependencies: ["CIdlePolling"], swiftSettings: settings),
        // Client and server joined in memory, for tests and embedding.
        .target(name: "RPCInProcessTransport", dependencies: ["RPCCore"], swiftSettings: settings),
        // Code generated from Protocols/ by jframe-gen (do not edit by hand).
        .target(name: "Contracts", dependencies: ["RPCCore"], swiftSettings: settings),
        // Reflection and health services every server hosts.
        .target(name: "RPCStandardServices", dependencies: ["RPCCore", "Contracts"], swiftSettings: settings),
        // Turns Protocols/*.json into Swift (messages, server protocols, clients).
        .target(name: "ContractGenerator", dependencies: ["JSONCoding"], swiftSettings: settings),
        // Reads Protocols/*.json and writes Sources/Contracts.
        .executableTarget(name: "jframe-gen", dependencies: ["ContractGenerator", argumentParser], swiftSettings: settings),
        // What every server binary shares: flags for address and limits, logging, the ServiceGroup.
        .target(
            name: "RPCHosting",
            dependencies: [
                "RPCCore", "RPCTransportNIO", "RPCTransportTCP", "RPCTransportHTTP2", "RPCStandardServices", "CommitScheduling", "IdlePolling",
                "MetricsExposition", "MetricsSupport", "TraceExport", "JSONCoding", "WallTime",
                "CExecutorHook", nioCore, nioPosix,
                argumentParser, logging, lifecycle,
            ],
            exclude: ["README.md"],
            swiftSettings: settings
        ),
        // The broker's RPC service: cqrs.broker.v1.Broker over BrokerCore.
        .target(
            name: "BrokerService", dependencies: ["BrokerCore", "LogStorage", "Contracts", "RPCCore", "MetricsSupport", "TracingSupport", metrics],
            swiftSettings: settings),
        // What services use to talk to the broker: a batching idempotent producer, a group
        // consumer, and the event bus over both.
        .target(name: "BrokerClient", dependencies: ["EventBus", "Partitioning", "Contracts", "RPCCore", logging], swiftSettings: settings),
        // The system's librdkafka (Debian: librdkafka-dev).
        .systemLibrary(name: "CRdKafka", path: "Sources/CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        // The event bus on any Kafka-compatible cluster, over librdkafka: idempotent producer
        // sessions, consumer-group subscriptions, topic admin and reads.
        .target(name: "KafkaClient", dependencies: ["EventBus", "CRdKafka", "WallTime", logging], exclude: ["README.md"], swiftSettings: settings),
        // The seam between the services and the bus that carries their events (publish, read a
        // topic's tail, consume in a group), and a bus in memory. No RPC, no I/O.
        .target(name: "EventBus", dependencies: ["Partitioning", "Watermarks", "WallTime"], swiftSettings: settings),
        // The system's SQLite 3 (Debian: libsqlite3-dev).
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // A VFS that writes a WAL's frames in one system call per commit instead of two per frame.
        .target(name: "CSQLiteWALWrites", dependencies: ["CSQLite"]),
        // A thin, explicit wrapper over the SQLite C API: connections, prepared statements, errors.
        .target(name: "SQLite", dependencies: ["CSQLite", "CSQLiteWALWrites", logging], swiftSettings: settings),
        // The write model: aggregates folded from events, commands decided into events, the event
        // type registry; the bank-account and order domains. No I/O, no dependencies.
        .target(name: "Domain", dependencies: ["JSONCoding"], swiftSettings: settings),
        // The event store protocol (append with expected version, read stream, read all) and its
        // SQLite implementation with group commit; the store is also the outbox.
        .target(
            name: "EventStore", dependencies: ["SQLite", "Checksums", "Watermarks", "CommitScheduling", "WallTime", logging, metrics],
            swiftSettings: settings),
        // The event store on PostgreSQL (postgres-nio): several command-service replicas on one
        // database. A module of its own, so the embedded build links no PostgreSQL client.
        // A PostgreSQL location from a URL (TLS, pool, schema; the password never shown), the
        // one-line probe at start and errors as users read them: what both PostgreSQL stores share.
        .target(name: "PostgresConnections", dependencies: ["WallTime", logging, nioCore, nioSSL, postgresNIO], swiftSettings: settings),
        .target(
            name: "PostgresEventStore",
            dependencies: [
                "EventStore", "PostgresConnections", "RPCTransportNIO", "Watermarks", "WallTime", logging, nioCore, nioPosix, nioSSL, postgresNIO,
            ],
            exclude: ["README.md"], swiftSettings: settings),
        // The mediator and its behaviours, the aggregate repository with snapshots, the generic
        // command handler. No RPC, no bus.
        .target(
            name: "CommandHandling",
            dependencies: ["Domain", "EventStore", "AsyncLocks", "Checksums", "WallTime", "MetricsSupport", "TracingSupport", logging, metrics],
            swiftSettings: settings),
        // The outbox relay: follows the event store by position and publishes to the event bus.
        .target(
            name: "Outbox",
            dependencies: ["EventBus", "EventStore", "Domain", "Checksums", "WallTime", "TracingSupport", logging, lifecycle, crypto],
            swiftSettings: settings),
        // The RPC face of the write side: cqrs.commands.v1 over the mediator and the event store.
        .target(
            name: "CommandService",
            dependencies: [
                "CommandHandling", "Outbox", "Domain", "EventStore", "Checksums", "Contracts", "RPCCore", "JSONCoding", "WallTime",
                "MetricsSupport", logging, metrics, crypto,
            ],
            exclude: ["README.md"],
            swiftSettings: settings
        ),
        // The read side's storage: read models in SQLite applied exactly once in effect (offsets
        // and stream versions in the same transaction), parked events, queries, rebuild and swap.
        .target(
            name: "ReadModels", dependencies: ["Domain", "SQLite", "AsyncLocks", "CommitScheduling", "Watermarks", "WallTime", logging],
            swiftSettings: settings),
        // The read models on PostgreSQL: one schema shared by several query-service replicas
        // (writers take turns, the watermark travels by LISTEN/NOTIFY, rebuilds into a shadow schema).
        .target(
            name: "PostgresReadModels",
            dependencies: [
                "ReadModels", "PostgresConnections", "RPCTransportNIO", "SQLite", "JSONCoding", "WallTime", logging, nioCore, nioPosix, postgresNIO,
            ],
            exclude: ["README.md"], swiftSettings: settings),
        // The RPC face of the read side: cqrs.queries.v1 over the read models, the projection
        // from the broker, and the rebuild from the CommandService's history.
        .target(
            name: "QueryService",
            dependencies: [
                "ReadModels", "SQLite", "Domain", "EventBus", "Contracts", "JSONCoding", "RPCCore", "WallTime", "MetricsSupport", "TracingSupport",
                logging, metrics, lifecycle,
            ],
            exclude: ["README.md"],
            swiftSettings: settings
        ),
        // The QueryService process.
        .executableTarget(
            name: "query-service",
            dependencies: [
                "QueryService", "ReadModels", "PostgresReadModels", "BrokerClient", "KafkaClient", "RPCCore", "RPCTransportTCP", "RPCHosting",
                argumentParser,
                logging, lifecycle,
            ],
            swiftSettings: settings
        ),
        // The CommandService process.
        .executableTarget(
            name: "command-service",
            dependencies: [
                "CommandService", "CommandHandling", "Outbox", "BrokerClient", "KafkaClient", "EventStore", "PostgresEventStore",
                "PostgresConnections",
                "Checksums", "RPCCore",
                "RPCTransportTCP", "RPCHosting", argumentParser, logging, lifecycle, crypto,
            ],
            swiftSettings: settings
        ),
        // What integration tests share: real server processes on real ports, temporary directories.
        .target(name: "TestSupport", dependencies: ["CommitScheduling", "RPCCore", "RPCInProcessTransport", logging], swiftSettings: settings),
        // The client CLI.
        .executableTarget(
            name: "cqrs",
            dependencies: ["BrokerClient", "Contracts", "RPCCore", "RPCTransportTCP", "RPCHosting", argumentParser],
            swiftSettings: settings
        ),
        // The broker process.
        .executableTarget(
            name: "broker",
            dependencies: ["BrokerService", "BrokerCore", "KafkaListener", "LogStorage", "RPCHosting", argumentParser, logging, lifecycle],
            swiftSettings: settings
        ),
        // A server hosting reflection, health and the Echo test service (contract tests, bench).
        .executableTarget(
            name: "rpc-testserver",
            dependencies: ["RPCHosting", "RPCStandardServices", argumentParser],
            swiftSettings: settings
        ),
        .testTarget(
            name: "RPCCoreTests",
            dependencies: [
                "RPCCore", "RPCInProcessTransport", "RPCStandardServices", "Contracts", "TestSupport", "WallTime", logging,
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "RPCTransportTCPTests",
            dependencies: [
                "RPCCore", "RPCTransportTCP", "RPCHosting", "RPCStandardServices", "Contracts", nioCore, nioPosix,
                .product(name: "NIOEmbedded", package: "swift-nio"),
                lifecycle,
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "RPCTransportNIOTests",
            dependencies: ["RPCTransportNIO", nioCore, .product(name: "NIOEmbedded", package: "swift-nio")], swiftSettings: settings),
        .testTarget(name: "RPCTransportHTTP2Tests", dependencies: ["RPCTransportHTTP2", "NGHTTP2", "RPCCore"], swiftSettings: settings),
        .testTarget(
            name: "BrokerServiceTests",
            dependencies: [
                "BrokerService", "BrokerCore", "LogStorage", "Partitioning", "Contracts", "RPCCore", "RPCHosting", "RPCTransportTCP", "TestSupport",
                nioPosix,
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "BrokerCoreTests", dependencies: ["BrokerCore", "LogStorage", "Partitioning", "WallTime", "TestSupport", logging],
            swiftSettings: settings),
        .testTarget(name: "RPCHostingTests", dependencies: ["RPCHosting", "CommitScheduling", "IdlePolling", nioPosix], swiftSettings: settings),
        .testTarget(
            name: "BrokerClientTests",
            dependencies: ["BrokerClient", "Contracts", "RPCCore", "RPCTransportTCP", "TestSupport", "broker"],
            swiftSettings: settings
        ),
        .testTarget(name: "DomainTests", dependencies: ["Domain", "JSONCoding"], swiftSettings: settings),
        .testTarget(name: "WallTimeTests", dependencies: ["WallTime"], swiftSettings: settings),
        .testTarget(name: "PartitioningTests", dependencies: ["Partitioning"], swiftSettings: settings),
        .testTarget(name: "CommitSchedulingTests", dependencies: ["CommitScheduling"], swiftSettings: settings),
        .testTarget(name: "AsyncLocksTests", dependencies: ["AsyncLocks"], swiftSettings: settings),
        .testTarget(
            name: "EventStoreTests",
            dependencies: [
                "WallTime", "EventStore", "PostgresEventStore", "PostgresConnections", "CommitScheduling", "SQLite", "TestSupport", "RPCTransportNIO",
                logging,
                nioCore, nioPosix, postgresNIO,
            ],
            swiftSettings: settings),
        .testTarget(
            name: "PostgresEventStoreTests", dependencies: ["PostgresEventStore", "PostgresConnections", "EventStore"], swiftSettings: settings),
        .testTarget(
            name: "CommandHandlingTests", dependencies: ["WallTime", "CommandHandling", "Domain", "EventStore", "TestSupport", logging],
            swiftSettings: settings),
        .testTarget(
            name: "OutboxTests",
            dependencies: [
                "WallTime",
                "Outbox", "EventBus", "CommandHandling", "Domain", "EventStore", "BrokerClient", "Checksums", "RPCCore", "RPCTransportTCP",
                "TestSupport",
                "broker", logging, crypto,
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "CommandServiceTests",
            dependencies: ["CommandService", "EventStore", "Contracts", "RPCCore", "WallTime", "TestSupport"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "QueryServiceTests",
            dependencies: [
                "WallTime", "QueryService", "ReadModels", "Outbox", "EventBus", "CommandHandling", "Domain", "EventStore", "Contracts", "JSONCoding",
                "RPCCore", "RPCStandardServices", "RPCTransportTCP", "TestSupport", logging, nioPosix,
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "EventBusTests",
            dependencies: ["WallTime", "EventBus", "BrokerClient", "KafkaClient", "RPCCore", "RPCTransportTCP", "TestSupport", "broker"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "ReadModelsTests", dependencies: ["ReadModels", "PostgresReadModels", "PostgresConnections", "Domain", "SQLite", "TestSupport"],
            swiftSettings: settings),
        .testTarget(
            name: "LogStorageTests", dependencies: ["LogStorage", "Checksums", "CommitScheduling", "WallTime", "TestSupport", logging],
            swiftSettings: settings),
        .testTarget(name: "ContractGeneratorTests", dependencies: ["ContractGenerator"], swiftSettings: settings),
        .testTarget(name: "KafkaClientTests", dependencies: ["KafkaClient"], swiftSettings: settings),
        .testTarget(
            name: "KafkaListenerTests",
            dependencies: ["KafkaListener", "KafkaWire", "KafkaMessages", "BrokerCore", "LogStorage", "TestSupport", nioCore],
            swiftSettings: settings),
        .testTarget(
            name: "KafkaWireTests", dependencies: ["KafkaWire", "KafkaMessages", "Checksums"], exclude: ["Fixtures", "make_vectors.py"],
            swiftSettings: settings),
    ]
)
