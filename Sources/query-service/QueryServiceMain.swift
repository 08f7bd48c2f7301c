import ArgumentParser
import BrokerClient
import EventBus
import Foundation
import KafkaClient
import Logging
import PostgresConnections
import PostgresReadModels
import QueryService
import RPCCore
import RPCHosting
import RPCTransportTCP
import ReadModels
import ServiceLifecycle

/// query-service: the read side's process.
struct QueryServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query-service",
        abstract: "Serve cqrs.queries.v1: read models projected from the broker's event topics, queries, and rebuild from the CommandService.",
        discussion: """
            The read models live in <data-dir>/readmodels.sqlite (WAL), or with --read-store \
            postgres://… in a PostgreSQL schema several query-service replicas share (one consumer \
            group: each applies the partitions it owns; any replica answers any query, minPosition \
            included). A consumer-group member per event topic applies each batch of records in one transaction with its offsets and stream \
            versions, so every event counts once however often it is delivered. Rebuild reads the \
            CommandService's history (cqrs.commands.v1.EventStore/ReadAll).
            Every flag can also come from an environment variable (named in its help) or from a JSON \
            config file given with --config FILE (or JFRAME_CONFIG), whose keys are the flag names. \
            The command line wins over the file, the file over the environment.
            Prints one JSON line on stdout once listening: {"event":"listening","service":"query-service","host":…,"port":…,"tls":…,"globalExecutor":…,"malloc":…} (which executor Swift Concurrency runs on, "hook" by default, see JFRAME_GLOBAL_EXECUTOR; and which malloc: "jemalloc" in release builds made as the README says, else "system").
            """)

    @OptionGroup var server: ServerOptions
    @OptionGroup var upstream: UpstreamSecurityOptions

    @Option(help: "Directory of the read models. Env: QUERIES_DATA_DIR.")
    var dataDir: String?

    @Option(
        help:
            "Where the read models live: a PostgreSQL URL, postgres://user:password@host:5432/database (several query-service replicas may share one; query parameters: sslmode=disable|require, schema=NAME, default readmodels), or, when not given, the SQLite file in --data-dir. Env: QUERIES_READ_STORE."
    )
    var readStore: String?

    @Option(help: "The broker to consume from, host:port (unless --bus names a Kafka cluster). Env: CQRS_BROKER.")
    var broker: String?

    @Option(help: ArgumentHelp(BusFlag.help, valueName: "url"))
    var bus: String?

    @Option(help: "The CommandService to rebuild from, host:port. Env: CQRS_COMMANDS.")
    var commands: String?

    @Flag(
        inversion: .prefixedNo,
        help: "Consume the broker's event topics (--no-projection: serve and rebuild only). Env: QUERIES_PROJECTION=0 turns it off.")
    var projection = true

    @Option(help: "Consumer group of the projection. Env: QUERIES_GROUP.")
    var group: String?

    @Flag(
        help:
            "Health checks say NOT_SERVING for the query services until, after start, the read models first caught up (no lag on any partition), so a load balancer sends no queries to a replica far behind. Env: QUERIES_READY_WHEN_CAUGHT_UP=1."
    )
    var readyWhenCaughtUp = false

    @Option(help: "Partitions of an event topic created here because it does not exist yet. Env: QUERIES_TOPIC_PARTITIONS.")
    var topicPartitions: Int?

    @Option(
        help:
            "Longest a query waits for its minPosition, whatever its deadline (or without one), ms; then DEADLINE_EXCEEDED. Default 30000. Env: QUERIES_MAX_POSITION_WAIT_MS."
    )
    var maxPositionWaitMs: Int?

    func validate() throws {
        if let maxPositionWaitMs, !(1...3_600_000).contains(maxPositionWaitMs) {
            throw ValidationError("--max-position-wait-ms must be 1 to 3600000")
        }
        if let topicPartitions, !(1...1024).contains(topicPartitions) { throw ValidationError("--topic-partitions must be 1 to 1024") }
        if let group, group.isEmpty { throw ValidationError("--group must not be empty") }
        _ = try BusFlag.kafkaLocation(bus)
    }

    func run() async throws {
        try ServerHost.bootstrapObservability(server, service: "query-service")
        let logger = Logger(label: "query-service")
        let directory = dataDir ?? Environment.string("QUERIES_DATA_DIR") ?? "data/queries"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var storeOptions = ReadModelStore.Options()
        if let wait = try maxPositionWaitMs ?? Environment.integer("QUERIES_MAX_POSITION_WAIT_MS") {
            guard (1...3_600_000).contains(wait) else { throw ValidationError("QUERIES_MAX_POSITION_WAIT_MS must be 1 to 3600000") }
            storeOptions.maxPositionWait = .milliseconds(wait)
        }
        let store = try await Self.openStore(readStore ?? Environment.string("QUERIES_READ_STORE"), directory: directory, options: storeOptions)
        defer { store.close() }
        if store.backend.sharing != nil {
            logger.notice("the read models are on PostgreSQL", metadata: ["store": "\(store.displayName)"])
        }

        let commandsClient = try upstream.client(address: ServiceAddress.commands.resolve(commands))
        var extraServices: [any Service] = []
        var follower: Projection?
        var bus: (any EventSubscriber)?
        var closeBus: () -> Void = {}
        if projection && Environment.string("QUERIES_PROJECTION") != "0" {
            var options = Projection.Options()
            options.group = group ?? Environment.string("QUERIES_GROUP") ?? options.group
            options.topicPartitions = try topicPartitions ?? Environment.integer("QUERIES_TOPIC_PARTITIONS") ?? options.topicPartitions
            let chosen: any EventSubscriber
            if let kafka = try BusFlag.kafkaLocation(self.bus ?? Environment.string("CQRS_BUS")) {
                var busOptions = KafkaEventBus.Options()
                busOptions.requestTimeout = .seconds(5)
                let kafkaBus = KafkaEventBus(location: kafka, options: busOptions, logger: Logger(label: "projection"))
                logger.notice("the projection consumes from a Kafka cluster", metadata: ["bus": "\(kafka)"])
                (chosen, closeBus) = (kafkaBus, kafkaBus.close)
            } else {
                let client = try upstream.client(address: ServiceAddress.broker.resolve(broker))
                var busOptions = BrokerEventBus.Options()
                busOptions.requestTimeout = .seconds(5)
                (chosen, closeBus) = (BrokerEventBus(client: client, options: busOptions, logger: Logger(label: "projection")), client.close)
            }
            let projection = Projection(store: store, bus: chosen, topics: QuerySide.topics, options: options, logger: Logger(label: "projection"))
            extraServices.append(projection)
            follower = projection
            bus = chosen
        } else {
            logger.notice("projection off: the read models change only by rebuild")
        }
        let services = QuerySide.services(
            store: store, projection: follower, bus: bus, commands: commandsClient,
            readyWhenCaughtUp: readyWhenCaughtUp || Environment.string("QUERIES_READY_WHEN_CAUGHT_UP") == "1")
        try await ServerHost.run(
            name: "query-service", services: services, options: server, defaultAddress: ServiceAddress.queries.defaultAddress,
            extraServices: extraServices)
        closeBus()
        commandsClient.close()
    }
}

