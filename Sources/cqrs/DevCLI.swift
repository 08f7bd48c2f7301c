import ArgumentParser
import Contracts
import Dispatch
import Foundation
import RPCCore
import RPCHosting
import RPCTransportTCP

/// `cqrs dev`: the three services as child processes on embedded SQLite, for a laptop.
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the broker, the CommandService and the QueryService locally until Ctrl-C.",
        discussion: """
            Starts the three binaries found next to cqrs as child processes, with their data in \
            <data-dir>/{broker,commands,queries} and their logs in <data-dir>/logs, waits until each \
            answers its health check, prints their addresses (and the CQRS_* variables that point the \
            CLI at them), then waits. Ctrl-C (or SIGTERM) stops them gracefully, the query side first.
            A port of 0 picks a free one. With --json it prints one line: {"event":"ready",...}. With \
            --http2 the CommandService and QueryService also serve gRPC and Connect clients over HTTP/2. \
            Each service serves Prometheus metrics (GET /metrics) on its own port, printed with the \
            others; --no-metrics turns that off. The broker also speaks the Kafka protocol on \
            --broker-kafka-port (9093; kcat, librdkafka and kafka-python reach the same topics); \
            --no-kafka turns that off. With --bus kafka the command-service and the query-service reach \
            the broker through that port with librdkafka, as they would any Kafka cluster (--bus kafka://…). \
            With --postgres the CommandService keeps its events and the QueryService its read models \
            (schema readmodels) in a local PostgreSQL cluster in <data-dir>/postgres (made on first \
            use; Debian's postgresql package), started first and stopped last; --store URL and \
            --read-store URL use databases of yours instead.
            """)

    @Option(help: "Directory for the services' data and logs.") var dataDir = "data/dev"
    @Option(help: "Host the services listen on.") var host = "127.0.0.1"
    @Option(help: "Broker port (0: any free port).") var brokerPort = ServiceAddress.broker.defaultPort
    @Option(help: "CommandService port (0: any free port).") var commandsPort = ServiceAddress.commands.defaultPort
    @Option(help: "QueryService port (0: any free port).") var queriesPort = ServiceAddress.queries.defaultPort
    @Flag(help: "Also serve gRPC and Connect clients over HTTP/2 (the services' --http2-listen).") var http2 = false
    @Option(help: "CommandService HTTP/2 port, with --http2 (0: any free port).") var commandsHttp2Port = 50061
    @Option(help: "QueryService HTTP/2 port, with --http2 (0: any free port).") var queriesHttp2Port = 50062
    @Flag(inversion: .prefixedNo, help: "Serve the Kafka protocol on the broker too (its --kafka-listen).") var kafka = true
    @Option(help: "Broker Kafka-protocol port, unless --no-kafka (0: any free port).") var brokerKafkaPort = 9093
    @Option(help: "How the services reach the broker: jframe (its own port) or kafka (its Kafka port, through librdkafka).")
    var bus: DevBus = .jframe
    @Flag(inversion: .prefixedNo, help: "Serve each service's Prometheus metrics (GET /metrics) on a port of its own.")
    var metrics = true
    @Option(help: "Broker metrics port (0: any free port).") var brokerMetricsPort = 9461
    @Option(help: "CommandService metrics port (0: any free port).") var commandsMetricsPort = 9462
    @Option(help: "QueryService metrics port (0: any free port).") var queriesMetricsPort = 9463
    @Flag(help: "Keep the events and the read models in a local PostgreSQL cluster (<data-dir>/postgres) instead of SQLite.")
    var postgres = false
    @Option(help: "PostgreSQL port, with --postgres (0: any free port).") var postgresPort = 55432
    @Option(help: "The CommandService's event store as a PostgreSQL URL (postgres://user:password@host:5432/db).") var store: String?
    @Option(help: "The QueryService's read models as a PostgreSQL URL (postgres://user:password@host:5432/db?schema=readmodels).")
    var readStore: String?
    @Option(help: "Seconds to wait for each service's health check.") var startTimeout = 60
    @Option(help: "Log level of the services.") var logLevel = "info"
    @Flag(help: "Print the ready line as JSON.") var json = false

    enum DevBus: String, ExpressibleByArgument, CaseIterable {
        case jframe, kafka
    }

    func validate() throws {
        if bus == .kafka && !kafka { throw ValidationError("--bus kafka needs the broker's Kafka port: drop --no-kafka") }
    }

    /// `--metrics-listen` for a child, unless metrics are off.
    private func metricsFlag(_ port: Int) -> [String] { metrics ? ["--metrics-listen", "\(host):\(port)"] : [] }

    func run() async throws {
        let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let logs = dataDir + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let children = Children()
        // Ctrl-C and SIGTERM stop the children (in reverse start order), then this process.
        let stop = AsyncStream<Int32>.makeStream()
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { stop.continuation.yield(signalNumber) }
            source.resume()
            sources.append(source)
        }
        defer { for source in sources { source.cancel() } }
        var storeURL = store
        var readStoreURL = readStore
        let localPostgres =
            postgres
            ? LocalPostgres(directory: dataDir + "/postgres", host: host, port: postgresPort == 0 ? try freePort(host) : postgresPort, logs: logs)
            : nil
        if let localPostgres {
            let url = try localPostgres.start()
            storeURL = storeURL ?? url
            readStoreURL = readStoreURL ?? url
        }
        defer { localPostgres?.stop() }

        do {
            let broker = try await children.start(
                "broker", binary: binaries.appendingPathComponent("broker"),
                arguments: ["--data-dir", dataDir + "/broker", "--listen", "\(host):\(brokerPort)", "--log-level", logLevel]
                    + (kafka ? ["--kafka-listen", "\(host):\(brokerKafkaPort)"] : []) + metricsFlag(brokerMetricsPort), logs: logs,
                timeout: startTimeout)
            let busFlags =
                bus == .kafka
                ? ["--bus", "kafka://\(children.addresses("listening-kafka")["broker"] ?? "")"] : ["--broker", broker]
            let commands = try await children.start(
                "command-service", binary: binaries.appendingPathComponent("command-service"),
                arguments: [
                    "--data-dir", dataDir + "/commands", "--listen", "\(host):\(commandsPort)", "--log-level", logLevel,
                ] + busFlags + (http2 ? ["--http2-listen", "\(host):\(commandsHttp2Port)"] : []) + (storeURL.map { ["--store", $0] } ?? [])
                    + metricsFlag(commandsMetricsPort), logs: logs,
                timeout: startTimeout)
            let queries = try await children.start(
                "query-service", binary: binaries.appendingPathComponent("query-service"),
                arguments: [
                    "--data-dir", dataDir + "/queries", "--listen", "\(host):\(queriesPort)", "--commands", commands,
                    "--log-level", logLevel,
                ] + busFlags + (http2 ? ["--http2-listen", "\(host):\(queriesHttp2Port)"] : []) + (readStoreURL.map { ["--read-store", $0] } ?? [])
                    + metricsFlag(queriesMetricsPort),
                logs: logs, timeout: startTimeout)
            let edges = children.addresses("listening-http2")
            let scrapes = children.addresses("listening-metrics")
            let kafkaAddress = children.addresses("listening-kafka")["broker"]
            if json {
                let edgeFields =
                    http2
                    ? #","commandsHttp2":"\#(edges["command-service"] ?? "")","queriesHttp2":"\#(edges["query-service"] ?? "")""# : ""
                let kafkaField = kafkaAddress.map { #","brokerKafka":"\#($0)""# } ?? ""
                let metricsFields =
                    metrics
                    ? #","brokerMetrics":"\#(scrapes["broker"] ?? "")","commandsMetrics":"\#(scrapes["command-service"] ?? "")","queriesMetrics":"\#(scrapes["query-service"] ?? "")""#
                    : ""
                print(
                    #"{"event":"ready","broker":"\#(broker)","commands":"\#(commands)","queries":"\#(queries)"\#(kafkaField)\#(edgeFields)\#(metricsFields),"dataDir":"\#(dataDir)"}"#
                )
            } else {
                let edgeRows = ["command-service", "query-service"].compactMap { name in
                    edges[name].map { ["\(name) (HTTP/2: gRPC, Connect)", $0, children.pid(name), "SERVING", logs + "/\(name).log"] }
                }
                let kafkaRows = kafkaAddress.map { [["broker (Kafka protocol)", $0, children.pid("broker"), "SERVING", logs + "/broker.log"]] } ?? []
                let metricsRows = ["broker", "command-service", "query-service"].compactMap { name in
                    scrapes[name].map { ["\(name) (metrics)", "http://\($0)/metrics", children.pid(name), "SERVING", logs + "/\(name).log"] }
                }
                print(
                    table(
                        [
                            ["SERVICE", "ADDRESS", "PID", "HEALTH", "LOG"],
                            ["broker", broker, children.pid("broker"), "SERVING", logs + "/broker.log"],
                            ["command-service", commands, children.pid("command-service"), "SERVING", logs + "/command-service.log"],
                            ["query-service", queries, children.pid("query-service"), "SERVING", logs + "/query-service.log"],
                        ] + kafkaRows + edgeRows + metricsRows))
                print("\nexport CQRS_BROKER=\(broker) CQRS_COMMANDS=\(commands) CQRS_QUERIES=\(queries)")
                print("Ctrl-C stops them.")
            }
            fflush(nil)
            // Wait for a signal, or for a child to die on its own.
            let reason = await withTaskGroup(of: String.self) { group in
                group.addTask { "\(await children.firstExit()) exited" }
                group.addTask {
                    for await number in stop.stream { return "signal \(number)" }
                    return "cancelled"
                }
                let first = await group.next()!
                group.cancelAll()
                return first
            }
            FileHandle.standardError.write(Data("stopping (\(reason))\n".utf8))
            let failed = children.stopAll()
            if reason.hasSuffix("exited") || failed { throw ExitCode.failure }
        } catch {
            _ = children.stopAll()
            throw error
        }
    }
}

