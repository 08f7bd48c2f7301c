import Contracts
import Testing

@testable import CommandService

/// A stored command's digest is compared with the digests of its retries, which later builds
/// compute: the bytes hashed must not change from one build to the next.
@Suite struct CommandDigestTests {
    static let method = "cqrs.commands.v1.BankAccounts/DepositFunds"

    @Test func aDigestIsSHA256OfTheMethodANewlineAndTheRequestsJSONWithoutItsCommandId() {
        let request = CommandsAPI.DepositFundsRequest(accountId: "A-1", amount: .init(amountMinor: 5, currency: "EUR"), commandId: "c-1")
        // Python: sha256(b'cqrs.commands.v1.BankAccounts/DepositFunds\n'
        //     b'{"accountId":"A-1","amount":{"amountMinor":"5","currency":"EUR"}}')  (int64 as a string)
        #expect(CommandDigest.of(request, method: Self.method) == "f361578149c24d0aa2df98ffc23d3d585273b905bc7d26e5674164865a9907bb")
    }

    @Test func theCommandIdIsNotPartOfWhatItNames() {
        let request = CommandsAPI.DepositFundsRequest(accountId: "A-1", amount: .init(amountMinor: 5, currency: "EUR"), commandId: "c-1")
        var retried = request
        retried.commandId = "c-2"
        #expect(CommandDigest.of(retried, method: Self.method) == CommandDigest.of(request, method: Self.method))
        var other = request
        other.amount.amountMinor = 6
        #expect(CommandDigest.of(other, method: Self.method) != CommandDigest.of(request, method: Self.method))
    }

    @Test func onlyARequestNamedByItsCallerIsDigested() {
        var request = CommandsAPI.DepositFundsRequest(accountId: "A-1", amount: .init(amountMinor: 5, currency: "EUR"), commandId: "c-1")
        #expect(CommandDigest.ifNamed(request, method: Self.method) == CommandDigest.of(request, method: Self.method))
        request.commandId = nil
        #expect(CommandDigest.ifNamed(request, method: Self.method) == nil)
    }
}
