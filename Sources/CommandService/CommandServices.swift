import Checksums
import CommandHandling
import Contracts
import Crypto
import Domain
import EventStore
import Foundation
import RPCCore

public typealias CommandsAPI = CqrsCommandsV1

/// Turns RPC requests into domain commands and sends them through the mediator. Each request's
/// optional `commandId` becomes the idempotency key (one is generated when absent) and the
/// caller's `correlation-id` metadata (else the call's request id) the correlation id.
public struct CommandGateway: Sendable {
    let mediator: Mediator

    public init(mediator: Mediator) { self.mediator = mediator }

    /// Sends `command`, made from `request`, the call of `method`. The request (without its
    /// command id) is what the command id names: its digest goes with the command, so the same id
    /// with anything else is refused (`commandIdReused`) rather than answered with another
    /// command's result. A request without a command id gets a new one and no digest.
    func send<C: AggregateCommand, Request: IdempotentRequest>(
        _ command: C, request: Request, expectedVersion: Int64?, context: ServerContext
    ) async throws -> CommandsAPI.CommandResult {
        if let commandId = request.commandId { try Self.check(commandId: commandId) }
        let correlationId = context.metadata["correlation-id"] ?? context.requestID ?? newId()
        let commandContext = CommandContext(
            commandId: request.commandId ?? newId(), correlationId: correlationId, expectedVersion: expectedVersion,
            commandDigest: CommandDigest.ifNamed(request, method: context.method.fullName),
            logger: context.baseLogger, logMetadata: context.logMetadata)
        let result = try await mediator.send(command, context: commandContext)
        return CommandsAPI.CommandResult(
            aggregateId: result.aggregateId, streamId: result.streamId, version: result.version, position: result.position,
            duplicate: result.duplicate)
    }

    /// The schema's bounds on a command id (1 to 128 characters): an empty id would make every
    /// client that sends one share a single idempotency key.
    static func check(commandId: String) throws {
        let length = commandId.unicodeScalars.count
        guard (1...128).contains(length) else {
            throw RPCError.invalidArgument(
                "commandId must be 1 to 128 characters, not \(length)",
                violations: [FieldViolation(field: "commandId", description: "must be 1 to 128 characters")])
        }
    }
}

/// A command request: it carries the optional command id that names it.
protocol IdempotentRequest: JSONMessage {
    var commandId: String? { get set }
}

extension CommandsAPI.OpenAccountRequest: IdempotentRequest {}
extension CommandsAPI.DepositFundsRequest: IdempotentRequest {}
extension CommandsAPI.WithdrawFundsRequest: IdempotentRequest {}
extension CommandsAPI.CloseAccountRequest: IdempotentRequest {}
extension CommandsAPI.PlaceOrderRequest: IdempotentRequest {}

/// What a command id names: SHA-256 of the method and the request's JSON without its command id
/// (the generated writer prints members in schema order, so equal requests give equal bytes).
enum CommandDigest {
    static func of(_ request: some IdempotentRequest, method: String) -> String {
        var named = request
        named.commandId = nil
        var writer = JSONWriter()
        named.writeJSON(to: &writer)
        var hash = SHA256()
        var name = method
        name.withUTF8 { hash.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        withUnsafeBytes(of: UInt8(ascii: "\n")) { hash.update(bufferPointer: $0) }
        hash.update(data: writer.finish())
        return hash.finalize().withUnsafeBytes { Hex.string($0) }
    }

    /// The digest of a request whose caller named it with a command id; nil for one without,
    /// whose command gets a new id that is never returned, so no retry can send it again and a
    /// digest would guard nothing (hashing is about 5% of a deposit's instructions).
    static func ifNamed(_ request: some IdempotentRequest, method: String) -> String? {
        request.commandId == nil ? nil : of(request, method: method)
    }
}

/// A new command, correlation or aggregate id (time-ordered: see `UUIDv7`).
func newId() -> String { UUIDv7.make() }

extension Money {
    init(_ money: CommandsAPI.Money) { self.init(amountMinor: money.amountMinor, currency: money.currency) }
}

/// cqrs.commands.v1.BankAccounts.
public struct BankAccountsService: CommandsAPI.BankAccounts.ServiceProtocol {
    let gateway: CommandGateway

    public init(gateway: CommandGateway) { self.gateway = gateway }

    public func openAccount(_ request: CommandsAPI.OpenAccountRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        let command = OpenAccount(
            accountId: request.accountId ?? newId(), holder: request.holder,
            accountType: request.accountType == .savings ? .savings : .current, openingBalance: Money(request.openingBalance))
        return try await gateway.send(command, request: request, expectedVersion: nil, context: context)
    }

    public func depositFunds(_ request: CommandsAPI.DepositFundsRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        try await gateway.send(
            DepositFunds(accountId: request.accountId, amount: Money(request.amount)), request: request,
            expectedVersion: request.expectedVersion, context: context)
    }

    public func withdrawFunds(_ request: CommandsAPI.WithdrawFundsRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        try await gateway.send(
            WithdrawFunds(accountId: request.accountId, amount: Money(request.amount)), request: request,
            expectedVersion: request.expectedVersion, context: context)
    }

    public func closeAccount(_ request: CommandsAPI.CloseAccountRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        try await gateway.send(
            CloseAccount(accountId: request.accountId), request: request, expectedVersion: request.expectedVersion, context: context)
    }
}

/// cqrs.commands.v1.Orders.
public struct OrdersService: CommandsAPI.Orders.ServiceProtocol {
    let gateway: CommandGateway

    public init(gateway: CommandGateway) { self.gateway = gateway }

    public func placeOrder(_ request: CommandsAPI.PlaceOrderRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        let customer = Customer(email: request.customer.email, firstName: request.customer.firstName, lastName: request.customer.lastName)
        let command = PlaceOrder(
            orderId: request.orderId ?? newId(), customer: customer, description: request.description, quantity: request.quantity)
        return try await gateway.send(command, request: request, expectedVersion: nil, context: context)
    }
}
