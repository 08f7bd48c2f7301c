import Contracts
public import EventBus
import Foundation
import Logging
import RPCCore
import ReadModels
import Synchronization
import WallTime

/// cqrs.queries.v1.ReadModels: status and lag, rebuild from the CommandService's history, and
/// the parked events.
public final class ReadModelsService: QueriesAPI.ReadModels.ServiceProtocol, Sendable {
    let store: ReadModelStore
    let projection: Projection?
    let bus: (any EventTopics)?
    let commands: RPCClient
    let logger: Logger
    private let rebuilding = Atomic(false)
    /// Queries wait, as far as health checks say, until the read models first caught up.
    let readyWhenCaughtUp: Bool
    let caughtUpOnce = Atomic(false)

    /// `projection` and `bus` are nil when the service runs without a bus (rebuild only).
    /// - Parameter readyWhenCaughtUp: the query services report NOT_SERVING to health checks
    ///   until, after start, every partition the read models follow has no lag.
    public init(
        store: ReadModelStore, projection: Projection?, bus: (any EventTopics)?, commands: RPCClient, readyWhenCaughtUp: Bool = false,
        logger: Logger = Logger(label: "readmodels")
    ) {
        self.store = store
        self.projection = projection
        self.bus = bus
        self.commands = commands
        self.readyWhenCaughtUp = readyWhenCaughtUp
        self.logger = logger
    }

    public func getStatus(_ request: QueriesAPI.GetStatusRequest, context: ServerContext) async throws -> QueriesAPI.ReadModelStatus {
        try await status()
    }

    /// What GetStatus answers, and what the metrics are read from.
    func status() async throws -> QueriesAPI.ReadModelStatus {
        let stored = try await store.partitionOffsets()
        func applied(_ topic: String, _ partition: Int) -> Int64 {
            stored.first { $0.topic == topic && $0.partition == partition }?.nextOffset ?? 0
        }
        var partitions: [QueriesAPI.PartitionStatus] = []
        var brokerError: String?
        if let bus, let projection {
            for topic in projection.topics {
                do {
                    for partition in try await bus.partitions(of: topic) ?? [] {
                        let offset = applied(topic, partition.partition)
                        partitions.append(
                            QueriesAPI.PartitionStatus(
                                topic: topic, partition: partition.partition, appliedOffset: offset,
                                highWatermark: partition.highWatermark, lag: max(0, partition.highWatermark - offset)))
                    }
                } catch {
                    // The broker cannot be asked: what the read models applied, without lag.
                    brokerError = "\(error)"
                    for entry in stored where entry.topic == topic {
                        partitions.append(QueriesAPI.PartitionStatus(topic: topic, partition: entry.partition, appliedOffset: entry.nextOffset))
                    }
                }
            }
        }
        let counts = try await store.reading { try $0.counts() }
        let projectionStatus = projection?.status
        return QueriesAPI.ReadModelStatus(
            appliedPosition: store.handledPosition, partitions: partitions, parkedEvents: counts.parked, accounts: counts["accounts"],
            orders: counts["orders"], customers: counts["customers"], rows: counts.rows,
            brokerConnected: bus != nil && brokerError == nil,
            lastError: brokerError ?? projectionStatus?.lastError, rebuilding: rebuilding.load(ordering: .relaxed))
    }

