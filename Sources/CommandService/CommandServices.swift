import CommandHandling
import Contracts
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

    func send<C: AggregateCommand>(_ command: C, commandId: String?, expectedVersion: Int64?, context: ServerContext) async throws
        -> CommandsAPI.CommandResult
    {
        try await withCommandStatus {
            let correlationId = context.metadata["correlation-id"] ?? context.requestID ?? newId()
            let commandContext = CommandContext(
                commandId: commandId ?? newId(), correlationId: correlationId, expectedVersion: expectedVersion, logger: context.baseLogger,
                logMetadata: context.logMetadata)
            let result = try await mediator.send(command, context: commandContext)
            return CommandsAPI.CommandResult(
                aggregateId: result.aggregateId, streamId: result.streamId, version: result.version, position: result.position,
                duplicate: result.duplicate)
        }
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
        return try await gateway.send(command, commandId: request.commandId, expectedVersion: nil, context: context)
    }

    public func depositFunds(_ request: CommandsAPI.DepositFundsRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        try await gateway.send(
            DepositFunds(accountId: request.accountId, amount: Money(request.amount)), commandId: request.commandId,
            expectedVersion: request.expectedVersion, context: context)
    }

    public func withdrawFunds(_ request: CommandsAPI.WithdrawFundsRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        try await gateway.send(
            WithdrawFunds(accountId: request.accountId, amount: Money(request.amount)), commandId: request.commandId,
            expectedVersion: request.expectedVersion, context: context)
    }

    public func closeAccount(_ request: CommandsAPI.CloseAccountRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        try await gateway.send(
            CloseAccount(accountId: request.accountId), commandId: request.commandId, expectedVersion: request.expectedVersion, context: context)
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
        return try await gateway.send(command, commandId: request.commandId, expectedVersion: nil, context: context)
    }
}
