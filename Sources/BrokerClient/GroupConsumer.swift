import Contracts
import Logging
import RPCCore
import Synchronization

/// A member of a consumer group: joins, heartbeats, consumes the partitions it is granted with
/// long-poll fetches, hands partitions over when the group rebalances, and commits what it
/// processed periodically, before handing a partition over, and on shutdown.
///
/// Records of one partition reach the handler in offset order (one at a time, or a fetched batch
/// at a time with `run(batches:)`); partitions are consumed concurrently. A record counts as
/// processed once the handler returns.
///
/// An application that stores its results and its offsets in one transaction (exactly once in
/// effect, as Kafka's docs describe for external stores) gives `startOffset`: its own offsets
/// then win over the group's committed ones, which it still commits for monitoring and lag.
public final class GroupConsumer: Sendable {
    public struct Options: Sendable {
        public var clientId: String?
        public var sessionTimeoutMs = 10_000
        /// Commit processed offsets this often; nil commits only on hand-over and shutdown
        /// (call `commit()` yourself for more).
        public var autoCommitInterval: Duration? = .seconds(1)
        /// Where to start in a partition the group never committed.
        public var startFromLatest = false
        public var maxRecords = 500
        public var maxWait: Duration = .milliseconds(500)
        /// Where to start in a newly granted partition, when the application keeps offsets itself
        /// (nil from it: fall back to the group's committed offset).
        public var startOffset: (@Sendable (_ topic: String, _ partition: Int) async throws -> Int64?)?
        /// Told after every fetch of a partition: nil when it worked, else why it failed (the
        /// consumer retries with backoff either way; an OUT_OF_RANGE never heals by itself).
        public var onFetch: (@Sendable (_ topic: String, _ partition: Int, _ error: (any Error)?) -> Void)?
        public init() {}
    }

    public typealias Handler = @Sendable (BrokerAPI.ConsumedRecord) async throws -> Void
    /// Receives each fetched batch of one partition of `topic`, in offset order.
    public typealias BatchHandler = @Sendable (_ topic: String, _ records: [BrokerAPI.ConsumedRecord]) async throws -> Void

    private struct Key: Hashable {
        var topic: String
        var partition: Int
    }

    private struct State {
        var memberId: String?
        var generation = 0
        /// Next offset to process, per owned partition.
        var positions: [Key: Int64] = [:]
        /// Positions last committed.
        var committed: [Key: Int64] = [:]
        var fetchers: [Key: Task<Void, Never>] = [:]
    }

    public let group: String
    public let topics: [String]
    private let broker: BrokerAPI.Broker.Client
    private let options: Options
    private let logger: Logger
    private let state = Mutex(State())

    public init(client: RPCClient, group: String, topics: [String], options: Options = Options(), logger: Logger = Logger(label: "broker.consumer")) {
        broker = BrokerAPI.Broker.Client(client)
        self.group = group
        self.topics = topics
        self.options = options
        self.logger = logger
    }

    /// Consumes until the task is cancelled, then commits and leaves the group.
    public func run(_ handler: @escaping Handler) async throws {
        try await run(batches: { _, records in
            for record in records {
                if Task.isCancelled { return }
                try await handler(record)
            }
        })
    }

    /// Consumes until the task is cancelled, handing over each fetched batch whole; then commits
    /// and leaves the group.
    public func run(batches handler: @escaping BatchHandler) async throws {
        var nextCommit = options.autoCommitInterval.map { ContinuousClock.now + $0 }
        defer { stopAll() }
        do {
            var membership = try await join()
            while !Task.isCancelled {
                try await reconcile(membership, handler: handler)
                let pending = (membership.pendingPartitions ?? 0) > 0
                let interval = pending ? Duration.milliseconds(200) : .milliseconds(membership.heartbeatIntervalMs)
                try await Task.sleep(for: min(interval, options.autoCommitInterval ?? interval))
                if let due = nextCommit, ContinuousClock.now >= due {
                    try await commit()
                    nextCommit = options.autoCommitInterval.map { ContinuousClock.now + $0 }
                }
                membership = try await heartbeat()
            }
        } catch is CancellationError {
        } catch let error as RPCError where error.code == .cancelled {
        }
        await shutdown()
    }

