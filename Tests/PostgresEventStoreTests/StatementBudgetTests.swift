import Testing

@testable import PostgresEventStore

/// How long a batch's statements may run (see `PostgresEventStore.statementBudget`).
@Suite struct StatementBudgetTests {
    @Test func aBatchIsBoundedByItsLatestDeadlineAndOnlyWhenEveryAppendHasOne() {
        let now = ContinuousClock.now
        let ceiling = Duration.seconds(30)
        #expect(
            PostgresEventStore.statementBudget([now + .milliseconds(200), now + .milliseconds(900)], now: now, ceiling: ceiling) == .milliseconds(900)
        )
        #expect(PostgresEventStore.statementBudget([now + .milliseconds(200), nil], now: now, ceiling: ceiling) == nil)
        #expect(PostgresEventStore.statementBudget([now + .seconds(60)], now: now, ceiling: ceiling) == ceiling)
        #expect(PostgresEventStore.statementBudget([now - .seconds(1)], now: now, ceiling: ceiling) == .milliseconds(1))
        #expect(PostgresEventStore.statementBudget([], now: now, ceiling: ceiling) == nil)
    }
}
