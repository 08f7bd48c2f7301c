import ArgumentParser
import BrokerClient
import Foundation
import Logging
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
            The read models live in <data-dir>/readmodels.sqlite (WAL). A consumer-group member per \
            event topic applies each batch of records in one transaction with its offsets and stream \
            versions, so every event counts once however often it is delivered. Rebuild reads the \
            CommandService's history (cqrs.commands.v1.EventStore/ReadAll).
            Every flag can also come from an environment variable (named in its help) or from a JSON \
            config file given with --config FILE (or JFRAME_CONFIG), whose keys are the flag names. \
            The command line wins over the file, the file over the environment.
            Prints one JSON line on stdout once listening: {"event":"listening","service":"query-service","host":…,"port":…}.
            """)

    @OptionGroup var server: ServerOptions
    @OptionGroup var upstream: UpstreamSecurityOptions

    @Option(help: "Directory of the read models. Env: QUERIES_DATA_DIR.")
    var dataDir: String?

    @Option(help: "The broker to consume from, host:port. Env: CQRS_BROKER.")
    var broker: String?

    @Option(help: "The CommandService to rebuild from, host:port. Env: CQRS_COMMANDS.")
    var commands: String?

    @Flag(
        inversion: .prefixedNo,
        help: "Consume the broker's event topics (--no-projection: serve and rebuild only). Env: QUERIES_PROJECTION=0 turns it off.")
    var projection = true

    @Option(help: "Consumer group of the projection. Env: QUERIES_GROUP.")
    var group: String?

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
    }

    func run() async throws {
        ServerHost.bootstrapLogging(server)
        let logger = Logger(label: "query-service")
        let directory = dataDir ?? Environment.string("QUERIES_DATA_DIR") ?? "data/queries"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var storeOptions = ReadModelStore.Options()
        if let wait = try maxPositionWaitMs ?? Environment.integer("QUERIES_MAX_POSITION_WAIT_MS") {
            guard (1...3_600_000).contains(wait) else { throw ValidationError("QUERIES_MAX_POSITION_WAIT_MS must be 1 to 3600000") }
            storeOptions.maxPositionWait = .milliseconds(wait)
        }
        let store = try ReadModelStore(path: directory + "/readmodels.sqlite", options: storeOptions, logger: Logger(label: "readmodels"))
        defer { store.close() }

        let commandsClient = try upstream.client(address: ServiceAddress.commands.resolve(commands))
        var extraServices: [any Service] = []
        var follower: Projection?
        var bus: BrokerEventBus?
        var brokerClient: RPCClient?
        if projection && Environment.string("QUERIES_PROJECTION") != "0" {
            let client = try upstream.client(address: ServiceAddress.broker.resolve(broker))
            var options = Projection.Options()
            options.group = group ?? Environment.string("QUERIES_GROUP") ?? options.group
            options.topicPartitions = try topicPartitions ?? Environment.integer("QUERIES_TOPIC_PARTITIONS") ?? options.topicPartitions
            var busOptions = BrokerEventBus.Options()
            busOptions.requestTimeout = .seconds(5)
            let brokerBus = BrokerEventBus(client: client, options: busOptions, logger: Logger(label: "projection"))
            let projection = Projection(store: store, bus: brokerBus, topics: QuerySide.topics, options: options, logger: Logger(label: "projection"))
            extraServices.append(projection)
            follower = projection
            bus = brokerBus
            brokerClient = client
        } else {
            logger.notice("projection off: the read models change only by rebuild")
        }
        let services = QuerySide.services(store: store, projection: follower, bus: bus, commands: commandsClient)
        try await ServerHost.run(
            name: "query-service", services: services, options: server, defaultAddress: ServiceAddress.queries.defaultAddress,
            extraServices: extraServices)
        brokerClient?.close()
        commandsClient.close()
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
