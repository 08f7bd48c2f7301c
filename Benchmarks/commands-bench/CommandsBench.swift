import ArgumentParser
import BenchSupport
import Contracts
import Foundation
import RPCCore
import RPCHosting
import RPCTransportTCP
import SQLite

/// commands-bench: load for the CommandService, and the raw SQLite limit it is judged against.
/// One JSON line per run on stdout.
struct CommandsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commands-bench",
        abstract: "Deposits against a running command-service, and raw durable SQLite inserts.",
        subcommands: [Deposits.self, RawSQLite.self])
}

/// `concurrency` clients, each depositing 1 minor unit into its own existing account in a loop for
/// `seconds`: commands/s and per-command latency.
struct Deposits: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deposits")
    @Option var server: String
    @Option var concurrency = 1
    @Option var seconds = 3.0

    func run() async throws {
        let client = RPCClient(transport: try TCPClientTransport(address: server))
        defer { client.close() }
        let accounts = CqrsCommandsV1.BankAccounts.Client(client)
        let run = UUID().uuidString.prefix(8).lowercased()
        let ids = (0..<concurrency).map { "bench-\(run)-\($0)" }
        for id in ids {
            _ = try await accounts.openAccount(
                .init(accountId: id, holder: "Bench", accountType: .current, openingBalance: .init(amountMinor: 0, currency: "EUR")))
        }
        let amount = CqrsCommandsV1.Money(amountMinor: 1, currency: "EUR")
        let result = try await closedLoop(concurrency: concurrency, seconds: seconds) { worker, _ in
            _ = try await accounts.depositFunds(.init(accountId: ids[worker], amount: amount))
        }
        emit([
            "case": "deposits", "concurrency": concurrency, "commands": result.latenciesUs.count, "commands_per_s": result.callsPerSecond,
            "p50_us": percentile(result.latenciesUs, 0.5).rounded(), "p99_us": percentile(result.latenciesUs, 0.99).rounded(),
        ])
    }
}

/// The baseline: single-row insert transactions, one after another, into an SQLite database in WAL
/// mode with synchronous=FULL (each commit fsyncs the WAL), 200-byte rows, on the given directory.
struct RawSQLite: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "raw-sqlite")
    @Option var directory: String
    @Option var seconds = 3.0

    func run() throws {
        let path = directory + "/raw-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let db = try SQLiteConnection(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t(id INTEGER PRIMARY KEY, payload TEXT NOT NULL);")
        let payload = String(repeating: "x", count: 200)
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let start = ContinuousClock.now
        var count = 0
        while ContinuousClock.now < end {
            try db.run("BEGIN")
            try db.run("INSERT INTO t(payload) VALUES(?)", .text(payload))
            try db.run("COMMIT")
            count += 1
        }
        let wall = (ContinuousClock.now - start).seconds
        emit(["case": "raw_sqlite_insert", "transactions": count, "txn_per_s": (Double(count) / wall).rounded()])
    }
}

@main
enum Entry {
    static func main() { ConcurrencyOnEventLoops.run { await CommandsBench.main() } }
}