/// The child processes of `cqrs dev`, started in order and stopped in reverse.
final class Children: @unchecked Sendable {
    private let lock = NSLock()
    private var processes: [(name: String, process: Process)] = []
    private var announced: [String: [String: String]] = [:]

    /// Each child's address of one kind (`listening-http2`, `listening-metrics`), as announced.
    func addresses(_ kind: String) -> [String: String] {
        lock.withLock { announced.compactMapValues { $0[kind] } }
    }

    func pid(_ name: String) -> String {
        lock.withLock { processes.first { $0.name == name }.map { String($0.process.processIdentifier) } ?? "-" }
    }

    /// Starts a service, reads its "listening" line for the address, and waits until its health
    /// check answers SERVING. Returns host:port.
    func start(_ name: String, binary: URL, arguments: [String], logs: String, timeout: Int) async throws -> String {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw ValidationError("\(binary.path) not found: build it first (swift build)")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: "\(logs)/\(name).log", contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(logs)/\(name).log"))
        try process.run()
        lock.withLock { processes.append((name, process)) }
        // One "listening" line, and one line per extra port (the HTTP/2 edge, metrics), in any order.
        var wanted: Set<String> = ["listening"]
        if arguments.contains("--http2-listen") { wanted.insert("listening-http2") }
        if arguments.contains("--metrics-listen") { wanted.insert("listening-metrics") }
        if arguments.contains("--kafka-listen") { wanted.insert("listening-kafka") }
        var addresses: [String: String] = [:]
        let lines = Self.lines(output.fileHandleForReading)
        for try await line in lines {
            guard let data = line.data(using: .utf8),
                let event = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let kind = event["event"] as? String, let host = event["host"] as? String, let port = event["port"] as? Int
            else { continue }
            addresses[kind] = "\(host):\(port)"
            wanted.remove(kind)
            if wanted.isEmpty { break }
        }
        guard let address = addresses["listening"], wanted.isEmpty else {
            throw ValidationError("\(name) did not start: see \(logs)/\(name).log")
        }
        lock.withLock { announced[name] = addresses }
        let client = RPCClient(transport: try TCPClientTransport(address: address))
        defer { client.close() }
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            let status = try? await JframeHealthV1.Health.Client(client).check(.init(), options: CallOptions(timeout: .seconds(2))).status
            if status == .serving { return address }
            if ContinuousClock.now > deadline || !process.isRunning {
                throw ValidationError("\(name) is not healthy (\(status.map { "\($0)" } ?? "no answer")): see \(logs)/\(name).log")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The lines of `handle` (the child's stdout) as they come; the pipe is drained to its end
    /// even after the caller stops listening, so the child never blocks on a full pipe.
    private static func lines(_ handle: FileHandle) -> AsyncThrowingStream<String, any Error> {
        AsyncThrowingStream { continuation in
            DispatchQueue.global().async {
                var buffer = Data()
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                        continuation.yield(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                        buffer = Data(buffer[buffer.index(after: newline)...])
                    }
                }
                continuation.finish(throwing: ValidationError("the process ended before it was listening"))
            }
        }
    }

    /// The name of the first child to exit.
    func firstExit() async -> String {
        while !Task.isCancelled {
            if let dead = lock.withLock({ processes.first { !$0.process.isRunning }?.name }) { return dead }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return ""
    }

    /// SIGTERM to each child in reverse start order, waiting for each to finish; true when one
    /// ended badly.
    func stopAll() -> Bool {
        var failed = false
        for (name, process) in lock.withLock({ processes.reversed() }) {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
            let status = process.terminationStatus
            if status != 0 && !(process.terminationReason == .uncaughtSignal && status == SIGTERM) {
                FileHandle.standardError.write(Data("\(name) exited with status \(status)\n".utf8))
                failed = true
            } else {
                FileHandle.standardError.write(Data("\(name) stopped\n".utf8))
            }
        }
        lock.withLock { processes.removeAll() }
        return failed
    }
}

/// A port nothing listens on now, for servers that cannot be given port 0 (PostgreSQL).
func freePort(_ host: String) throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw ValidationError("cannot open a socket to find a free port") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr(host)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard bound else { throw ValidationError("cannot find a free port on \(host)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
