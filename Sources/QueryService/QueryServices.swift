import Contracts
import Domain
import RPCCore
import ReadModels

/// cqrs.queries.v1.Accounts over the read models.
public struct AccountsService: QueriesAPI.Accounts.ServiceProtocol {
    let store: ReadModelStore

    public init(store: ReadModelStore) { self.store = store }

    public func getAccount(_ request: QueriesAPI.GetAccountRequest, context: ServerContext) async throws -> QueriesAPI.Account {
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context, streamId: BankAccount.streamId(request.accountId))
        let id = request.accountId
        guard let row = try await store.reading({ try $0.account(id) }) else { throw QueryCalls.notFound("no account \(id)") }
        return QueryCalls.account(row)
    }

    public func listAccounts(_ request: QueriesAPI.ListAccountsRequest, context: ServerContext) async throws -> QueriesAPI.AccountPage {
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context)
        let (after, limit) = (try QueryCalls.key(fromToken: request.pageToken), try QueryCalls.pageSize(request.pageSize))
        let page = try await store.reading { try $0.accounts(after: after, limit: limit) }
        return QueriesAPI.AccountPage(accounts: page.rows.map(QueryCalls.account), nextPageToken: QueryCalls.nextToken(page, \.accountId))
    }

    public func findAccounts(_ request: QueriesAPI.FindAccountsRequest, context: ServerContext) async throws -> QueriesAPI.AccountPage {
        if let above = request.balanceGreaterThan, let below = request.balanceLessThan, above.currency != below.currency {
            throw RPCError.invalidArgument(
                "balanceGreaterThan and balanceLessThan name different currencies",
                violations: [FieldViolation(field: "balanceLessThan.currency", description: "must be \(above.currency), as balanceGreaterThan's")])
        }
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context)
        let filter = AccountFilter(
            holder: request.holder, balanceAbove: request.balanceGreaterThan.map { ($0.currency, $0.amountMinor) },
            balanceBelow: request.balanceLessThan.map { ($0.currency, $0.amountMinor) }, status: request.status?.rawValue)
        let (after, limit) = (try QueryCalls.key(fromToken: request.pageToken), try QueryCalls.pageSize(request.pageSize))
        let page = try await store.reading { try $0.accounts(matching: filter, after: after, limit: limit) }
        return QueriesAPI.AccountPage(accounts: page.rows.map(QueryCalls.account), nextPageToken: QueryCalls.nextToken(page, \.accountId))
    }

    public func getAccountHistory(_ request: QueriesAPI.GetAccountHistoryRequest, context: ServerContext) async throws -> QueriesAPI.AccountHistory {
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context, streamId: BankAccount.streamId(request.accountId))
        let (id, after, limit) = (
            request.accountId, try QueryCalls.numericKey(fromToken: request.pageToken), try QueryCalls.pageSize(request.pageSize)
        )
        guard try await store.reading({ try $0.account(id) }) != nil else { throw QueryCalls.notFound("no account \(id)") }
        let page = try await store.reading { try $0.transactions(of: id, afterVersion: after, limit: limit) }
        return QueriesAPI.AccountHistory(
            accountId: request.accountId,
            transactions: page.rows.map { row in
                QueriesAPI.Transaction(
                    version: row.version, kind: QueriesAPI.TransactionKind(rawValue: row.kind) ?? .deposit,
                    amount: CommandsAPI.Money(amountMinor: row.amountMinor, currency: row.currency),
                    balanceAfter: CommandsAPI.Money(amountMinor: row.balanceAfter, currency: row.currency), at: QueryCalls.time(row.at),
                    position: row.position)
            },
            nextPageToken: QueryCalls.nextToken(page) { String($0.version) })
    }

    public func watchAccount(
        _ request: QueriesAPI.WatchAccountRequest, responses: MessageWriter<QueriesAPI.Account>, context: ServerContext
    ) async throws {
        // Subscribe before the first read, so no change between the two is missed.
        let nudges = store.watch(stream: BankAccount.streamId(request.accountId))
        var lastVersion: Int64 = 0
        let id = request.accountId
        func send() async throws {
            guard let row = try await store.reading({ try $0.account(id) }), row.version != lastVersion else { return }
            lastVersion = row.version
            try await responses.write(QueryCalls.account(row))
        }
        try await send()
        for await _ in nudges {
            try await send()
        }
    }
}

/// cqrs.queries.v1.Orders over the read models.
public struct OrdersService: QueriesAPI.Orders.ServiceProtocol {
    let store: ReadModelStore

    public init(store: ReadModelStore) { self.store = store }

    public func getOrder(_ request: QueriesAPI.GetOrderRequest, context: ServerContext) async throws -> QueriesAPI.Order {
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context, streamId: Order.streamId(request.orderId))
        let id = request.orderId
        guard let row = try await store.reading({ try $0.order(id) }) else { throw QueryCalls.notFound("no order \(id)") }
        return QueryCalls.order(row)
    }

    public func listOrders(_ request: QueriesAPI.ListOrdersRequest, context: ServerContext) async throws -> QueriesAPI.OrderPage {
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context)
        let (email, after, limit) = (
            request.customerEmail, try QueryCalls.numericKey(fromToken: request.pageToken), try QueryCalls.pageSize(request.pageSize)
        )
        let page = try await store.reading { try $0.orders(customerEmail: email, afterPosition: after, limit: limit) }
        return QueriesAPI.OrderPage(orders: page.rows.map(QueryCalls.order), nextPageToken: QueryCalls.nextToken(page) { String($0.position) })
    }
}

/// cqrs.queries.v1.Customers over the read models.
public struct CustomersService: QueriesAPI.Customers.ServiceProtocol {
    let store: ReadModelStore
    /// Most orders returned with one customer.
    static let maxOrders = 1000

    public init(store: ReadModelStore) { self.store = store }

    public func listCustomers(_ request: QueriesAPI.ListCustomersRequest, context: ServerContext) async throws -> QueriesAPI.CustomerPage {
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context)
        let (after, limit) = (try QueryCalls.key(fromToken: request.pageToken), try QueryCalls.pageSize(request.pageSize))
        let page = try await store.reading { try $0.customers(after: after, limit: limit) }
        return QueriesAPI.CustomerPage(
            customers: page.rows.map(QueryCalls.customer), nextPageToken: QueryCalls.nextToken(page) { $0.email.lowercased() })
    }

    public func getCustomer(_ request: QueriesAPI.GetCustomerRequest, context: ServerContext) async throws -> QueriesAPI.CustomerDetail {
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context)
        let (email, limit) = (request.email, Self.maxOrders)
        guard let row = try await store.reading({ try $0.customer(email) }) else { throw QueryCalls.notFound("no customer \(email)") }
        let orders = try await store.reading { try $0.orders(customerEmail: email, afterPosition: 0, limit: limit) }
        return QueriesAPI.CustomerDetail(customer: QueryCalls.customer(row), orders: orders.rows.map(QueryCalls.order))
    }
}
