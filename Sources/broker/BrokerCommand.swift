import ArgumentParser
import BrokerCore
import BrokerService
import KafkaListener
import LogStorage
import Logging
import RPCHosting
import ServiceLifecycle

/// broker: the standalone broker process.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Serve cqrs.broker.v1.Broker: durable partitioned topics and consumer groups.",
        discussion: """
            Every flag can also come from an environment variable (named in its help) or from a JSON \
            config file given with --config FILE (or JFRAME_CONFIG), whose keys are the flag names: \
            {"listen": "0.0.0.0:9092", "data-dir": "/var/lib/broker"}. The command line wins over \
            the file, the file over the environment.
            Prints one JSON line on stdout once listening: {"event":"listening","service":"broker","host":…,"port":…,"tls":…,"globalExecutor":…,"malloc":…} (which executor Swift Concurrency runs on, "hook" by default, see JFRAME_GLOBAL_EXECUTOR; and which malloc: "jemalloc" in release builds made as the README says, else "system").
            """)

    @OptionGroup var server: ServerOptions

    @Option(help: "Directory for topics, offsets and producer ids. Env: BROKER_DATA_DIR.")
    var dataDir: String?

    @Option(help: "Largest record (key, value and headers) accepted, bytes. Env: BROKER_MAX_RECORD_BYTES.")
    var maxRecordBytes: Int?

    @Option(help: "How often to apply retention and compaction and write checkpoints, ms. Env: BROKER_MAINTENANCE_INTERVAL_MS.")
    var maintenanceIntervalMs: Int?

    @Option(help: "Default retention of new topics, ms (-1: forever). Env: BROKER_RETENTION_MS.")
    var retentionMs: Int64?

    @Option(help: "Default segment size of new topics, bytes. Env: BROKER_SEGMENT_BYTES.")
    var segmentBytes: Int?

    @Option(
        help:
            "Zero-fill each partition's active segment this far ahead of its appends, bytes, so that acknowledging an append syncs no new file length; 0 turns it off (copy-on-write file systems gain nothing from it). Env: BROKER_PREALLOCATE_BYTES."
    )
    var preallocateBytes: Int?

    static let preallocateRange = 0...(1 << 30)

    @Option(
        help:
            "Where a partition's fdatasync runs: event-loop (the default: on the loop that appended, once it has handled what its last poll returned, as Redis does; no thread hand-offs, but that loop's other connections wait for the disk), background (a thread of its own, the loops never block) or adaptive (a lone append's on its loop, a group's on a thread; unmeasured here). Env: BROKER_SYNC_ON."
    )
    var syncOn: CommitPlace?

    @Option(
        help:
            "Partitions of all topics together the broker may hold; CreateTopic past it is RESOURCE_EXHAUSTED. Default \(BrokerSettings.defaultMaxPartitions). Env: BROKER_MAX_PARTITIONS."
    )
    var maxPartitions: Int?

    @Option(
        help:
            "Descriptors the partitions' log and index files may hold open at once; past it the least recently used are closed and opened again when next needed. Default: half the open-file limit. Env: BROKER_MAX_OPEN_LOG_FILES."
    )
    var maxOpenLogFiles: Int?

    @Option(
        help:
            "On CREATE_TIME topics, refuse a record whose timestamp is more than this ahead of the broker's clock, ms. Default 3600000 (an hour). Env: BROKER_MAX_TIMESTAMP_AHEAD_MS."
    )
    var maxTimestampAheadMs: Int64?

    @Option(
        help:
            "On CREATE_TIME topics, refuse a record whose timestamp is more than this behind the broker's clock, ms; -1 (the default) accepts any. Env: BROKER_MAX_TIMESTAMP_BEHIND_MS."
    )
    var maxTimestampBehindMs: Int64?

    @Option(
        help:
            "Topics only publish tokens may write (Produce, CreateTopic, DeleteTopic) when tokens are on: names and prefix* patterns, comma-separated; meant for the event topics, which only the command-service's relay writes. Env: BROKER_PROTECTED_TOPICS."
    )
    var protectedTopics: String?

    @Option(
        help:
            "Also serve the Kafka protocol on host:port (Kafka's clients and tools: kcat, librdkafka, kafka-python), over the same topics, offsets and producer ids; off unless given. Plaintext without authentication: refused together with TLS or tokens. Env: BROKER_KAFKA_LISTEN."
    )
    var kafkaListen: String?

    @Option(
        help:
            "The host:port Kafka clients are told to connect to (Metadata's broker address); default: the address each client reached. Set it behind NAT or port mapping. Env: BROKER_KAFKA_ADVERTISED_ADDRESS."
    )
    var kafkaAdvertisedAddress: String?

    @Option(
        help:
            "Largest Kafka request frame, bytes; a larger one closes the connection (Kafka's socket.request.max.bytes). Default 104857600. Env: BROKER_KAFKA_MAX_REQUEST_BYTES."
    )
    var kafkaMaxRequestBytes: Int?

    @Option(
        help:
            "Shortest and longest session timeout a Kafka consumer-group member may ask for, ms, as min:max; outside it JoinGroup is INVALID_SESSION_TIMEOUT (Kafka's group.min/max.session.timeout.ms). Default 6000:1800000. Env: BROKER_KAFKA_GROUP_SESSION_TIMEOUTS."
    )
    var kafkaGroupSessionTimeouts: String?

    func validate() throws {
        if let maxTimestampAheadMs, maxTimestampAheadMs < 0 { throw ValidationError("--max-timestamp-ahead-ms must be 0 or more") }
        if let maxTimestampBehindMs, maxTimestampBehindMs < -1 { throw ValidationError("--max-timestamp-behind-ms must be -1 or more") }
        if let maxPartitions, maxPartitions < 1 { throw ValidationError("--max-partitions must be at least 1") }
        if let maxOpenLogFiles, maxOpenLogFiles < 8 { throw ValidationError("--max-open-log-files must be at least 8") }
        if let kafkaMaxRequestBytes, kafkaMaxRequestBytes < 1024 { throw ValidationError("--kafka-max-request-bytes must be at least 1024") }
        if let maxRecordBytes, maxRecordBytes < 1 { throw ValidationError("--max-record-bytes must be at least 1") }
        if let maintenanceIntervalMs, maintenanceIntervalMs < 10 { throw ValidationError("--maintenance-interval-ms must be at least 10") }
        if let segmentBytes, !(1024...(1 << 30)).contains(segmentBytes) { throw ValidationError("--segment-bytes must be 1 KiB to 1 GiB") }
        if let retentionMs, retentionMs < -1 { throw ValidationError("--retention-ms must be -1 or more") }
        if let preallocateBytes, !Self.preallocateRange.contains(preallocateBytes) {
            throw ValidationError("--preallocate-bytes must be 0 to 1 GiB")
        }
    }

    func run() async throws {
        var settings = BrokerSettings(dataDirectory: dataDir ?? Environment.string("BROKER_DATA_DIR") ?? "data/broker")
        if let value = try maxRecordBytes ?? Environment.integer("BROKER_MAX_RECORD_BYTES") { settings.maxRecordBytes = value }
        if let value = try retentionMs ?? Environment.integer("BROKER_RETENTION_MS").map(Int64.init) {
            settings.topicDefaults.retentionMs = value
        }
        if let value = try segmentBytes ?? Environment.integer("BROKER_SEGMENT_BYTES") { settings.topicDefaults.segmentBytes = value }
        if let value = try preallocateBytes ?? Environment.integer("BROKER_PREALLOCATE_BYTES") {
            guard Self.preallocateRange.contains(value) else { throw ValidationError("BROKER_PREALLOCATE_BYTES must be 0 to 1 GiB") }
            settings.preallocateBytes = value
        }
        settings.syncScheduler = try CommitPlace.chosen(syncOn, environment: "BROKER_SYNC_ON", default: .brokerDefault).scheduler
        let interval = try maintenanceIntervalMs ?? Environment.integer("BROKER_MAINTENANCE_INTERVAL_MS") ?? 30_000
        let configuration = try server.configuration()
        // A record must fit in one message with room for its envelope.
        settings.maxFetchBytes = max(1024, configuration.limits.maxFrameBytes - 64 * 1024)
        if let value = try maxPartitions ?? Environment.integer("BROKER_MAX_PARTITIONS") {
            guard value >= 1 else { throw ValidationError("BROKER_MAX_PARTITIONS must be at least 1") }
            settings.maxPartitions = value
        }
        if let value = try maxTimestampAheadMs ?? Environment.integer("BROKER_MAX_TIMESTAMP_AHEAD_MS").map(Int64.init) {
            guard value >= 0 else { throw ValidationError("BROKER_MAX_TIMESTAMP_AHEAD_MS must be 0 or more") }
            settings.maxTimestampAheadMs = value
        }
        if let value = try maxTimestampBehindMs ?? Environment.integer("BROKER_MAX_TIMESTAMP_BEHIND_MS").map(Int64.init) {
            guard value >= -1 else { throw ValidationError("BROKER_MAX_TIMESTAMP_BEHIND_MS must be -1 or more") }
            settings.maxTimestampBehindMs = value
        }
        try ServerHost.bootstrapObservability(server, service: "broker")
        let logger = Logger(label: "broker")
        let openFileLimit = try ServerHost.raiseOpenFileLimit(server, logger: logger)
        let descriptors = try maxOpenLogFiles ?? Environment.integer("BROKER_MAX_OPEN_LOG_FILES") ?? openFileLimit / 2
        guard descriptors >= 8 else { throw ValidationError("BROKER_MAX_OPEN_LOG_FILES must be at least 8") }
        let fileSystem = PosixFileSystem(descriptors: DescriptorBudget(capacity: descriptors))
        logger.info(
            "budgets", metadata: ["max_partitions": "\(settings.maxPartitions)", "max_open_log_files": "\(descriptors)"])
        let protected = ProtectedTopics(list: protectedTopics ?? Environment.string("BROKER_PROTECTED_TOPICS") ?? "")
        if !protected.isEmpty, try server.accessTokens() == nil {
            logger.warning("--protected-topics has no effect without tokens (--auth-tokens-file): anyone who reaches the broker may write them")
        }
        let broker = try Broker(settings: settings, fileSystem: fileSystem, logger: logger)
        defer { broker.close() }
        var extraServices: [any Service] = [BrokerUpkeep(broker: broker, maintenanceInterval: .milliseconds(interval))]
        if let kafka = try kafkaSettings() {
            extraServices.append(try KafkaListener(apis: KafkaAPIs(broker: broker, settings: kafka, logger: Logger(label: "kafka"))))
        }
        try await ServerHost.run(
            name: "broker", services: [BrokerService(broker: broker, protectedTopics: protected)], options: server,
            defaultAddress: ServiceAddress.broker.defaultAddress, extraServices: extraServices)
    }

    /// The Kafka listener's settings, or nil when it is off.
    private func kafkaSettings() throws -> KafkaListenerSettings? {
        guard let address = kafkaListen ?? Environment.string("BROKER_KAFKA_LISTEN"), !address.isEmpty else { return nil }
        // The Kafka port has neither TLS nor SASL yet: beside a secured jframe port it would be
        // an open door past the tokens, the protected topics and the encryption.
        if try server.accessTokens() != nil || server.tlsFiles() != nil {
            throw ValidationError(
                "--kafka-listen serves plaintext without authentication (no TLS or SASL yet), so it cannot be combined with TLS or tokens (--tls-cert, --auth-tokens-file)"
            )
        }
        var settings = KafkaListenerSettings(address: address)
        if let advertised = kafkaAdvertisedAddress ?? Environment.string("BROKER_KAFKA_ADVERTISED_ADDRESS"), !advertised.isEmpty {
            guard let colon = advertised.lastIndex(of: ":"), let port = Int(advertised[advertised.index(after: colon)...]),
                (1...65535).contains(port), colon > advertised.startIndex
            else { throw ValidationError("--kafka-advertised-address must be host:port, not \(advertised)") }
            settings.advertisedAddress = (String(advertised[..<colon]), port)
        }
        if let bytes = try kafkaMaxRequestBytes ?? Environment.integer("BROKER_KAFKA_MAX_REQUEST_BYTES") {
            guard bytes >= 1024 else { throw ValidationError("BROKER_KAFKA_MAX_REQUEST_BYTES must be at least 1024") }
            settings.maxRequestBytes = bytes
        }
        if let range = kafkaGroupSessionTimeouts ?? Environment.string("BROKER_KAFKA_GROUP_SESSION_TIMEOUTS") {
            let parts = range.split(separator: ":").map { Int32($0) }
            guard parts.count == 2, let low = parts[0], let high = parts[1], low >= 1, low <= high else {
                throw ValidationError("--kafka-group-session-timeouts must be min:max in ms (1 <= min <= max), not \(range)")
            }
            settings.groupMinSessionTimeoutMs = low
            settings.groupMaxSessionTimeoutMs = high
        }
        return settings
    }
}

/// Background work of a running broker: consumer-group session expiry (often), retention,
/// compaction and checkpoints (every maintenance interval), and a final checkpoint on shutdown.
struct BrokerUpkeep: Service {
    let broker: Broker
    let maintenanceInterval: Duration

    func run() async throws {
        var sinceMaintenance = Duration.zero
        let tick = Duration.milliseconds(250)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: tick)
            broker.groups.expireMembers()
            sinceMaintenance += tick
            if sinceMaintenance >= maintenanceInterval {
                sinceMaintenance = .zero
                broker.maintain()
            }
        }
    }
}

@main
enum Entry {
    static func main() {
        ConcurrencyOnEventLoops.run {
            do {
                await BrokerCommand.main(try ConfigFile.expand(CommandLine.arguments))
            } catch {
                BrokerCommand.exit(withError: error)
            }
        }
    }
}
