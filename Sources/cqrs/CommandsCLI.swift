import ArgumentParser
import Contracts
import Foundation
import RPCCore
import RPCHosting
import RPCTransportTCP

typealias CommandsAPI = CqrsCommandsV1

/// Options of every command that talks to the CommandService.
struct CommandServiceConnection: ParsableArguments {
    @Option(help: "CommandService address host:port. Env: CQRS_COMMANDS.") var commands: String?
    @Option(help: "Deadline of each call, ms.") var deadline: Int = 10_000
    @Flag(help: "One JSON object per line instead of human-readable text.") var json = false
    @Option(help: "Makes the command idempotent: sending it again with the same id returns the first result.") var commandId: String?

    @OptionGroup var security: ClientSecurityOptions

    func client() throws -> RPCClient {
        try security.client(address: ServiceAddress.commands.resolve(commands))
    }

    var options: CallOptions { CallOptions(timeout: .milliseconds(deadline)) }

    func show(_ result: CommandsAPI.CommandResult) {
        Connection.show(result, json: json) {
            "\(result.streamId) version \(result.version) position \(result.position)" + (result.duplicate ? " (duplicate: first result)" : "")
        }
    }
}

/// `--amount 12.50 --currency EUR` or `--amount-minor 1250`: the CLI takes decimal text and turns
/// it into integer minor units exactly (never through a floating point number).
struct AmountOptions: ParsableArguments {
    @Option(help: "Amount in major units, e.g. 12.50 (at most 2 decimals).") var amount: String?
    @Option(help: "Amount in integer minor units, e.g. 1250.") var amountMinor: Int64?
    @Option(help: "ISO 4217 currency code.") var currency = "EUR"

    func money() throws -> CommandsAPI.Money {
        if let amountMinor { return CommandsAPI.Money(amountMinor: amountMinor, currency: currency) }
        guard let amount else { throw ValidationError("give --amount or --amount-minor") }
        guard let minor = Self.minorUnits(amount) else {
            throw ValidationError("--amount \(amount) is not a decimal with at most 2 decimals within ±92233720368547758.07")
        }
        return CommandsAPI.Money(amountMinor: minor, currency: currency)
    }

    /// The minor units of `text` (`-?[0-9]+(\.[0-9]{1,2})?`), or nil when it is not such a
    /// decimal or its minor units do not fit an int64: every step checks for overflow.
    static func minorUnits(_ text: String) -> Int64? {
        let negative = text.hasPrefix("-")
        let parts = (negative ? String(text.dropFirst()) : text).split(separator: ".", omittingEmptySubsequences: false)
        let isDigits = { (part: Substring) in !part.isEmpty && part.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } }
        guard (1...2).contains(parts.count), isDigits(parts[0]), let whole = Int64(parts[0]) else { return nil }
        var cents: Int64 = 0
        if parts.count == 2 {
            guard (1...2).contains(parts[1].count), isDigits(parts[1]), let fraction = Int64(parts[1]) else { return nil }
            cents = parts[1].count == 1 ? fraction * 10 : fraction
        }
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: 100)
        let (magnitude, overflow2) = scaled.addingReportingOverflow(cents)
        guard !overflow, !overflow2 else { return nil }
        return negative ? -magnitude : magnitude
    }
}

