import ArgumentParser
import BenchSupport
import Contracts
import Domain
import EventStore
import Foundation
import RPCCore
import RPCHosting
import RPCTransportTCP
import SQLite

/// queries-bench: load for the QueryService (rebuild, lag, get-by-id) and the baselines it is
/// judged against (batched SQLite inserts, the Echo RPC). One JSON line per run on stdout.
struct QueriesBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queries-bench",
        abstract: "Rebuild, lag and get-by-id against running services; batched SQLite inserts and Echo as baselines.",
        subcommands: [Populate.self, RawInserts.self, Rebuild.self, Lag.self, Get.self, Echo.self])
}

/// Writes a history straight into an event store file: `accounts` accounts opened, then deposits
/// round-robin until `events` events (the CommandService serves it afterwards).
struct Populate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "populate")
    @Option var directory: String
    @Option var events = 1_000_000
    @Option var accounts = 10_000
    @Option(help: "Events per append.") var chunk = 100

    func run() async throws {
        let store = try SQLiteEventStore(path: directory + "/events.sqlite")
        defer { store.close() }
        let started = ContinuousClock.now
        let perAccount = max(1, events / accounts)
        func encoded(_ event: any DomainEvent) throws -> NewEvent {
            let encoded = try EventTypeRegistry.encode(event)
            return NewEvent(eventId: UUID().uuidString, type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data)
        }
        let deposit = try encoded(FundsDeposited(accountId: "x", amount: Money(amountMinor: 1, currency: "EUR")))
        try await withThrowingTaskGroup(of: Void.self) { group in
            var inFlight = 0
            for index in 0..<accounts {
                let id = "bench-\(index)"
                var batch = [
                    try encoded(
                        AccountOpened(
                            accountId: id, holder: "Holder \(index % 100)", accountType: .current,
                            openingBalance: Money(amountMinor: 0, currency: "EUR")))
                ]
                let depositData = Array(#"{"accountId":"\#(id)","amount":{"amountMinor":1,"currency":"EUR"}}"#.utf8)
                for _ in 1..<perAccount { batch.append(NewEvent(eventId: UUID().uuidString, type: deposit.type, data: depositData)) }
                var version: Int64 = 0
                let chunks = stride(from: 0, to: batch.count, by: chunk).map { Array(batch[$0..<min($0 + chunk, batch.count)]) }
                let streamId = "BankAccount-\(id)"
                let expected: [ExpectedVersion] = chunks.map { events in
                    defer { version += Int64(events.count) }
                    return version == 0 ? .noStream : .exact(version)
                }
                if inFlight >= 64 {
                    try await group.next()
                    inFlight -= 1
                }
                inFlight += 1
                group.addTask {
                    for (events, expected) in zip(chunks, expected) {
                        _ = try await store.append(AppendRequest(streamId: streamId, expected: expected, events: events))
                    }
                }
            }
            try await group.waitForAll()
        }
        let head = try await store.headPosition()
        emit(["case": "populate", "events": head, "seconds": (ContinuousClock.now - started).seconds])
    }
}

/// The rebuild baseline: `rows` rows shaped like a read model's transaction rows, inserted in
/// transactions of `batch` rows through one prepared statement (WAL, synchronous=OFF as the
/// rebuild file), on the given directory.
struct RawInserts: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "raw-inserts")
    @Option var directory: String
    @Option var rows = 1_000_000
    @Option var batch = 5000

    func run() throws {
        let path = directory + "/raw-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let db = try SQLiteConnection(path: path)
        try db.execute(
            """
            PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;
            CREATE TABLE t(account_id TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT NOT NULL, amount_minor INTEGER NOT NULL,
                currency TEXT NOT NULL, balance_after INTEGER NOT NULL, at INTEGER NOT NULL, position INTEGER NOT NULL,
                PRIMARY KEY(account_id, version)) WITHOUT ROWID;
            """)
        let started = ContinuousClock.now
        var row = 0
        while row < rows {
            try db.transaction {
                for _ in 0..<min(batch, rows - row) {
                    try db.run(
                        "INSERT INTO t VALUES(?, ?, 'DEPOSIT', 1, 'EUR', ?, 1795435200000, ?)",
                        .text("bench-\(row % 10_000)"), .integer(Int64(row / 10_000 + 1)), .integer(Int64(row)), .integer(Int64(row + 1)))
                    row += 1
                }
            }
        }
        let wall = (ContinuousClock.now - started).seconds
        emit(["case": "raw_inserts", "rows": rows, "rows_per_s": (Double(rows) / wall).rounded()])
    }
}

