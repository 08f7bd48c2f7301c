import Foundation
import Logging
import PostgresNIO
import Testing

@testable import PostgresEventStore

/// `PostgresArrayBind` writes PostgreSQL's binary array format itself: the server must read back
/// exactly the values bound, for every element type, empty arrays and multi-byte text included.
@Suite(.enabled(if: TestPostgres.client != nil, "JFRAME_TEST_POSTGRES_URL is not set"), .timeLimit(.minutes(1)))
struct PostgresArrayBindTests {
    @Test func theServerReadsBackEveryValueBound() async throws {
        let client = try #require(TestPostgres.client)
        let numbers: [Int64] = [0, 1, -1, .max, .min, 1_796_494_062_133]
        let texts = ["", "a", "Ünïcødé ✓ 𝄞", String(repeating: "x", count: 10_000), "with,comma and \"quotes\" {braces}"]
        let flags = [true, false, true]
        let blobs: [[UInt8]] = [[], [0], Array(0...255), Array(repeating: 0xFF, count: 70_000)]
        var binds = PostgresBindings()
        binds.append(PostgresArrayBind(numbers))
        binds.append(PostgresArrayBind(texts))
        binds.append(PostgresArrayBind(flags))
        binds.append(PostgresArrayBind(bytea: blobs))
        binds.append(PostgresArrayBind([Int64]()))
        binds.append(PostgresArrayBind([String]()))
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT $1::bigint[], $2::text[], $3::bool[], $4::bytea[], cardinality($5::bigint[]), cardinality($6::text[]),
                        array_ndims($1::bigint[]), array_lower($2::text[], 1)
                    """, binds: binds), logger: Logger(label: "test")
        ).collect()
        let row = try #require(rows.first)
        let (n, t, f, b, emptyNumbers, emptyTexts, dimensions, lower) = try row.decode(
            ([Int64], [String], [Bool], [ByteBuffer], Int32, Int32, Int32, Int32).self)
        #expect(n == numbers)
        #expect(t == texts)
        #expect(f == flags)
        #expect(b.map { Array($0.readableBytesView) } == blobs)
        #expect(emptyNumbers == 0 && emptyTexts == 0)
        #expect(dimensions == 1 && lower == 1)
    }
}