struct Accounts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bank accounts: commands (open, deposit, withdraw, close) and queries (get, list, find, history, watch).",
        subcommands: [Open.self, Deposit.self, Withdraw.self, Close.self, Get.self, List.self, Find.self, History.self, Watch.self])

    /// A deposit or a withdrawal: the same request shape, another method.
    static func move(_ connection: CommandServiceConnection, withdraw: Bool, id: String, amount: AmountOptions, expectedVersion: Int64?) async throws
    {
        try await reporting {
            let accounts = CommandsAPI.BankAccounts.Client(try connection.client())
            let money = try amount.money()
            let result =
                withdraw
                ? try await accounts.withdrawFunds(
                    .init(accountId: id, amount: money, commandId: connection.commandId, expectedVersion: expectedVersion),
                    options: connection.options)
                : try await accounts.depositFunds(
                    .init(accountId: id, amount: money, commandId: connection.commandId, expectedVersion: expectedVersion),
                    options: connection.options)
            connection.show(result)
        }
    }

    struct Open: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open an account.")
        @OptionGroup var connection: CommandServiceConnection
        @Option(help: "The account id (generated when absent).") var id: String?
        @Option(help: "The holder's name.") var holder: String
        @Option(help: "SAVINGS or CURRENT.") var type = "CURRENT"
        @OptionGroup var opening: AmountOptions

        func run() async throws {
            try await reporting {
                guard let type = CommandsAPI.AccountType(rawValue: type.uppercased()) else {
                    throw ValidationError("--type must be SAVINGS or CURRENT")
                }
                var balance = opening
                if balance.amount == nil && balance.amountMinor == nil { balance.amountMinor = 0 }
                let result = try await CommandsAPI.BankAccounts.Client(try connection.client()).openAccount(
                    .init(accountId: id, holder: holder, accountType: type, openingBalance: try balance.money(), commandId: connection.commandId),
                    options: connection.options)
                connection.show(result)
            }
        }
    }

    struct Deposit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deposit into an account.")
        @OptionGroup var connection: CommandServiceConnection
        @Argument(help: "The account id.") var id: String
        @OptionGroup var amount: AmountOptions
        @Option(help: "Refuse (ABORTED) unless the account is at this version.") var expectedVersion: Int64?

        func run() async throws {
            try await Accounts.move(connection, withdraw: false, id: id, amount: amount, expectedVersion: expectedVersion)
        }
    }

    struct Withdraw: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Withdraw from an account (never more than its balance).")
        @OptionGroup var connection: CommandServiceConnection
        @Argument(help: "The account id.") var id: String
        @OptionGroup var amount: AmountOptions
        @Option(help: "Refuse (ABORTED) unless the account is at this version.") var expectedVersion: Int64?

        func run() async throws {
            try await Accounts.move(connection, withdraw: true, id: id, amount: amount, expectedVersion: expectedVersion)
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close an account.")
        @OptionGroup var connection: CommandServiceConnection
        @Argument(help: "The account id.") var id: String
        @Option(help: "Refuse (ABORTED) unless the account is at this version.") var expectedVersion: Int64?

        func run() async throws {
            try await reporting {
                let result = try await CommandsAPI.BankAccounts.Client(try connection.client()).closeAccount(
                    .init(accountId: id, commandId: connection.commandId, expectedVersion: expectedVersion), options: connection.options)
                connection.show(result)
            }
        }
    }
}