    /// Commits the processed position of every owned partition that moved since the last commit.
    public func commit() async throws {
        let (memberId, generation, offsets) = state.withLock { state in
            (
                state.memberId, state.generation,
                state.positions.filter { state.committed[$0.key] != $0.value }.sorted {
                    ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition)
                }
            )
        }
        guard let memberId, !offsets.isEmpty else { return }
        let request = BrokerAPI.CommitOffsetsRequest(
            group: group, memberId: memberId, generation: generation,
            offsets: offsets.map { BrokerAPI.CommittedOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) })
        do {
            _ = try await broker.commitOffsets(request)
        } catch let error as RPCError where error.code == .aborted {
            // Rebalanced since: learn the new generation, then commit again.
            let membership = try await heartbeat()
            _ = try await broker.commitOffsets(
                BrokerAPI.CommitOffsetsRequest(group: group, memberId: memberId, generation: membership.generation, offsets: request.offsets))
        }
        state.withLock { state in
            for (key, offset) in offsets { state.committed[key] = offset }
        }
    }

    /// How long a JoinGroup already under way may still finish once the consumer is cancelled.
    static let joinGraceOnCancel = Duration.seconds(1)

    /// Joins (or joins again), then throws `CancellationError` if cancelled meanwhile, with the
    /// member id known so that `shutdown` leaves. A cancelled call could not do that: the
    /// broker may have made the member already, and would keep it, and the partitions it
    /// grants it, until its session times out. So the call is left to finish, for up to
    /// `joinGraceOnCancel` (longer means the broker is not answering, and has made nothing).
    private func join() async throws -> BrokerAPI.GroupMembership {
        let request = BrokerAPI.JoinGroupRequest(
            group: group, memberId: state.withLock { $0.memberId }, clientId: options.clientId, topics: topics,
            sessionTimeoutMs: options.sessionTimeoutMs)
        let call = Task { [broker] in try await broker.joinGroup(request, options: CallOptions(waitForReady: true)) }
        let membership = try await withTaskCancellationHandler {
            try await call.value
        } onCancel: {
            Task {
                try? await Task.sleep(for: Self.joinGraceOnCancel)
                call.cancel()
            }
        }
        state.withLock {
            $0.memberId = membership.memberId
            $0.generation = membership.generation
        }
        logger.info("joined group", metadata: ["group": "\(group)", "member": "\(membership.memberId)"])
        try Task.checkCancellation()
        return membership
    }

    private func heartbeat() async throws -> BrokerAPI.GroupMembership {
        let (memberId, owned) = state.withLock { state in
            (
                state.memberId ?? "",
                Dictionary(grouping: state.fetchers.keys, by: \.topic).map {
                    BrokerAPI.TopicPartitions(topic: $0.key, partitions: $0.value.map(\.partition).sorted())
                }
            )
        }
        do {
            let membership = try await broker.heartbeat(.init(group: group, memberId: memberId, owned: owned))
            state.withLock { $0.generation = membership.generation }
            return membership
        } catch let error as RPCError where error.code == .failedPrecondition {
            // Our session ended (for example the broker restarted): stop, then join again.
            logger.warning("group session lost; joining again", metadata: ["group": "\(group)", "error": "\(error)"])
            await stopFetchers(state.withLock { Array($0.fetchers.keys) }, commitFirst: false)
            state.withLock { $0.memberId = nil }
            return try await join()
        }
    }

    /// Starts fetchers for newly granted partitions and, for revoked ones, stops them, commits
    /// their position and heartbeats at once so the next owner is not kept waiting.
    private func reconcile(_ membership: BrokerAPI.GroupMembership, handler: @escaping BatchHandler) async throws {
        let granted = Set(membership.assignment.flatMap { entry in entry.partitions.map { Key(topic: entry.topic, partition: $0) } })
        let current = Set(state.withLock { $0.fetchers.keys })
        let revoked = current.subtracting(granted)
        if !revoked.isEmpty {
            await stopFetchers(Array(revoked), commitFirst: true)
            _ = try await heartbeat()
        }
        for key in granted.subtracting(current) {
            let start = try await startOffset(key)
            state.withLock { state in
                state.positions[key] = start
                state.fetchers[key] = Task { await self.consume(key, from: start, handler: handler) }
            }
        }
    }

    private func startOffset(_ key: Key) async throws -> Int64 {
        if let own = try await options.startOffset?(key.topic, key.partition) { return own }
        let committed = try await broker.fetchCommittedOffsets(.init(group: group, topic: key.topic)).offsets
        if let found = committed.first(where: { $0.partition == key.partition }) {
            state.withLock { $0.committed[key] = found.offset }
            return found.offset
        }
        let spec: BrokerAPI.OffsetSpec = options.startFromLatest ? .latest : .earliest
        return try await broker.listOffsets(.init(topic: key.topic, partition: key.partition, spec: spec)).offset
    }

    private func consume(_ key: Key, from start: Int64, handler: @escaping BatchHandler) async {
        var offset = start
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled {
            do {
                let reply = try await broker.fetch(
                    BrokerAPI.FetchRequest(
                        topic: key.topic, partition: key.partition, offset: offset, maxRecords: options.maxRecords,
                        maxWaitMs: Int(options.maxWait / .milliseconds(1))))
                if !reply.records.isEmpty {
                    try await handler(key.topic, reply.records)
                    if Task.isCancelled { return }
                }
                offset = reply.nextOffset
                state.withLock { $0.positions[key] = offset }
                backoff = .milliseconds(50)
                options.onFetch?(key.topic, key.partition, nil)
            } catch {
                if Task.isCancelled { return }
                options.onFetch?(key.topic, key.partition, error)
                logger.warning("fetch failed; retrying", metadata: ["topic": "\(key.topic)", "partition": "\(key.partition)", "error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }

    private func stopFetchers(_ keys: [Key], commitFirst: Bool) async {
        let tasks = state.withLock { state in keys.compactMap { state.fetchers[$0] } }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        if commitFirst { try? await commit() }
        state.withLock { state in
            for key in keys {
                state.fetchers[key] = nil
                state.positions[key] = nil
                state.committed[key] = nil
            }
        }
    }

    private func stopAll() {
        state.withLock { state in
            for task in state.fetchers.values { task.cancel() }
        }
    }

    /// Stops consuming, commits, and leaves the group so its partitions move at once.
    private func shutdown() async {
        await Task {
            let keys = state.withLock { Array($0.fetchers.keys) }
            await stopFetchers(keys, commitFirst: true)
            if let memberId = state.withLock({ $0.memberId }) {
                _ = try? await broker.leaveGroup(.init(group: group, memberId: memberId))
            }
            logger.info("left group", metadata: ["group": "\(group)"])
        }.value
    }
}
