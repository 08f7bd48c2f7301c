import Contracts
import Foundation
import RPCCore
import ReadModels
import SQLite
import TracingSupport
import WallTime

public typealias QueriesAPI = CqrsQueriesV1
public typealias CommandsAPI = CqrsCommandsV1

/// What every query method shares: read-your-writes waits, page sizes and page tokens, and rows
/// turned into messages. (The read models' errors carry their own status: see below.)
enum QueryCalls {
    static let defaultPageSize = 100

    /// Read your writes: waits until the read models have applied `minPosition`, for at most
    /// the time left before the call's deadline and the server's cap (`--max-position-wait-ms`),
    /// then refuses with DEADLINE_EXCEEDED naming how far they are.
    ///
    /// An event at or below `minPosition` that is parked (of `streamId`, the stream the query
    /// reads, or of any stream for queries over many) is not in the answer: the call ends with
    /// FAILED_PRECONDITION naming it rather than answer without it.
    static func awaitPosition(
        _ minPosition: Int64?, in store: ReadModelStore, context: ServerContext, streamId: String? = nil
    ) async throws {
        try await waitForPosition(minPosition, in: store, context: context)
        guard let minPosition, let parked = try await store.reading({ try $0.firstParked(atOrBelow: minPosition, streamId: streamId) }) else {
            return
        }
        throw RPCError(
            code: .failedPrecondition,
            message:
                "the event at position \(parked.position) (\(parked.streamId) version \(parked.streamVersion), \(parked.eventType)) is parked \(parked.state) as parked event \(parked.id) (\(parked.error)), so the read models do not hold it: retry or skip it (cqrs parked), then ask again"
        )
    }

    private static func waitForPosition(_ minPosition: Int64?, in store: ReadModelStore, context: ServerContext) async throws {
        guard let minPosition else { return }
        guard minPosition >= 0 else {
            throw RPCError.invalidArgument(
                "minPosition must be 0 or more", violations: [FieldViolation(field: "minPosition", description: "must be 0 or more")])
        }
        // Without a deadline the wait is bounded anyway (the server's cap): a client must not
        // hang forever. With one, the wait ends a little before it (a tenth of what is left, 2 to
        // 50 ms) so that this answer, which says how far the read models are, reaches the client
        // ahead of the transport's own DEADLINE_EXCEEDED. A 2 ms margin lost that race on a busy
        // CI machine.
        var timeout = store.options.maxPositionWait
        if let deadline = context.deadline {
            let left = deadline - .now
            timeout = min(timeout, left - min(max(left / 10, .milliseconds(2)), .milliseconds(50)))
        }
        guard store.handledPosition < minPosition else { return }
        let reached = await Traced.span("wait for position", attributes: [("cqrs.min_position", String(minPosition))]) {
            await store.waitForPosition(minPosition, timeout: max(timeout, .zero))
        }
        if reached { return }
        throw RPCError(
            code: .deadlineExceeded,
            message:
                "the read models have applied events through position \(store.handledPosition), not yet \(minPosition) (waited \(timeout.wholeMilliseconds) ms; the server waits at most \(store.options.maxPositionWait.wholeMilliseconds) ms)"
        )
    }

    static func pageSize(_ value: Int?) throws -> Int {
        let size = value ?? defaultPageSize
        guard (1...1000).contains(size) else {
            throw RPCError.invalidArgument("pageSize is 1 to 1000", violations: [FieldViolation(field: "pageSize", description: "must be 1 to 1000")])
        }
        return size
    }

    /// Page tokens are opaque to clients: the last key of the previous page, base64url-encoded.
    static func token(_ key: String) -> String {
        Data(key.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func key(fromToken token: String?) throws -> String? {
        guard let token else { return nil }
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let key = String(data: data, encoding: .utf8) else {
            throw RPCError.invalidArgument(
                "pageToken is not one this service gave",
                violations: [FieldViolation(field: "pageToken", description: "not a token from a previous page")])
        }
        return key
    }

    static func numericKey(fromToken token: String?) throws -> Int64 {
        guard let key = try key(fromToken: token) else { return 0 }
        guard let number = Int64(key) else {
            throw RPCError.invalidArgument(
                "pageToken is not one this service gave",
                violations: [FieldViolation(field: "pageToken", description: "not a token from a previous page")])
        }
        return number
    }

    static func nextToken<Row>(_ page: Page<Row>, _ key: (Row) -> String) -> String? {
        guard page.hasMore, let last = page.rows.last else { return nil }
        return token(key(last))
    }

    static func time(_ milliseconds: Int64) -> String { iso8601(milliseconds: milliseconds) }

    static func account(_ row: AccountRow) -> QueriesAPI.Account {
        QueriesAPI.Account(
            accountId: row.accountId, holder: row.holder, accountType: CommandsAPI.AccountType(rawValue: row.accountType) ?? .current,
            balance: CommandsAPI.Money(amountMinor: row.balanceMinor, currency: row.currency),
            status: QueriesAPI.AccountStatus(rawValue: row.status) ?? .open, openedAt: time(row.openedAt), updatedAt: time(row.updatedAt),
            version: row.version, position: row.position)
    }

    static func order(_ row: OrderRow) -> QueriesAPI.Order {
        QueriesAPI.Order(
            orderId: row.orderId, customer: CommandsAPI.Customer(email: row.email, firstName: row.firstName, lastName: row.lastName),
            description: row.description, quantity: row.quantity, createdAt: time(row.createdAt), position: row.position)
    }

    static func customer(_ row: CustomerRow) -> QueriesAPI.CustomerSummary {
        QueriesAPI.CustomerSummary(
            email: row.email, firstName: row.firstName, lastName: row.lastName, orderCount: row.orderCount,
            firstOrderAt: time(row.firstOrderAt), lastOrderAt: time(row.lastOrderAt))
    }

    static func notFound(_ what: String) -> RPCError { RPCError(code: .notFound, message: what) }
}

/// The read models' errors as statuses; handlers just throw them.
extension ReadModelError: RPCErrorConvertible {
    public var rpcError: RPCError {
        switch self {
        case .invalid(let message): RPCError(code: .invalidArgument, message: message)
        case .busy(let message): RPCError(code: .failedPrecondition, message: message)
        case .closed, .unavailable: RPCError(code: .unavailable, message: description)
        }
    }
}

/// A database error that reached a query handler: a full disk is RESOURCE_EXHAUSTED (a
/// resource the operator can free), anything else makes the read models unusable for now.
extension SQLiteError: RPCErrorConvertible {
    public var rpcError: RPCError {
        isFull
            ? RPCError(code: .resourceExhausted, message: "the read models' disk is full: \(message)")
            : RPCError(code: .unavailable, message: "the read models cannot be used: \(self)")
    }
}
