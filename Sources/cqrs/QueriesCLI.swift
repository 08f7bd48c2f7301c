import ArgumentParser
import Contracts
import Foundation
import RPCCore
import RPCHosting
import RPCTransportTCP

typealias QueriesAPI = CqrsQueriesV1

/// Options of every command that talks to the QueryService.
struct QueryServiceConnection: ParsableArguments {
    @Option(help: "QueryService address host:port. Env: CQRS_QUERIES.") var queries: String?
    @Option(help: "Deadline of each call, ms.") var deadline: Int = 10_000
    @Flag(help: "One JSON object per line instead of human-readable text.") var json = false
    @OptionGroup var security: ClientSecurityOptions

    func client() throws -> RPCClient {
        try security.client(address: ServiceAddress.queries.resolve(queries))
    }

    var options: CallOptions { CallOptions(timeout: .milliseconds(deadline)) }

    func show(_ message: some JSONMessage, _ human: () -> String) { Connection.show(message, json: json, human) }
}

/// Read your writes from the command line: `--min-position` takes the position a command printed.
struct ReadYourWrites: ParsableArguments {
    @Option(help: "Wait until the read models have applied this global position (a command's result), within the deadline.")
    var minPosition: Int64?
}

struct Paging: ParsableArguments {
    @Option(help: "Items per page (1-1000).") var pageSize: Int?
    @Option(help: "The next-page token a previous page printed.") var pageToken: String?
}

/// `12.50 EUR` from minor units, exactly.
func format(_ money: CqrsCommandsV1.Money) -> String {
    let sign = money.amountMinor < 0 ? "-" : ""
    let magnitude = money.amountMinor.magnitude
    let cents = magnitude % 100
    return "\(sign)\(magnitude / 100).\(cents < 10 ? "0" : "")\(cents) \(money.currency)"
}

func accountTable(_ accounts: [QueriesAPI.Account]) -> String {
    table(
        [["ID", "HOLDER", "TYPE", "BALANCE", "STATUS", "VERSION", "UPDATED"]]
            + accounts.map {
                [$0.accountId, $0.holder, $0.accountType.rawValue, format($0.balance), $0.status.rawValue, String($0.version), $0.updatedAt]
            })
}

func orderTable(_ orders: [QueriesAPI.Order]) -> String {
    table(
        [["ID", "CUSTOMER", "DESCRIPTION", "QTY", "CREATED"]]
            + orders.map { [$0.orderId, $0.customer.email, $0.description, String($0.quantity), $0.createdAt] })
}

func nextPage(_ token: String?) -> String { token.map { "\nnext page: --page-token \($0)" } ?? "" }

extension Accounts {
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one account (query).")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @Argument(help: "The account id.") var id: String