    public func rebuild(_ request: QueriesAPI.RebuildRequest, responses: MessageWriter<QueriesAPI.RebuildProgress>, context: ServerContext)
        async throws
    {
        guard rebuilding.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw RPCError(code: .failedPrecondition, message: "a rebuild is already running")
        }
        defer { rebuilding.store(false, ordering: .releasing) }
        let rebuilder = Rebuilder(
            store: store, commands: commands, pageSize: request.pageSize ?? 5000, offsetFloors: offsetFloors, logger: logger)
        RebuildMetrics.started()
        defer { RebuildMetrics.ended() }
        let final = try await rebuilder.run { progress in
            RebuildMetrics.progressed(progress)
            try await responses.write(progress)
        }
        // Members stopped by OUT_OF_RANGE read their (moved) offsets again and follow.
        projection?.restartMembers()
        try await responses.write(final)
    }

    /// The log start offset of every partition the projection follows, for the rebuild's swap
    /// to move stalled offsets up to (see `replaceModels`). Without a broker, none; a topic the
    /// broker cannot describe now gets none either: the rebuild itself needs only the
    /// CommandService, and must not fail at its swap because the broker is away.
    private func offsetFloors() async -> [PartitionOffset] {
        guard let bus, let projection else { return [] }
        var floors: [PartitionOffset] = []
        for topic in projection.topics {
            do {
                for partition in try await bus.partitions(of: topic) ?? [] {
                    floors.append(PartitionOffset(topic: topic, partition: partition.partition, nextOffset: partition.logStartOffset))
                }
            } catch {
                logger.warning(
                    "the rebuild cannot read the topic's log starts; offsets the broker's retention left behind stay as they are",
                    metadata: ["topic": "\(topic)", "error": "\(error)"])
            }
        }
        return floors
    }

    public func listParked(_ request: QueriesAPI.ListParkedRequest, context: ServerContext) async throws -> QueriesAPI.ParkedPage {
        let (after, limit) = (try QueryCalls.numericKey(fromToken: request.pageToken), try QueryCalls.pageSize(request.pageSize))
        let page = try await store.reading { try $0.parked(afterId: after, limit: limit) }
        return QueriesAPI.ParkedPage(
            events: page.rows.map { row in
                QueriesAPI.ParkedEvent(
                    id: row.id, state: QueriesAPI.ParkedState(rawValue: row.state) ?? .failed, topic: row.topic, partition: row.partition,
                    offset: row.offset, eventId: row.eventId, eventType: row.eventType, streamId: row.streamId,
                    streamVersion: row.streamVersion, position: row.position, error: row.error, attempts: row.attempts,
                    parkedAt: QueryCalls.time(row.parkedAt), value: row.data.flatMap { try? RawJSON(validating: $0) })
            },
            nextPageToken: QueryCalls.nextToken(page) { String($0.id) })
    }

    public func retryParked(_ request: QueriesAPI.ParkedSelection, context: ServerContext) async throws -> QueriesAPI.ParkedResult {
        try await resolve(request, skip: false)
    }

    public func skipParked(_ request: QueriesAPI.ParkedSelection, context: ServerContext) async throws -> QueriesAPI.ParkedResult {
        try await resolve(request, skip: true)
    }

    private func resolve(_ selection: QueriesAPI.ParkedSelection, skip: Bool) async throws -> QueriesAPI.ParkedResult {
        let all = selection.all ?? false
        let ids = selection.ids ?? []
        guard all != !ids.isEmpty else {
            throw RPCError.invalidArgument(
                "give either ids or all: true", violations: [FieldViolation(field: "ids", description: "give ids, or all: true, not both or neither")]
            )
        }
        let selected = all ? nil : ids
        var total = (applied: 0, skipped: 0, kept: [Int64]())
        // A skip of all goes round again while it makes progress: applying a stream's events
        // can bring it to a version two records claim, which the next round checks.
        for _ in 0..<(skip && all ? Self.skipRounds : 1) {
            var verdicts: [Int64: StoreVerdict] = [:]
            if skip {
                verdicts = try await storeVerdicts(try await store.parkedClaims(ids: selected).filter { !$0.streamId.isEmpty })
                let real = verdicts.filter { $0.value == .same }.keys.sorted()
                if !all, !real.isEmpty {
                    throw RPCError(
                        code: .failedPrecondition,
                        message:
                            "parked \(real.count == 1 ? "record" : "records") \(real.map(String.init).joined(separator: ", ")) \(real.count == 1 ? "is an event" : "are events") the event store holds: a skip drops only records the store does not hold. Fix what fails and retry, or rebuild the read models (cqrs rebuild); nothing was skipped"
                    )
                }
            }
            let result = try await store.resolveParked(ids: selected, skip: skip, stored: verdicts)
            total = (total.applied + result.applied, total.skipped + result.skipped, result.kept)
            if result.skipped == 0 { break }
        }
        logger.notice(
            skip ? "skipped parked events" : "retried parked events",
            metadata: ["applied": "\(total.applied)", "skipped": "\(total.skipped)", "kept": "\(total.kept)"])
        return QueriesAPI.ParkedResult(
            applied: total.applied, skipped: total.skipped, stillParked: try await store.reading { try $0.counts() }.parked)
    }

    /// Rounds a skip of all makes at most (each round checks the records it selects against the
    /// event store, one call each).
    static let skipRounds = 8

    /// Calls to the event store a skip keeps in flight: thousands of parked records (a forger's
    /// work, or the events waiting behind a poison one) are checked in seconds, not one round
    /// trip after another.
    static let verdictsInFlight = 16

    /// What the event store holds at each claim's stream version: each stream is read once over
    /// the versions its claims span (pages of `ReadStream`), `verdictsInFlight` streams at a time.
    private func storeVerdicts(_ claims: [ParkedClaim]) async throws -> [Int64: StoreVerdict] {
        let byStream = Dictionary(grouping: claims, by: \.streamId).values.map { $0.sorted { $0.streamVersion < $1.streamVersion } }
        return try await withThrowingTaskGroup(of: [Int64: StoreVerdict].self) { group in
            var verdicts: [Int64: StoreVerdict] = [:]
            var next = byStream.makeIterator()
            for _ in 0..<Self.verdictsInFlight {
                guard let claims = next.next() else { break }
                group.addTask { try await self.storeVerdicts(ofOneStream: claims) }
            }
            while let found = try await group.next() {
                verdicts.merge(found) { first, _ in first }
                if let claims = next.next() { group.addTask { try await self.storeVerdicts(ofOneStream: claims) } }
            }
            return verdicts
        }
    }

    /// Reads one stream from its lowest claimed version to its highest (or its end) and says, for
    /// each claim, whether the store holds that very event, another one, or nothing there.
    private func storeVerdicts(ofOneStream claims: [ParkedClaim]) async throws -> [Int64: StoreVerdict] {
        guard let first = claims.first, let last = claims.last else { return [:] }
        var stored: [Int64: CommandsAPI.StoredEvent] = [:]
        var version = first.streamVersion
        while version <= last.streamVersion {
            let response: CommandsAPI.ReadStreamResponse
            do {
                response = try await CommandsAPI.EventStore.Client(commands).readStream(
                    .init(streamId: first.streamId, fromVersion: version, maxCount: Int(min(last.streamVersion - version + 1, 10_000))),
                    options: CallOptions(timeout: .seconds(10)))
            } catch let error as RPCError {
                throw RPCError(
                    code: .unavailable,
                    message:
                        "cannot check parked record \(first.id) against the event store (\(error.code.name): \(error.message)); nothing was skipped")
            }
            for event in response.events { stored[event.streamVersion] = event }
            guard let end = response.events.last?.streamVersion, end >= version else { break }
            version = end + 1
        }
        var verdicts: [Int64: StoreVerdict] = [:]
        for claim in claims {
            guard let event = stored[claim.streamVersion] else {
                verdicts[claim.id] = .absent
                continue
            }
            verdicts[claim.id] = event.eventId == claim.eventId ? .same : .other(try Rebuilder.projected(event))
        }
        return verdicts
    }
}

