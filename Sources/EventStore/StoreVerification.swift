import SQLite

/// A store that can check everything it holds (`cqrs verify`): the role of a store beside
/// appending and reading, so that each store says what it can prove about its own files.
public protocol VerifiableEventStore: EventStore {
    /// Checks the whole store, calling `progress` after each page of `pageSize` events.
    func verify(pageSize: Int, progress: (StoreVerification) async throws -> Void) async throws -> StoreVerification
}

/// What a verification found (so far, while it runs).
public struct StoreVerification: Sendable, Hashable {
    /// Most problems reported; more are counted in `problemCount` only.
    public static let maxProblems = 100

    public var headPosition: Int64 = 0
    public var eventsChecked: Int64 = 0
    public var streams = 0
    public var problems: [String] = []
    public var problemCount = 0
    /// Why appends are refused, if they are.
    public var writeRefusal: String?

    public init() {}

    public mutating func report(_ problem: String) {
        problemCount += 1
        if problems.count < Self.maxProblems { problems.append(problem) }
    }

    /// The walk over every event in position order that each store's verification makes: each
    /// event's checksum, positions without gaps, each stream's versions 1, 2, 3….
    public struct EventWalk {
        private var versions: [String: Int64] = [:]
        /// The last position visited.
        public private(set) var after: Int64 = 0

        public init() {}

        public mutating func visit(_ event: RecordedEvent, storedChecksum: Int64, into report: inout StoreVerification) {
            if EventChecksum.of(event) != storedChecksum, case .dataLoss(let reason) = EventChecksum.damaged(event, stored: storedChecksum) {
                report.report(reason)
            }
            if event.position != after + 1 {
                report.report("positions jump from \(after) to \(event.position): events \(after + 1)…\(event.position - 1) are missing")
            }
            let previous = versions[event.streamId] ?? 0
            if event.streamVersion != previous + 1 {
                report.report("\(event.streamId) goes from version \(previous) to \(event.streamVersion) at position \(event.position)")
            }
            versions[event.streamId] = event.streamVersion
            after = event.position
            report.eventsChecked += 1
            report.headPosition = event.position
            report.streams = versions.count
        }
    }
}

extension SQLiteEventStore: VerifiableEventStore {
    /// SQLite's full `integrity_check` (every page, every index against its table), then every
    /// event in position order: its checksum, positions without gaps, each stream's versions
    /// 1, 2, 3…; then that every command result and checkpoint points at a stored event.
    public func verify(
        pageSize: Int = 1000, progress: (StoreVerification) async throws -> Void = { _ in }
    ) async throws -> StoreVerification {
        var report = StoreVerification()
        report.writeRefusal = writeRefusal
        do {
            try verifyStructure(into: &report)
            try await verifyEvents(pageSize: pageSize, into: &report, progress: progress)
            try verifyReferences(into: &report)
        } catch EventStoreError.unavailable(let reason) {
            report.report("the database cannot be read: \(reason)")
        }
        return report
    }

    private func verifyStructure(into report: inout StoreVerification) throws {
        let check = try read { try $0.integrityCheck(full: true, maxProblems: 20) }
        if case .problems(let problems) = check {
            for problem in problems { report.report("SQLite integrity_check: \(problem)") }
        }
    }

    private func verifyEvents(
        pageSize: Int, into report: inout StoreVerification, progress: (StoreVerification) async throws -> Void
    ) async throws {
        var walk = StoreVerification.EventWalk()
        while true {
            let after = walk.after
            let page: [(RecordedEvent, Int64)]
            do {
                page = try read { db in
                    try db.query(
                        "SELECT \(Self.checkedEventColumns) FROM events WHERE position > ? ORDER BY position LIMIT ?", .integer(after),
                        .integer(Int64(pageSize))
                    ) { (Self.uncheckedEvent($0), $0.int64(11)) }
                }
            } catch {
                report.report("events after position \(after) cannot be read: \(error)")
                break
            }
            guard !page.isEmpty else { break }
            for (event, stored) in page { walk.visit(event, storedChecksum: stored, into: &report) }
            try await progress(report)
        }
    }

    private func verifyReferences(into report: inout StoreVerification) throws {
        let orphans = try read { db in
            try db.first(
                """
                SELECT count(*) FROM commands c LEFT JOIN events e ON e.position = c.position
                WHERE e.position IS NULL OR e.stream_id <> c.stream_id OR e.stream_version <> c.version
                """
            ) { $0.int64(0) } ?? 0
        }
        if orphans > 0 { report.report("\(orphans) command results point at events the store does not hold") }
        let head = report.headPosition
        for (name, position) in try read({
            try $0.query("SELECT name, position FROM checkpoints WHERE position > ?", .integer(head)) { ($0.text(0), $0.int64(1)) }
        }) {
            report.report("checkpoint '\(name)' is at position \(position), beyond the last event (\(head))")
        }
    }
}
