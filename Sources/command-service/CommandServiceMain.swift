import ArgumentParser
import BrokerClient
import Checksums
import CommandHandling
import CommandService
import Crypto
import Domain
import EventBus
import EventStore
import Foundation
import KafkaClient
import Logging
import Outbox
import PostgresConnections
import PostgresEventStore
import RPCCore
import RPCHosting
import RPCTransportTCP
import ServiceLifecycle
import Synchronization

/// command-service: the write side's process.
struct CommandServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "command-service",
        abstract: "Serve cqrs.commands.v1: bank-account and order commands over an event store (SQLite or PostgreSQL), relayed to the broker.",
        discussion: """
            Events are stored in <data-dir>/events.sqlite (WAL, synchronous=FULL), or in PostgreSQL with \
            --store postgres://…, before a command is answered, and a relay publishes them to the broker from there (the store is the outbox): \
            commands are accepted while the broker is down, and published when it returns.
            Every flag can also come from an environment variable (named in its help) or from a JSON \
            config file given with --config FILE (or JFRAME_CONFIG), whose keys are the flag names. \
            The command line wins over the file, the file over the environment.
            Prints one JSON line on stdout once listening: {"event":"listening","service":"command-service","host":…,"port":…,"tls":…,"globalExecutor":…,"malloc":…} (which executor Swift Concurrency runs on, "hook" by default, see JFRAME_GLOBAL_EXECUTOR; and which malloc: "jemalloc" in release builds made as the README says, else "system").
            """)

    @OptionGroup var server: ServerOptions
    @OptionGroup var upstream: UpstreamSecurityOptions

    @Option(help: "Directory of the event store. Env: COMMANDS_DATA_DIR.")
    var dataDir: String?

    @Option(
        help:
            "The event store: a PostgreSQL URL, postgres://user:password@host:5432/database (several command-service replicas may share one; query parameters: sslmode=disable|require, pool=N connections, schema=NAME), or, when not given, the SQLite file in --data-dir. Env: COMMANDS_STORE."
    )
    var store: String?

    @Option(help: "The broker to publish to, host:port (unless --bus names a Kafka cluster). Env: CQRS_BROKER.")
    var broker: String?

    @Option(help: ArgumentHelp(BusFlag.help, valueName: "url"))
    var bus: String?

    @Flag(inversion: .prefixedNo, help: "Publish events to the broker (--no-relay: store only). Env: COMMANDS_RELAY=0 turns it off.")
    var relay = true

    @Option(
        help:
            "The relay's signing key (64 hex digits), made on first start when missing; default <data-dir>/relay.key. Replicas sharing a PostgreSQL store must share it. Env: COMMANDS_RELAY_KEY_FILE."
    )
    var relayKeyFile: String?

    @Option(help: "Snapshot an aggregate every N events (0: never). Env: COMMANDS_SNAPSHOT_EVERY.")
    var snapshotEvery: Int?

    @Option(help: "Partitions of the topics the relay creates. Env: COMMANDS_TOPIC_PARTITIONS.")
    var topicPartitions: Int?

    @Option(
        help:
            "Where the event store's transactions (and their fsync) run: adaptive (the default: a lone command's on its event loop, a group's on a writer thread), background (always a writer thread, so the loops decide the next commands while it commits) or event-loop (always on the loop whose command wrote, once it has handled what its last poll returned, as Redis does: no thread hand-offs, but nothing else runs on that loop while it waits for the disk). Env: COMMANDS_COMMIT_ON."
    )
    var commitOn: CommitPlace?

    func validate() throws {
        if let snapshotEvery, snapshotEvery < 0 { throw ValidationError("--snapshot-every must be 0 or more") }
        if let topicPartitions, !(1...1024).contains(topicPartitions) { throw ValidationError("--topic-partitions must be 1 to 1024") }
        _ = try BusFlag.kafkaLocation(bus)
    }

    func run() async throws {
        try ServerHost.bootstrapObservability(server, service: "command-service")
        let logger = Logger(label: "command-service")
        let directory = dataDir ?? Environment.string("COMMANDS_DATA_DIR") ?? "data/commands"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let commitPlace = try CommitPlace.chosen(commitOn, environment: "COMMANDS_COMMIT_ON", default: .adaptive)
        let (store, closeStore) = try await Self.openStore(
            store ?? Environment.string("COMMANDS_STORE"), directory: directory, commitPlace: commitPlace, logger: logger)
        defer { closeStore() }

        let relayOn = relay && Environment.string("COMMANDS_RELAY") != "0"
        var extraServices: [any Service] = []
        var relayStatus: @Sendable () -> OutboxRelay.Status = { OutboxRelay.Status() }
        var closeBus: () -> Void = {}
        if relayOn {
            var options = OutboxRelay.Options()
            options.topicPartitions = try topicPartitions ?? Environment.integer("COMMANDS_TOPIC_PARTITIONS") ?? 3
            options.signingKey = try Self.relayKey(
                at: relayKeyFile ?? Environment.string("COMMANDS_RELAY_KEY_FILE") ?? directory + "/relay.key", logger: logger)
            let bus: any EventPublisher
            if let kafka = try BusFlag.kafkaLocation(self.bus ?? Environment.string("CQRS_BUS")) {
                let kafkaBus = KafkaEventBus(location: kafka, logger: Logger(label: "relay"))
                logger.notice("the relay publishes to a Kafka cluster", metadata: ["bus": "\(kafka)"])
                (bus, closeBus) = (kafkaBus, kafkaBus.close)
            } else {
                let client = try upstream.client(address: ServiceAddress.broker.resolve(broker))
                (bus, closeBus) = (BrokerEventBus(client: client, logger: Logger(label: "relay")), client.close)
            }
            let outbox = OutboxRelay(store: store, bus: bus, topics: Domains.topics, options: options, logger: Logger(label: "relay"))
            relayStatus = { outbox.status }
            if let shared = store as? PostgresEventStore {
                // Replicas share the store: only the one holding the lease publishes; the others say so.
                let leased = LeasedService(lease: "outbox-relay", store: shared, service: outbox, logger: Logger(label: "relay"))
                relayStatus = {
                    leased.isHolding
                        ? outbox.status
                        : OutboxRelay.Status(
                            lastError: "standing by: another replica holds the relay's lease and publishes", standingBy: true)
                }
                extraServices.append(leased)
            } else {
                extraServices.append(outbox)
            }
        } else {
            logger.notice("relay off: events are stored but not published")
        }
        let services = CommandSide.services(
            store: store, snapshotEvery: try snapshotEvery ?? Environment.integer("COMMANDS_SNAPSHOT_EVERY") ?? 100,
            relayStatus: relayStatus)
        try await ServerHost.run(
            name: "command-service", services: services, options: server, defaultAddress: ServiceAddress.commands.defaultAddress,
            extraServices: extraServices)
        closeBus()
    }
}

