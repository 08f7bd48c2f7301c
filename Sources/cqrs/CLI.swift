import ArgumentParser
import BrokerClient
import Contracts
import Foundation
import RPCCore
import RPCHosting
import RPCTransportTCP

/// cqrs: the client CLI of the system: account and order commands and the event store of the
/// CommandService; queries, status, rebuild and parked events of the QueryService; broker topics,
/// records and groups.
struct CQRS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cqrs",
        abstract:
            "Client for the CQRS system: account, order, job and application commands and queries, the event store, read-model status and rebuild, broker topics, records and consumer groups.",
        discussion: "Exit status: 0 on success, else the status code of the failed call (5 NOT_FOUND, 3 INVALID_ARGUMENT, …).",
        subcommands: [
            Accounts.self, Orders.self, Customers.self, Jobs.self, Applications.self, Events.self, Verify.self, Status.self, Rebuild.self,
            Parked.self, Topics.self, Produce.self,
            Consume.self, Groups.self, Describe.self, Call.self, Health.self, Dev.self,
        ])
}

/// Options every command shares.
struct Connection: ParsableArguments {
    @Option(help: "Broker address host:port. Env: CQRS_BROKER.") var broker: String?
    @Option(help: "Deadline of each call, ms.") var deadline: Int = 10_000
    @Flag(help: "One JSON object per line instead of human-readable text.") var json = false
    @OptionGroup var security: ClientSecurityOptions

    func api() throws -> BrokerAPI.Broker.Client {
        let address = ServiceAddress.broker.resolve(broker)
        return BrokerAPI.Broker.Client(try security.client(address: address))
    }

    var options: CallOptions { CallOptions(timeout: .milliseconds(deadline)) }

    /// Prints a reply as JSON, or `human` otherwise.
    func show(_ message: some JSONMessage, _ human: () -> String) { Self.show(message, json: json, human) }

    static func show(_ message: some JSONMessage, json: Bool, _ human: () -> String) {
        if json {
            var writer = JSONWriter()
            message.writeJSON(to: &writer)
            print(String(decoding: writer.bytes, as: UTF8.self))
        } else {
            print(human())
        }
    }
}