        func run() async throws {
            try await reporting {
                let account = try await QueriesAPI.Accounts.Client(try connection.client()).getAccount(
                    .init(accountId: id, minPosition: consistency.minPosition), options: connection.options)
                connection.show(account) { accountTable([account]) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts, open and closed (query).")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @OptionGroup var paging: Paging

        func run() async throws {
            try await reporting {
                let page = try await QueriesAPI.Accounts.Client(try connection.client()).listAccounts(
                    .init(pageSize: paging.pageSize, pageToken: paging.pageToken, minPosition: consistency.minPosition), options: connection.options)
                connection.show(page) { accountTable(page.accounts) + nextPage(page.nextPageToken) }
            }
        }
    }

    struct Find: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find accounts by holder, by balance above or below an amount, and by status (query).",
            discussion: "Balances compare within --currency: accounts in other currencies never match.")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @OptionGroup var paging: Paging
        @Option(help: "The holder's name (case-insensitive).") var holder: String?
        @Option(help: "Balance strictly greater than this amount, e.g. 100.00.") var balanceAbove: String?
        @Option(help: "Balance strictly less than this amount.") var balanceBelow: String?
        @Option(help: "ISO 4217 currency code of the balance filters.") var currency = "EUR"
        @Option(help: "OPEN or CLOSED.") var status: String?

        func run() async throws {
            try await reporting {
                func money(_ text: String?, _ flag: String) throws -> CqrsCommandsV1.Money? {
                    guard let text else { return nil }
                    guard let minor = AmountOptions.minorUnits(text) else {
                        throw ValidationError("\(flag) \(text) is not a decimal with at most 2 decimals")
                    }
                    return CqrsCommandsV1.Money(amountMinor: minor, currency: currency)
                }
                var accountStatus: QueriesAPI.AccountStatus?
                if let status {
                    guard let parsed = QueriesAPI.AccountStatus(rawValue: status.uppercased()) else {
                        throw ValidationError("--status must be OPEN or CLOSED")
                    }
                    accountStatus = parsed
                }
                let page = try await QueriesAPI.Accounts.Client(try connection.client()).findAccounts(
                    .init(
                        holder: holder, balanceGreaterThan: try money(balanceAbove, "--balance-above"),
                        balanceLessThan: try money(balanceBelow, "--balance-below"), status: accountStatus, pageSize: paging.pageSize,
                        pageToken: paging.pageToken, minPosition: consistency.minPosition), options: connection.options)
                connection.show(page) { accountTable(page.accounts) + nextPage(page.nextPageToken) }
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "An account's transactions with the running balance (query).")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @OptionGroup var paging: Paging
        @Argument(help: "The account id.") var id: String

        func run() async throws {
            try await reporting {
                let history = try await QueriesAPI.Accounts.Client(try connection.client()).getAccountHistory(
                    .init(accountId: id, pageSize: paging.pageSize, pageToken: paging.pageToken, minPosition: consistency.minPosition),
                    options: connection.options)
                connection.show(history) {
                    table(
                        [["VERSION", "KIND", "AMOUNT", "BALANCE", "AT"]]
                            + history.transactions.map { [String($0.version), $0.kind.rawValue, format($0.amount), format($0.balanceAfter), $0.at] })
                        + nextPage(history.nextPageToken)
                }
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an account now and after each change, until Ctrl-C (query).")
        @OptionGroup var connection: QueryServiceConnection
        @Argument(help: "The account id.") var id: String
        @Option(help: "Stop after this many updates (default: never).") var count: Int?

        func run() async throws {
            try await reporting {
                let json = connection.json
                let limit = count
                try await QueriesAPI.Accounts.Client(try connection.client()).watchAccount(.init(accountId: id)) { stream in
                    var seen = 0
                    for try await account in stream {
                        Connection.show(account, json: json) {
                            "\(account.accountId) v\(account.version) \(account.status.rawValue) \(format(account.balance)) at \(account.updatedAt)"
                        }
                        seen += 1
                        if let limit, seen >= limit { return }
                    }
                }
            }
        }
    }
}

extension Orders {
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one order (query).")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @Argument(help: "The order id.") var id: String

        func run() async throws {
            try await reporting {
                let order = try await QueriesAPI.Orders.Client(try connection.client()).getOrder(
                    .init(orderId: id, minPosition: consistency.minPosition), options: connection.options)
                connection.show(order) { orderTable([order]) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List orders, oldest first, optionally of one customer (query).")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @OptionGroup var paging: Paging
        @Option(help: "Only this customer's orders (email).") var customer: String?

        func run() async throws {
            try await reporting {
                let page = try await QueriesAPI.Orders.Client(try connection.client()).listOrders(
                    .init(customerEmail: customer, pageSize: paging.pageSize, pageToken: paging.pageToken, minPosition: consistency.minPosition),
                    options: connection.options)
                connection.show(page) { orderTable(page.orders) + nextPage(page.nextPageToken) }
            }
        }
    }
}

struct Customers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Customers, identified by email (query).", subcommands: [List.self, Get.self])

    static func customerTable(_ customers: [QueriesAPI.CustomerSummary]) -> String {
        table(
            [["EMAIL", "NAME", "ORDERS", "LAST ORDER"]]
                + customers.map { [$0.email, "\($0.firstName) \($0.lastName)", String($0.orderCount), $0.lastOrderAt] })
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List customers with their order counts.")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @OptionGroup var paging: Paging

        func run() async throws {
            try await reporting {
                let page = try await QueriesAPI.Customers.Client(try connection.client()).listCustomers(
                    .init(pageSize: paging.pageSize, pageToken: paging.pageToken, minPosition: consistency.minPosition), options: connection.options)
                connection.show(page) { Customers.customerTable(page.customers) + nextPage(page.nextPageToken) }
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a customer with their orders.")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @Argument(help: "The customer's email.") var email: String

        func run() async throws {
            try await reporting {
                let detail = try await QueriesAPI.Customers.Client(try connection.client()).getCustomer(
                    .init(email: email, minPosition: consistency.minPosition), options: connection.options)
                connection.show(detail) { Customers.customerTable([detail.customer]) + "\n\n" + orderTable(detail.orders) }
            }
        }
    }
}

struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild the read models from the CommandService's history, with a progress bar.",
        discussion: "The current read models keep answering until the rebuilt ones replace them in one transaction.")
    @OptionGroup var connection: QueryServiceConnection
    @Option(help: "Events per page read from the CommandService (1-10000).") var pageSize: Int?

    func run() async throws {
        try await reporting {
            let json = connection.json
            try await QueriesAPI.ReadModels.Client(try connection.client()).rebuild(.init(pageSize: pageSize)) { stream in
                for try await progress in stream {
                    if json {
                        Connection.show(progress, json: true) { "" }
                        continue
                    }
                    if progress.done {
                        ProgressLine.clear()
                        print(
                            "rebuilt \(progress.eventsApplied) events in \(progress.elapsedMs) ms (\(progress.eventsPerSecond) events/s): "
                                + "\(progress.accounts ?? 0) accounts, \(progress.orders ?? 0) orders, \(progress.customers ?? 0) customers, "
                                + "\(progress.parkedEvents ?? 0) parked")
                    } else {
                        ProgressLine.show(Rebuild.bar(progress))
                    }
                }
            }
        }
    }

    /// `[#########...........]  45% 450000/1000000 events  98000 events/s  ETA 6s`; once the
    /// history is in, what the rebuild is doing instead (an index build has nothing to count).
    static func bar(_ progress: QueriesAPI.RebuildProgress) -> String {
        switch progress.phase {
        case .indexing: return "\(progress.eventsApplied) events in; building the new tables' indexes (\(progress.elapsedMs / 1000)s elapsed)"
        case .swapping: return "\(progress.eventsApplied) events in; applying the last events and swapping the tables"
        case .loading, nil: break
        }
        let total = max(progress.headPosition, progress.eventsApplied, 1)
        let fraction = Double(progress.eventsApplied) / Double(total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let remaining = total - progress.eventsApplied
        let eta = progress.eventsPerSecond > 0 ? "\(Int(remaining) / progress.eventsPerSecond)s" : "?"
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + "\(Int(fraction * 100))% \(progress.eventsApplied)/\(total) events  \(progress.eventsPerSecond) events/s  ETA \(eta)"
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The read models' applied position, per-partition lag, parked events and counts.")
    @OptionGroup var connection: QueryServiceConnection

    func run() async throws {
        try await reporting {
            let status = try await QueriesAPI.ReadModels.Client(try connection.client()).getStatus(.init(), options: connection.options)
            connection.show(status) {
                var text =
                    "applied position \(status.appliedPosition); \(status.accounts) accounts, \(status.orders) orders, "
                    + "\(status.customers) customers; \(status.parkedEvents) parked"
                    + (status.rebuilding ? "; rebuilding" : "") + (status.brokerConnected ? "" : "; broker not reachable")
                if let rows = status.rows, !rows.isEmpty {
                    text += "\nrows: " + rows.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                }
                if let error = status.lastError { text += "\nlast error: \(error)" }
                text +=
                    "\n\n"
                    + table(
                        [["TOPIC", "PARTITION", "APPLIED", "HIGH WATERMARK", "LAG"]]
                            + status.partitions.map {
                                [
                                    $0.topic, String($0.partition), String($0.appliedOffset), $0.highWatermark.map(String.init) ?? "-",
                                    $0.lag.map(String.init) ?? "-",
                                ]
                            })
                return text
            }
        }
    }
}

struct Parked: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Events the projection set aside: list them, retry them, or skip them.", subcommands: [List.self, Retry.self, Skip.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List parked events with their errors.")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var paging: Paging

        func run() async throws {
            try await reporting {
                let page = try await QueriesAPI.ReadModels.Client(try connection.client()).listParked(
                    .init(pageSize: paging.pageSize, pageToken: paging.pageToken), options: connection.options)
                connection.show(page) {
                    table(
                        [["ID", "STATE", "STREAM", "VERSION", "TYPE", "TOPIC/PARTITION@OFFSET", "ATTEMPTS", "ERROR"]]
                            + page.events.map {
                                [
                                    String($0.id), $0.state.rawValue, $0.streamId, String($0.streamVersion), $0.eventType,
                                    "\($0.topic)/\($0.partition)@\($0.offset)",
                                    String($0.attempts), $0.error,
                                ]
                            }) + nextPage(page.nextPageToken)
                }
            }
        }
    }

    struct Selection: ParsableArguments {
        @Argument(help: "Ids of parked events (see `cqrs parked list`).") var ids: [Int64] = []
        @Flag(help: "Every failed event.") var all = false

        func validate() throws {
            if all == !ids.isEmpty { throw ValidationError("give ids or --all") }
        }

        var message: QueriesAPI.ParkedSelection { QueriesAPI.ParkedSelection(ids: all ? nil : ids, all: all ? true : nil) }
    }

    static func show(_ result: QueriesAPI.ParkedResult, _ connection: QueryServiceConnection) {
        connection.show(result) { "applied \(result.applied), skipped \(result.skipped), still parked \(result.stillParked)" }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply failed events again; the events waiting behind them follow.")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var selection: Selection

        func run() async throws {
            try await reporting {
                Parked.show(
                    try await QueriesAPI.ReadModels.Client(try connection.client()).retryParked(selection.message, options: connection.options),
                    connection)
            }
        }
    }

    struct Skip: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop failed events (their streams move past them); the events waiting behind them follow.")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var selection: Selection

        func run() async throws {
            try await reporting {
                Parked.show(
                    try await QueriesAPI.ReadModels.Client(try connection.client()).skipParked(selection.message, options: connection.options),
                    connection)
            }
        }
    }
}
