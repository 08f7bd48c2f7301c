import EventStore
import PostgresConnections
import Testing

@testable import PostgresEventStore

/// URLs as users write them, and what never shows of them.
@Suite struct PostgresLocationTests {
    @Test func aFullURLGivesEveryPart() throws {
        let location = try PostgresLocation(
            url: "postgres://ada:s%40cret@db.internal:6543/events?sslmode=require&pool=8&schema=bank&statement_timeout=1500")
        #expect(location.host == "db.internal")
        #expect(location.port == 6543)
        #expect(location.username == "ada")
        #expect(location.password == "s@cret")
        #expect(location.database == "events")
        #expect(location.requireTLS)
        #expect(location.poolSize == 8)
        #expect(location.schema == "bank")
        #expect(location.configuration.options.maximumConnections == 8)
        #expect(location.statementTimeout == .milliseconds(1500))
        #expect(location.configuration.options.additionalStartupParameters.map(\.1) == ["1500"])
    }

    @Test func defaultsFollowPostgreSQLs() throws {
        let location = try PostgresLocation(url: "postgresql://localhost")
        #expect(location.port == 5432)
        #expect(location.username == "postgres")
        #expect(location.database == "postgres")
        #expect(!location.requireTLS)
        #expect(location.schema == nil)
        #expect(location.statementTimeout == .seconds(30))
    }

    @Test func thePasswordNeverShows() throws {
        let url = "postgres://ada:hunter2@db:5432/events"
        #expect(try PostgresLocation(url: url).redacted == "postgres://ada:***@db:5432/events")
        #expect(PostgresLocation.redact("postgres://db/events") == "postgres://db/events")
        for bad in [
            "mysql://ada:hunter2@db/x", "postgres://ada:hunter2@/x", "postgres://ada:hunter2@db/x?sslmode=allow",
            "postgres://ada:hunter2@db/x?pool=0", "postgres://ada:hunter2@db/x?statement_timeout=0",
        ] {
            let error = #expect(throws: PostgresConnectionError.self) { try PostgresLocation(url: bad) }
            #expect(error.map { !"\($0)".contains("hunter2") } == true, "\(bad)")
        }
    }

    @Test(arguments: ["", "Bank", "1bank", "bank-1", "bank;drop", String(repeating: "a", count: 64)])
    func aSchemaNameIsCheckedBeforeItReachesSQL(name: String) {
        #expect(throws: EventStoreError.self) { try Tables(schema: name) }
    }

    @Test func aGoodSchemaNameQualifiesEveryTable() throws {
        let tables = try Tables(schema: "bank_2")
        #expect(tables.events == "bank_2.events")
        #expect(tables.head == "bank_2.head")
    }
}