extension QueryServiceCommand {
    /// The SQLite file in the data directory, or the PostgreSQL schema `url` names.
    static func openStore(_ url: String?, directory: String, options: ReadModelStore.Options) async throws -> ReadModelStore {
        let logger = Logger(label: "readmodels")
        guard let url, !url.isEmpty else {
            return try ReadModelStore(path: directory + "/readmodels.sqlite", options: options, logger: logger)
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw ValidationError("--read-store takes a PostgreSQL URL (postgres://user@host:5432/database), not '\(PostgresLocation.redact(url))'")
        }
        // A database that is not there is reported at once, in one line.
        try await PostgresLocation(url: url).probe(logger: logger)
        var backendOptions = PostgresReadModels.Options()
        backendOptions.readers = options.readers
        // Opening waits on the network: on a Dispatch thread, not on the loops this runs on.
        let chosen = backendOptions
        return try await offload {
            try ReadModelStore(backend: PostgresReadModels(url: url, options: chosen, logger: logger), options: options, logger: logger)
        }
    }
}

@main
enum Entry {
    static func main() {
        ConcurrencyOnEventLoops.run {
            do {
                await QueryServiceCommand.main(try ConfigFile.expand(CommandLine.arguments))
            } catch {
                QueryServiceCommand.exit(withError: error)
            }
        }
    }
}