/// One rebuild through a running query-service: events/s from the client's wall clock.
struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rebuild")
    @Option var queries: String
    @Option var pageSize = 5000

    func run() async throws {
        let client = RPCClient(transport: try TCPClientTransport(address: queries))
        defer { client.close() }
        let started = ContinuousClock.now
        let final = try await CqrsQueriesV1.ReadModels.Client(client).rebuild(.init(pageSize: pageSize)) { stream in
            var last: CqrsQueriesV1.RebuildProgress?
            for try await progress in stream { last = progress }
            return last
        }
        let wall = (ContinuousClock.now - started).seconds
        let events = final?.eventsApplied ?? 0
        emit(["case": "rebuild", "events": events, "events_per_s": (Double(events) / wall).rounded(), "seconds": wall])
    }
}

/// Read-model lag under a steady command load: deposits sent at `rate` per second (open loop,
/// spread over `accounts` accounts); each acknowledged deposit is then queried with its position
/// as minPosition, and the time from acknowledgement to the query's answer is its lag.
struct Lag: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lag")
    @Option var commands: String
    @Option var queries: String
    @Option var rate = 1000
    @Option var seconds = 5.0
    @Option var accounts = 64

    func run() async throws {
        let commandClient = RPCClient(transport: try TCPClientTransport(address: commands))
        let queryClient = RPCClient(transport: try TCPClientTransport(address: queries))
        defer {
            commandClient.close()
            queryClient.close()
        }
        let bank = CqrsCommandsV1.BankAccounts.Client(commandClient)
        let reads = CqrsQueriesV1.Accounts.Client(queryClient)
        let run = UUID().uuidString.prefix(8).lowercased()
        let ids = (0..<accounts).map { "lag-\(run)-\($0)" }
        for id in ids {
            _ = try await bank.openAccount(
                .init(accountId: id, holder: "Lag", accountType: .current, openingBalance: .init(amountMinor: 0, currency: "EUR")))
        }
        let interval = Duration.seconds(1) / rate
        let total = Int(Double(rate) * seconds)
        let started = ContinuousClock.now
        let lags = try await withThrowingTaskGroup(of: Double.self) { group in
            for index in 0..<total {
                let due = started + interval * index
                if due > .now { try await Task.sleep(until: due) }
                let id = ids[index % ids.count]
                group.addTask {
                    let result = try await bank.depositFunds(.init(accountId: id, amount: .init(amountMinor: 1, currency: "EUR")))
                    let acknowledged = ContinuousClock.now
                    _ = try await reads.getAccount(.init(accountId: id, minPosition: result.position), options: CallOptions(timeout: .seconds(10)))
                    return (ContinuousClock.now - acknowledged).seconds * 1000
                }
            }
            return try await group.reduce(into: [Double]()) { $0.append($1) }.sorted()
        }
        let wall = (ContinuousClock.now - started).seconds
        emit([
            "case": "lag", "rate": rate, "commands": lags.count, "achieved_per_s": (Double(lags.count) / wall).rounded(),
            "p50_ms": (percentile(lags, 0.5) * 100).rounded() / 100, "p99_ms": (percentile(lags, 0.99) * 100).rounded() / 100,
        ])
    }
}

/// GetAccount by id on accounts `bench-0` ... `bench-<accounts-1>` (populated ones).
struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get")
    @Option var queries: String
    @Option var concurrency = 1
    @Option var seconds = 3.0
    @Option var accounts = 10_000

    func run() async throws {
        let client = RPCClient(transport: try TCPClientTransport(address: queries))
        defer { client.close() }
        let reads = CqrsQueriesV1.Accounts.Client(client)
        let count = accounts
        let result = try await closedLoop(concurrency: concurrency, seconds: seconds) { _, index in
            _ = try await reads.getAccount(.init(accountId: "bench-\(index % count)"))
        }
        emit(result.fields.merging(["case": "get_account", "concurrency": concurrency]) { $1 })
    }
}

/// The Echo baseline: the same closed loop on jframe.testing.v1.Echo/Get (rpc-testserver).
struct Echo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "echo")
    @Option var server: String
    @Option var concurrency = 1
    @Option var seconds = 3.0

    func run() async throws {
        let client = RPCClient(transport: try TCPClientTransport(address: server))
        defer { client.close() }
        let echo = JframeTestingV1.Echo.Client(client)
        let result = try await closedLoop(concurrency: concurrency, seconds: seconds) { _, index in
            _ = try await echo.get(.init(id: "bench-\(index)", account: "bench", amount: 1, note: "echo"))
        }
        emit(result.fields.merging(["case": "echo", "concurrency": concurrency]) { $1 })
    }
}

@main
enum Entry {
    static func main() { ConcurrencyOnEventLoops.run { await QueriesBench.main() } }
}