struct Orders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Orders: place (command), get and list (queries).", subcommands: [Place.self, Get.self, List.self])

    struct Place: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Place an order (published on the OnNewOrder topic).")
        @OptionGroup var connection: CommandServiceConnection
        @Option(help: "The order id (generated when absent).") var id: String?
        @Option var email: String
        @Option var firstName: String
        @Option var lastName: String
        @Option var description: String
        @Option var quantity: Int

        func run() async throws {
            try await reporting {
                let result = try await CommandsAPI.Orders.Client(try connection.client()).placeOrder(
                    .init(
                        orderId: id, customer: .init(email: email, firstName: firstName, lastName: lastName), description: description,
                        quantity: quantity, commandId: connection.commandId),
                    options: connection.options)
                connection.show(result)
            }
        }
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the CommandService's event store: a stream, everything, the relay's status.",
        subcommands: [Stream.self, All.self, Status.self])

    static func line(_ event: CommandsAPI.StoredEvent) -> String {
        "\(event.position)  \(event.recordedAt)  \(event.streamId)@\(event.streamVersion)  \(event.type)  "
            + String(decoding: event.data.bytes, as: UTF8.self)
    }

    struct Stream: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The events of one stream, e.g. BankAccount-acct-1.")
        @OptionGroup var connection: CommandServiceConnection
        @Argument var streamId: String
        @Option var fromVersion: Int64 = 1

        func run() async throws {
            try await reporting {
                let store = CommandsAPI.EventStore.Client(try connection.client())
                var from = fromVersion
                while true {
                    let page = try await store.readStream(.init(streamId: streamId, fromVersion: from, maxCount: 1000), options: connection.options)
                    for event in page.events { Connection.show(event, json: connection.json) { Events.line(event) } }
                    if page.endOfStream || page.events.isEmpty { break }
                    from = page.nextVersion
                }
            }
        }
    }

    struct All: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every event in global order; --follow keeps printing new ones.")
        @OptionGroup var connection: CommandServiceConnection
        @Option var fromPosition: Int64 = 1
        @Flag(help: "Keep following new events until interrupted.") var follow = false

        func run() async throws {
            try await reporting {
                let store = CommandsAPI.EventStore.Client(try connection.client())
                if follow {
                    try await store.subscribeAll(.init(fromPosition: fromPosition), options: CallOptions()) { pages in
                        for try await page in pages {
                            for event in page.events { Connection.show(event, json: connection.json) { Events.line(event) } }
                        }
                    }
                    return
                }
                var from = fromPosition
                while true {
                    let page = try await store.readAll(.init(fromPosition: from, maxCount: 1000), options: connection.options)
                    for event in page.events { Connection.show(event, json: connection.json) { Events.line(event) } }
                    if page.events.isEmpty { break }
                    from = page.nextPosition
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The store's head position and how far the relay has published.")
        @OptionGroup var connection: CommandServiceConnection

        func run() async throws {
            try await reporting {
                let status = try await CommandsAPI.EventStore.Client(try connection.client()).getStatus(.init(), options: connection.options)
                Connection.show(status, json: connection.json) {
                    "head \(status.headPosition)  published \(status.publishedPosition)  broker "
                        + (status.brokerConnected ? "connected" : "unreachable" + (status.lastError.map { ": \($0)" } ?? ""))
                        + (status.writeRefusal.map { "\nAPPENDS REFUSED (DATA_LOSS): \($0)" } ?? "")
                }
            }
        }
    }
}

/// `cqrs verify`: the CommandService checks its whole event store (EventStore/Verify).
struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Check the CommandService's whole event store: SQLite's integrity check, every event's checksum, gap-free positions and stream versions.",
        discussion:
            "Progress goes to stderr. Exit status 0 when the store is sound, 15 (DATA_LOSS) when it found problems (listed), else the failed call's status."
    )
    @OptionGroup var connection: CommandServiceConnection
    @Option(help: "Events checked per progress report (1-10000).") var pageSize: Int?

    func run() async throws {
        try await reporting {
            let last = try await CommandsAPI.EventStore.Client(try connection.client()).verify(.init(pageSize: pageSize), options: CallOptions()) {
                stream in
                var last: CommandsAPI.VerifyProgress?
                for try await progress in stream {
                    last = progress
                    if connection.json {
                        Connection.show(progress, json: true) { "" }
                    } else if !progress.done {
                        ProgressLine.show(
                            "checked \(progress.eventsChecked) events (position \(progress.headPosition)), \(progress.problemCount) problems")
                    }
                }
                return last
            }
            guard let result = last, result.done else { throw RPCError(code: .unavailable, message: "the verification ended without its result") }
            if !connection.json {
                ProgressLine.clear()
                print(
                    "checked \(result.eventsChecked) events in \(result.streams) streams up to position \(result.headPosition): "
                        + (result.problemCount == 0 ? "no problems" : "\(result.problemCount) problems"))
                for problem in result.problems { print("  - \(problem)") }
                if let refusal = result.writeRefusal { print("appends are refused: \(refusal)") }
            }
            if result.problemCount > 0 || result.writeRefusal != nil { throw ExitCode(Int32(StatusCode.dataLoss.rawValue)) }
        }
    }
}