/// Rebuilds the read models from the CommandService's ReadAll history: pages are fetched one
/// ahead while the previous one is applied (on its own thread) into fresh tables, then the store
/// swaps them in.
struct Rebuilder {
    let store: ReadModelStore
    let commands: RPCClient
    let pageSize: Int
    /// Read just before the swap: the broker's log starts (see `ReadModelsService.offsetFloors`).
    let offsetFloors: @Sendable () async -> [PartitionOffset]
    let logger: Logger
    static let reportEvery = Duration.milliseconds(250)
    /// Events applied in one transaction, at least: the pages that arrived go together. Each
    /// transaction ends in round trips that wait for the server to load what it was sent (the
    /// accounts and stream versions the pages moved, the commit), and each writes every account
    /// and stream its events touched; fewer, larger ones write each of them fewer times.
    static let eventsPerTransaction = 20_000
    /// Pages in flight at most (each a ReadAll call, and on PostgreSQL a connection of the
    /// CommandService's pool), whatever the page size.
    static let maxPagesAhead = 8
    /// Pages applied in one transaction: `eventsPerTransaction` of them, as far as the pages in
    /// flight allow.
    var pagesPerTransaction: Int { max(1, min(Self.eventsPerTransaction / max(1, pageSize), Self.maxPagesAhead - 1)) }
    /// Pages fetched ahead of the ones being applied: one transaction's worth and one more, so
    /// the next is being read and decoded while one is applied.
    var pagesAhead: Int { pagesPerTransaction + 1 }