/// Runs a command body, turning a failed call into one clear line and its status as exit code.
func reporting(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as RPCError {
        var line = "error: \(error.code.name): \(error.message)"
        for detail in error.details {
            for violation in detail.fieldViolations ?? [] { line += "\n  \(violation.field): \(violation.description)" }
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
        throw ExitCode(Int32(error.code.rawValue))
    }
}

/// Progress on stderr: one line rewritten in place on a terminal, a line each otherwise.
enum ProgressLine {
    static let interactive = isatty(STDERR_FILENO) == 1

    static func show(_ line: String) {
        FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }

    /// Clears the line before the final result is printed.
    static func clear() {
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

func table(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    let widths = (0..<first.count).map { column in rows.map { $0[column].count }.max() ?? 0 }
    return rows.map { row in
        zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n")
}

struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, describe and delete topics.", subcommands: [Create.self, List.self, Describe.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Option var partitions = 1
        @Flag(help: "Keep only the latest record per key.") var compact = false
        @Option(help: "Retention, ms (-1: forever).") var retentionMs: Int64?
        @Option(help: "Retention per partition, bytes (-1: no limit).") var retentionBytes: Int64?
        @Option(help: "Segment size, bytes.") var segmentBytes: Int64?

        func run() async throws {
            try await reporting {
                let config = BrokerAPI.TopicConfig(
                    cleanupPolicy: compact ? .compact : nil, retentionMs: retentionMs, retentionBytes: retentionBytes,
                    segmentBytes: segmentBytes)
                let topic = try await connection.api().createTopic(
                    .init(name: name, partitions: partitions, config: config), options: connection.options)
                connection.show(topic) { "created \(topic.name) with \(topic.partitions.count) partition(s)" }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics.")
        @OptionGroup var connection: Connection

        func run() async throws {
            try await reporting {
                let reply = try await connection.api().listTopics(.init(), options: connection.options)
                connection.show(reply) {
                    table([["TOPIC", "PARTITIONS", "CLEANUP"]] + reply.topics.map { [$0.name, "\($0.partitions)", $0.cleanupPolicy.rawValue] })
                }
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A topic's configuration and partitions.")
        @OptionGroup var connection: Connection
        @Argument var name: String

        func run() async throws {
            try await reporting {
                let topic = try await connection.api().describeTopic(.init(name: name), options: connection.options)
                connection.show(topic) {
                    let c = topic.config
                    return
                        "\(topic.name): cleanup \(c.cleanupPolicy?.rawValue ?? "?"), retention \(c.retentionMs ?? -1) ms / \(c.retentionBytes ?? -1) bytes, segments of \(c.segmentBytes ?? 0) bytes\n"
                        + table(
                            [["PARTITION", "LOG-START", "HIGH-WATERMARK", "BYTES", "SEGMENTS", "STATUS"]]
                                + topic.partitions.map {
                                    [
                                        "\($0.partition)", "\($0.logStartOffset)", "\($0.highWatermark)", "\($0.sizeBytes)", "\($0.segments)",
                                        $0.offlineReason ?? "online",
                                    ]
                                })
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a topic and its records.")
        @OptionGroup var connection: Connection
        @Argument var name: String

        func run() async throws {
            try await reporting {
                let reply = try await connection.api().deleteTopic(.init(name: name), options: connection.options)
                connection.show(reply) { "deleted \(name)" }
            }
        }
    }
}

struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append records: each VALUE argument, or each line of stdin, is one JSON value.",
        discussion: "Example: cqrs produce OnNewOrder --key order-7 '{\"quantity\":2}'")
    @OptionGroup var connection: Connection
    @Argument var topic: String
    @Argument(help: "JSON values; read from stdin, one per line, when none are given.") var values: [String] = []
    @Option var key: String?
    @Option var partition: Int?
    @Option(help: "A header name=value; repeatable.") var header: [String] = []

    func run() async throws {
        try await reporting {
            var headers: [String: String] = [:]
            for entry in header {
                guard let eq = entry.firstIndex(of: "=") else { throw ValidationError("--header takes name=value, got \(entry)") }
                headers[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
            }
            var lines = values
            if lines.isEmpty { while let line = readLine() { if !line.isEmpty { lines.append(line) } } }
            var records: [BrokerAPI.ProduceRecord] = []
            for (i, text) in lines.enumerated() {
                do {
                    records.append(
                        .init(key: key, value: try RawJSON(validating: text), headers: headers.isEmpty ? nil : headers, partition: partition))
                } catch {
                    throw RPCError.invalidArgument("value \(i + 1) is not JSON: \(text)", violations: [])
                }
            }
            let reply = try await connection.api().produce(.init(topic: topic, records: records), options: connection.options)
            connection.show(reply) { reply.results.map { "\(topic)/\($0.partition)@\($0.offset)" }.joined(separator: "\n") }
        }
    }
}

struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a topic's records: topic, partition, offset, high watermark, key and value.",
        discussion:
            "Without --group it reads partitions directly (all, or --partition). With --group it joins the group, consumes what it is assigned and commits as it goes."
    )
    @OptionGroup var connection: Connection
    @Argument var topic: String
    @Option var partition: Int?
    @Flag(help: "Start at the first stored record (default: the end, i.e. only new records with --follow).") var fromBeginning = false
    @Option(help: "Start at this offset.") var offset: Int64?
    @Flag(help: "Keep waiting for new records until interrupted.") var follow = false
    @Option(help: "Stop after this many records.") var max: Int?
    @Option(help: "Consume as a member of this consumer group.") var group: String?
    @Flag(inversion: .prefixedNo, help: "Show each record's headers (--no-headers: partition, offset, key and value only).") var headers = true

    func run() async throws {
        try await reporting {
            let api = try connection.api()
            let printer = RecordPrinter(json: connection.json, limit: max, headers: headers)
            if let group {
                var options = GroupConsumer.Options()
                options.clientId = "cqrs-cli"
                options.startFromLatest = !fromBeginning
                let client = api.client
                let consumer = GroupConsumer(client: client, group: group, topics: [topic], options: options)
                let task = Task {
                    try await consumer.run { record in if printer.print(self.topic, record, highWatermark: nil) { throw CancellationError() } }
                }
                if !follow {
                    try await Task.sleep(for: .seconds(2))
                    task.cancel()
                }
                _ = await task.result
                return
            }
            let described = try await api.describeTopic(.init(name: topic), options: connection.options)
            let partitions = partition.map { [$0] } ?? described.partitions.map(\.partition)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for p in partitions {
                    let info = described.partitions.first { $0.partition == p }
                    var next = offset ?? (fromBeginning ? (info?.logStartOffset ?? 0) : (info?.highWatermark ?? 0))
                    tasks.addTask {
                        while !Task.isCancelled {
                            let reply = try await api.fetch(
                                .init(topic: topic, partition: p, offset: next, maxRecords: 500, maxWaitMs: follow ? 1000 : 0))
                            for record in reply.records where printer.print(topic, record, highWatermark: reply.highWatermark) { return }
                            next = reply.nextOffset
                            if !follow && next >= reply.highWatermark { return }
                        }
                    }
                }
                try await tasks.waitForAll()
            }
        }
    }
}

/// Prints records from several partitions without interleaving lines; counts toward --max.
final class RecordPrinter: @unchecked Sendable {
    private let lock = NSLock()
    private let json: Bool
    private let limit: Int?
    private let headers: Bool
    private var printed = 0

    init(json: Bool, limit: Int?, headers: Bool = true) {
        self.json = json
        self.limit = limit
        self.headers = headers
    }

    /// Prints one record; true once the limit is reached.
    func print(_ topic: String, _ record: BrokerAPI.ConsumedRecord, highWatermark: Int64?) -> Bool {
        lock.withLock {
            if let limit, printed >= limit { return true }
            if json {
                var writer = JSONWriter()
                record.writeJSON(to: &writer)
                Swift.print(String(decoding: writer.bytes, as: UTF8.self))
            } else {
                let hw = highWatermark.map { " hw=\($0)" } ?? ""
                let headers = !self.headers ? "" : (record.headers ?? [:]).sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
                Swift.print(
                    "\(topic)/\(record.partition)@\(record.offset)\(hw) key=\(record.key ?? record.keyBase64.map { "base64:" + $0 } ?? "-")\(headers) \(record.value?.description ?? record.valueBase64.map { "base64:" + $0 } ?? "(tombstone)")"
                )
            }
            fflush(nil)
            printed += 1
            return limit.map { printed >= $0 } ?? false
        }
    }
}

struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Consumer groups and their lag.", subcommands: [List.self, Describe.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List groups.")
        @OptionGroup var connection: Connection

        func run() async throws {
            try await reporting {
                let reply = try await connection.api().listGroups(.init(), options: connection.options)
                connection.show(reply) {
                    table([["GROUP", "STATE", "MEMBERS"]] + reply.groups.map { [$0.group, $0.state.rawValue, "\($0.members)"] })
                }
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A group's members, and per partition its committed offset and lag.")
        @OptionGroup var connection: Connection
        @Argument var group: String

        func run() async throws {
            try await reporting {
                let reply = try await connection.api().describeGroup(.init(group: group), options: connection.options)
                connection.show(reply) {
                    "\(reply.group): \(reply.state.rawValue), generation \(reply.generation), \(reply.members.count) member(s)\n"
                        + table(
                            [["TOPIC", "PARTITION", "COMMITTED", "HIGH-WATERMARK", "LAG", "OWNER"]]
                                + reply.partitions.map {
                                    [
                                        $0.topic, "\($0.partition)", $0.committedOffset.map { "\($0)" } ?? "-", "\($0.highWatermark)", "\($0.lag)",
                                        $0.owner ?? "-",
                                    ]
                                })
                }
            }
        }
    }
}

/// The CLI runs on Swift's own executor: one call at a time needs no event-loop tricks, and a
/// client tool must not install runtime hooks (`ConcurrencyOnEventLoops` is for servers).
/// ArgumentParser's own `main` exits on an error at once; this one first sends the spans of
/// `--otlp-endpoint`.
@main
enum Entry {
    static func main() async {
        do {
            var command = try CQRS.parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            await ClientTracing.finish()
            CQRS.exit(withError: error)
        }
        await ClientTracing.finish()
    }
}
