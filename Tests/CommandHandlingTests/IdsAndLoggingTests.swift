import CommandHandling
import Domain
import EventStore
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@Suite struct IdsAndLoggingTests {
    /// RFC 9562 version 7: the layout, the time in the first 48 bits, and ids that sort by time.
    @Test func idsAreVersion7UUIDsThatSortByTime() throws {
        var random = SystemRandomNumberGenerator()
        let now: Int64 = 1_763_899_200_123
        let id = UUIDv7.make(nowMs: now, using: &random)
        #expect(id.count == 36)
        #expect(id == id.lowercased())
        let parsed = try #require(UUID(uuidString: id))
        #expect(parsed.uuidString.lowercased() == id)
        let bytes = withUnsafeBytes(of: parsed.uuid) { Array($0) }
        #expect(bytes[6] >> 4 == 7)  // version
        #expect(bytes[8] >> 6 == 0b10)  // variant
        #expect(bytes[0..<6].reduce(Int64(0)) { $0 << 8 | Int64($1) } == now)
        let later = (0..<200).map { UUIDv7.make(nowMs: now + 1 + Int64($0), using: &random) }
        #expect(later == later.sorted())
        #expect(Set(later).count == later.count)
        #expect(later.allSatisfy { $0 > id })
    }

    /// Every digit in its place, in lowercase, the dashes after digits 8, 12, 16 and 20: the
    /// time's 48 bits, the version, 12 random bits, the variant, 62 random bits.
    @Test func idsAreFormattedMostSignificantDigitFirst() {
        var random = FixedWords([0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210])
        #expect(UUIDv7.make(nowMs: 0x0123_4567_89ab, using: &random) == "01234567-89ab-7def-bedc-ba9876543210")
        var zeros = FixedWords([0, 0])
        #expect(UUIDv7.make(nowMs: 0, using: &zeros) == "00000000-0000-7000-8000-000000000000")
        var ones = FixedWords([.max, .max])
        #expect(UUIDv7.make(nowMs: 0xffff_ffff_ffff, using: &ones) == "ffffffff-ffff-7fff-bfff-ffffffffffff")
    }

    /// Events get version 7 ids with the handler's clock in them.
    @Test func storedEventsCarryVersion7Ids() async throws {
        let side = WriteSide()
        try await side.open("ids-1")
        let events = try await side.store.readStream(BankAccount.streamId("ids-1"), fromVersion: 1, maxCount: 10)
        let id = try #require(events.first?.eventId)
        let bytes = withUnsafeBytes(of: try #require(UUID(uuidString: id)).uuid) { Array($0) }
        #expect(bytes[6] >> 4 == 7)
        #expect(bytes[0..<6].reduce(Int64(0)) { $0 << 8 | Int64($1) } == 1_763_899_200_000)
    }

    /// The logging behaviour's ids reach a failure's log line (and the caller's own metadata
    /// stays), although they are no longer set on the handler up front.
    @Test func aFailedCommandIsLoggedWithItsIds() async throws {
        let records = LogRecords()
        var logger = Logger(label: "test") { _ in RecordingLogHandler(records: records) }
        logger.logLevel = .info
        let side = WriteSide(store: FailingStore())
        let context = CommandContext(
            commandId: "cmd-42", correlationId: "corr-7", logger: logger, logMetadata: ["rpc.method": "Test/Deposit"])
        await #expect(throws: CommandError.self) {
            try await side.mediator.send(DepositFunds(accountId: "a", amount: eur(5)), context: context)
        }
        let failure = try #require(records.all.first { $0.message == "command failed" })
        #expect(failure.metadata["command-id"] == "cmd-42")
        #expect(failure.metadata["correlation-id"] == "corr-7")
        #expect(failure.metadata["command"] == "DepositFunds")
        #expect(failure.metadata["rpc.method"] == "Test/Deposit")
    }
}

/// A store that is down: every call fails as unavailable.
struct FailingStore: EventStore {
    static var down: EventStoreError { .unavailable("disk on fire") }
    func append(_ request: AppendRequest) async throws -> AppendResult { throw Self.down }
    func readStream(_ streamId: String, fromVersion: Int64, maxCount: Int) async throws -> [RecordedEvent] { throw Self.down }
    func readAll(fromPosition: Int64, maxCount: Int) async throws -> [RecordedEvent] { throw Self.down }
    func headPosition() async throws -> Int64 { throw Self.down }
    func streamVersion(_ streamId: String) async throws -> Int64 { throw Self.down }
    func waitForEvents(after position: Int64, timeout: Duration) async -> Bool { false }
    func commandResult(_ commandId: String) async throws -> AppendResult? { throw Self.down }
    func loadSnapshot(_ streamId: String) async throws -> Snapshot? { throw Self.down }
    func saveSnapshot(_ snapshot: Snapshot) async throws { throw Self.down }
    func checkpoint(_ name: String) async throws -> Int64? { throw Self.down }
    func saveCheckpoint(_ name: String, position: Int64) async throws { throw Self.down }
    var writeRefusal: String? { nil }
    func refuseWrites(because reason: String) {}
}

/// Ids' random bits come from a shared buffer of the kernel's bytes; every id must still differ.
@Suite struct BufferedRandomTests {
    @Test func idsMadeInParallelAcrossManyRefillsAreAllDistinct() async {
        let ids = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 { group.addTask { (0..<2_000).map { _ in UUIDv7.make() } } }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(ids.count == 16_000 && Set(ids).count == 16_000, "16,000 ids take 8 refills of the 4 KiB buffer")
        var random = BufferedRandom()
        let words = (0..<1_024).map { _ in random.next() }
        #expect(Set(words).count == words.count)
        let ones = words.reduce(0) { $0 + $1.nonzeroBitCount }
        #expect(abs(ones - 32 * 1_024) < 1_200, "about half the bits set: \(ones) of \(64 * 1_024)")
    }
}

/// Hands out the given words in turn.
private struct FixedWords: RandomNumberGenerator {
    var words: [UInt64]
    init(_ words: [UInt64]) { self.words = words }
    mutating func next() -> UInt64 { words.removeFirst() }
}