    /// Runs the rebuild, calling `report` with progress about every 250 ms; returns the final
    /// progress (done, with counts).
    func run(report: (QueriesAPI.RebuildProgress) async throws -> Void) async throws -> QueriesAPI.RebuildProgress {
        let started = ContinuousClock.now
        let store = store
        // Pages being fetched and decoded on other threads while one is applied. Positions are
        // gap-free, so a full page from `start` ends at `start + pageSize` and the next pages'
        // starts are known before they arrive: the CommandService reads and encodes them while
        // this side decodes and applies, the first ones while the fresh tables are made. A page
        // that is not full ends the guess (the fetches after it are dropped); the rebuild checks
        // positions stay contiguous.
        var pending: [(start: Int64, task: Task<Page, any Error>)] = (0..<pagesAhead).map { index in
            let start = 1 + Int64(index) * Int64(pageSize)
            return (start, fetch(from: start))
        }
        let rebuild: ReadModelRebuild
        do {
            rebuild = try await offload { try ReadModelRebuild(beside: store) }
        } catch {
            for ahead in pending { ahead.task.cancel() }
            throw error
        }
        logger.notice("rebuild started", metadata: ["into": "\(rebuild.path)"])
        do {
            var head: Int64 = 0
            var lastReport = started
            var waiting = Duration.zero, applying = Duration.zero
            var gathered: [DecodedEvent] = []
            var gatheredPages = 0
            // The first transactions take one page, then two, ...: applying starts with the first
            // page instead of waiting for a whole transaction's worth of history.
            var transactions = 0
            while !pending.isEmpty {
                let (start, current) = pending.removeFirst()
                let asked = ContinuousClock.now
                let page = try await current.value
                waiting += ContinuousClock.now - asked
                head = max(head, page.head)
                if page.events.isEmpty || page.caughtUp || page.next != start + Int64(pageSize) {
                    for ahead in pending { ahead.task.cancel() }
                    pending = []
                }
                if !page.events.isEmpty && !page.caughtUp {
                    var nextStart = pending.last.map { $0.start + Int64(pageSize) } ?? page.next
                    while pending.count < pagesAhead {
                        pending.append((nextStart, fetch(from: nextStart)))
                        nextStart += Int64(pageSize)
                    }
                }
                gathered += page.events
                gatheredPages += 1
                guard gatheredPages >= min(pagesPerTransaction, transactions + 1) || pending.isEmpty else { continue }
                let events = gathered
                (gathered, gatheredPages) = ([], 0)
                transactions += 1
                let applyStarted = ContinuousClock.now
                try await offload { try rebuild.apply(decoded: events) }
                applying += ContinuousClock.now - applyStarted
                if ContinuousClock.now - lastReport >= Self.reportEvery {
                    lastReport = .now
                    try await report(progress(rebuild, head: head, since: started, phase: .loading))
                }
            }
            // The indexes put off while loading, built before the live writer is held.
            let indexing = ContinuousClock.now
            try await report(progress(rebuild, head: head, since: started, phase: .indexing))
            try await Self.whileReporting(every: Self.reportEvery, { progress(rebuild, head: head, since: started, phase: .indexing) }, to: report) {
                try await offload { try rebuild.finishLoading() }
            }
            let indexed = ContinuousClock.now - indexing
            // The last events since, read with the live writer held; then the swap.
            let finishing = ContinuousClock.now
            try await report(progress(rebuild, head: head, since: started, phase: .swapping))
            let floors = await offsetFloors()
            let counts = try await store.finishRebuild(rebuild, offsetFloors: floors) {
                while true {
                    let page = try await fetch(from: rebuild.lastPosition + 1).value
                    head = max(head, page.head)
                    if page.events.isEmpty { break }
                    try await offload { try rebuild.apply(decoded: page.events) }
                }
            }
            var final = progress(rebuild, head: head, since: started, phase: nil)
            final.accounts = counts["accounts"]
            final.orders = counts["orders"]
            final.customers = counts["customers"]
            final.parkedEvents = counts.parked
            logger.notice(
                "rebuild done",
                metadata: [
                    "events": "\(rebuild.eventsApplied)", "elapsed": "\(ContinuousClock.now - started)",
                    "waiting-for-history": "\(waiting)", "applying": "\(applying)", "indexing": "\(indexed)",
                    "swap": "\(ContinuousClock.now - finishing)",
                ])
            return final
        } catch {
            for ahead in pending { ahead.task.cancel() }
            _ = try? await offload { rebuild.discard() }
            logger.warning("rebuild abandoned; the read models are unchanged", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// A page of the history, decoded.
    struct Page: Sendable {
        var events: [DecodedEvent]
        var next: Int64
        var head: Int64
        var caughtUp: Bool
    }

    /// Reads a page of the history from `position` and decodes it, off the caller's task.
    private func fetch(from position: Int64) -> Task<Page, any Error> {
        let commands = commands
        let request = CommandsAPI.ReadAllRequest(fromPosition: position, maxCount: pageSize)
        return Task {
            let page: HistoryPage
            do {
                page = try await commands.unary(
                    request, method: CommandsAPI.EventStore.Method.readAll, reading: HistoryPage.self,
                    options: CallOptions(timeout: .seconds(30)))
            } catch let error as RPCError {
                throw RPCError(code: .unavailable, message: "cannot read the CommandService's history: \(error.code.name): \(error.message)")
            }
            let events = page.events
            let decoded = try await offload { ReadModelRebuild.decode(events) }
            return Page(events: decoded, next: page.nextPosition, head: page.headPosition, caughtUp: page.nextPosition > page.headPosition)
        }
    }

    /// Progress so far; `phase` nil is the final message (done).
    private func progress(
        _ rebuild: ReadModelRebuild, head: Int64, since started: ContinuousClock.Instant, phase: QueriesAPI.RebuildPhase?
    ) -> QueriesAPI.RebuildProgress {
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return QueriesAPI.RebuildProgress(
            eventsApplied: rebuild.eventsApplied, headPosition: head,
            eventsPerSecond: seconds > 0 ? Int(Double(rebuild.eventsApplied) / seconds) : 0, elapsedMs: Int64(seconds * 1000),
            done: phase == nil, phase: phase)
    }

    /// Runs `work` (one long step with nothing to count, such as building an index over
    /// millions of rows) while reporting `current()` every `interval`, so the stream does not
    /// fall silent for minutes. Returns when `work` has finished, even if a report failed first
    /// (the caller may only discard the rebuild once nothing works on it).
    static func whileReporting<Progress>(
        every interval: Duration, _ current: () -> Progress, to report: (Progress) async throws -> Void,
        _ work: @escaping @Sendable () async throws -> Void
    ) async throws {
        let (ticks, ticker) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let working = Task {
            defer { ticker.finish() }
            try await work()
        }
        let timer = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                ticker.yield()
            }
        }
        defer { timer.cancel() }
        do {
            for await _ in ticks { try await report(current()) }
        } catch {
            _ = await working.result
            throw error
        }
        try await working.value
    }

    static func projected(_ event: CommandsAPI.StoredEvent) throws -> ProjectedEvent {
        guard let recordedAt = milliseconds(iso8601: event.recordedAt) else {
            throw RPCError(code: .unavailable, message: "event \(event.eventId) has an unreadable recordedAt: \(event.recordedAt)")
        }
        return ProjectedEvent(
            eventId: event.eventId, streamId: event.streamId, type: event.type, schemaVersion: event.schemaVersion,
            streamVersion: event.streamVersion, position: event.position, recordedAt: recordedAt, data: event.data.bytes)
    }
}