extension CommandServiceCommand {
    /// The SQLite file in the data directory, or the PostgreSQL database `url` names.
    static func openStore(
        _ url: String?, directory: String, commitPlace: CommitPlace, logger: Logger
    ) async throws -> (store: any EventStore, close: () -> Void) {
        let storeLogger = Logger(label: "eventstore")
        guard let url, !url.isEmpty else {
            var options = SQLiteEventStore.Options()
            options.commitScheduler = commitPlace.scheduler
            let store = try SQLiteEventStore(path: directory + "/events.sqlite", options: options, logger: storeLogger)
            return (store, store.close)
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw ValidationError("--store takes a PostgreSQL URL (postgres://user@host:5432/database), not '\(PostgresLocation.redact(url))'")
        }
        let store = try await PostgresEventStore.connect(url: url, logger: storeLogger)
        logger.notice("the event store is on PostgreSQL", metadata: ["store": "\(store.displayName)"])
        return (store, store.close)
    }

    /// The relay's signing key (see `OutboxRelay`): 32 random bytes, hex, in the data directory
    /// beside the store, made readable by the owner only on first start. Keep it with the store's
    /// backups: records signed with a lost key are no longer recognised as the relay's own.
    static func relayKey(at path: String, logger: Logger) throws -> SymmetricKey {
        if let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) {
            let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard hex.utf8.count == 64, let bytes = Hex.bytes(hex) else {
                throw ValidationError("\(path) is not a relay key (64 hex digits); move it away to make a new one")
            }
            return SymmetricKey(data: bytes)
        }
        let key = SymmetricKey(size: .bits256)
        let hex = key.withUnsafeBytes { Hex.string($0) }
        guard FileManager.default.createFile(atPath: path, contents: Data((hex + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write the relay key \(path)")
        }
        logger.notice("made the relay's signing key", metadata: ["path": "\(path)"])
        return key
    }
}

/// A service that runs only in the replica holding its lease (see `PostgresEventStore.whileHolding`).
final class LeasedService: Service, Sendable {
    let lease: String
    let store: PostgresEventStore
    let service: any Service
    let logger: Logger
    private let holding = Mutex(false)

    init(lease: String, store: PostgresEventStore, service: any Service, logger: Logger) {
        self.lease = lease
        self.store = store
        self.service = service
        self.logger = logger
    }

    /// Whether this replica holds the lease now.
    var isHolding: Bool { holding.withLock { $0 } }

    func run() async throws {
        // The service ends by itself on a graceful shutdown; a replica still waiting stops waiting.
        try await store.whileHolding(
            lease: lease, logger: logger, keepTrying: { !Task.isShuttingDownGracefully },
            holding: { [weak self] held in self?.holding.withLock { $0 = held } }
        ) { [service] in
            try await service.run()
        }
    }
}

@main
enum Entry {
    static func main() {
        ConcurrencyOnEventLoops.run {
            do {
                await CommandServiceCommand.main(try ConfigFile.expand(CommandLine.arguments))
            } catch {
                CommandServiceCommand.exit(withError: error)
            }
        }
    }
}
