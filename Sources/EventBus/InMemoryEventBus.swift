import Partitioning
import Synchronization
import WallTime
import Watermarks

/// A bus in one process's memory: topics of partitions, idempotent producer sessions, and
/// consumer groups that share a topic's partitions among their members. Nothing survives the
/// process. For tests (the relay's and the projection's run on it in milliseconds) and for
/// embedding the whole system in one process.
///
/// `setAvailable(false)` makes every call fail with `InMemoryEventBus.Failure.unavailable`, as a
/// broker that went away would, until it is set back.
public final class InMemoryEventBus: EventPublisher, EventSubscriber {
    public enum Failure: Error, Hashable, CustomStringConvertible {
        case unavailable
        case topicNotFound(String)

        public var description: String {
            switch self {
            case .unavailable: return "the bus is unavailable"
            case .topicNotFound(let topic): return "topic '\(topic)' does not exist"
            }
        }
    }

    struct PartitionKey: Hashable, Sendable {
        var topic: String
        var partition: Int
    }

    private struct Partition {
        var records: [BusRecord] = []
        let highWatermark = WatermarkWaiters(highWatermark: 0)
    }

    private struct Member {
        var id: String
        var topics: [String]
    }

    private struct Group {
        /// In join order: a topic's partitions are dealt to its members in this order.
        var members: [Member] = []
        var owners: [PartitionKey: String] = [:]
        var committed: [PartitionKey: Int64] = [:]
    }

    private struct State {
        var topics: [String: [Partition]] = [:]
        var groups: [String: Group] = [:]
        var available = true
        var nextMember = 0
        var nextSticky = 0
    }

    private let state = Mutex(State())
    /// Moves on every membership or ownership change, so members waiting for their partitions wake.
    private let groupChanges = WatermarkWaiters(highWatermark: 0)
    private let changeCount = Atomic<Int64>(0)
    private let clock: any WallClock

    /// `clock` stamps records with their append time.
    public init(clock: any WallClock = SystemWallClock()) {
        self.clock = clock
    }

    public var messagingSystem: String { "in-memory" }

    /// Takes the bus away (every call fails with `unavailable`) or brings it back.
    public func setAvailable(_ available: Bool) {
        state.withLock { $0.available = available }
    }

    // MARK: EventTopics

    public func ensureTopic(_ topic: String, partitions: Int) async throws {
        precondition(partitions > 0, "a topic needs a partition")
        try state.withLock { state in
            guard state.available else { throw Failure.unavailable }
            if state.topics[topic] == nil { state.topics[topic] = (0..<partitions).map { _ in Partition() } }
        }
    }

    public func partitions(of topic: String) async throws -> [PartitionBounds]? {
        try state.withLock { state in
            guard state.available else { throw Failure.unavailable }
            return state.topics[topic]?.enumerated().map { index, partition in
                PartitionBounds(partition: index, logStartOffset: 0, highWatermark: Int64(partition.records.count))
            }
        }
    }

    public func read(_ topic: String, partition: Int, from offset: Int64, maxRecords: Int) async throws -> [BusRecord] {
        try readNow(topic, partition: partition, from: offset, maxRecords: maxRecords)
    }

    private func readNow(_ topic: String, partition: Int, from offset: Int64, maxRecords: Int) throws -> [BusRecord] {
        try state.withLock { state in
            guard state.available else { throw Failure.unavailable }
            guard let partitions = state.topics[topic], partitions.indices.contains(partition) else { throw Failure.topicNotFound(topic) }
            let records = partitions[partition].records
            guard offset >= 0, offset <= Int64(records.count) else {
                throw OffsetOutOfRange(
                    topic: topic, partition: partition, message: "offset \(offset) is out of range in \(topic)/\(partition) (0 to \(records.count))")
            }
            return Array(records[Int(offset)..<min(records.count, Int(offset) + max(1, maxRecords))])
        }
    }

    // MARK: EventPublisher

    public func producer(for topic: String, onRetry: (@Sendable (any Error) -> Void)?) async throws -> any TopicProducer {
        try state.withLock { state in
            guard state.available else { throw Failure.unavailable }
            guard state.topics[topic] != nil else { throw Failure.topicNotFound(topic) }
        }
        return Producer(bus: self, topic: topic)
    }

    /// Appends under one lock: a send is stored whole or not at all, so it never needs a retry
    /// and the session's idempotence holds trivially.
    fileprivate func append(_ outgoing: [OutgoingRecord], to topic: String) throws {
        let now = clock.nowMilliseconds()
        let moved = try state.withLock { state -> [(WatermarkWaiters, Int64)] in
            guard state.available else { throw Failure.unavailable }
            guard var partitions = state.topics[topic] else { throw Failure.topicNotFound(topic) }
            for explicit in outgoing.compactMap(\.partition) where !partitions.indices.contains(explicit) {
                throw Failure.topicNotFound("\(topic)/\(explicit)")
            }
            state.topics[topic] = nil  // appended in place below, without a copy
            defer { state.topics[topic] = partitions }
            var touched = Set<Int>()
            for record in outgoing {
                let target: Int
                if let explicit = record.partition {
                    target = explicit
                } else if let key = record.key {
                    target = Partitioner.partition(forKey: Array(key.utf8), partitions: partitions.count)
                } else {
                    target = state.nextSticky % partitions.count
                    state.nextSticky += 1
                }
                let offset = Int64(partitions[target].records.count)
                partitions[target].records.append(
                    BusRecord(
                        topic: topic, partition: target, offset: offset, timestamp: now, key: record.key, value: record.value,
                        headers: record.headers))
                touched.insert(target)
            }
            return touched.map { (partitions[$0].highWatermark, Int64(partitions[$0].records.count)) }
        }
        for (waiters, highWatermark) in moved { waiters.advance(to: highWatermark) }
    }

    private struct Producer: TopicProducer {
        let bus: InMemoryEventBus
        let topic: String
        func send(_ records: [OutgoingRecord]) async throws { try bus.append(records, to: topic) }
    }

    // MARK: EventSubscriber

    public func subscription(group: String, topics: [String], options: SubscriptionOptions) -> any EventSubscription {
        GroupMember(bus: self, group: group, topics: topics, options: options)
    }

    /// The group has changed: wake members waiting for their partitions.
    private func groupChanged() {
        groupChanges.advance(to: changeCount.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    fileprivate var groupGeneration: Int64 { groupChanges.current }

    fileprivate func waitForGroupChange(after generation: Int64, timeout: Duration) async {
        _ = await groupChanges.wait(untilAbove: generation, timeout: timeout)
    }

    fileprivate func join(_ group: String, topics: [String]) throws -> String {
        let id = try state.withLock { state -> String in
            guard state.available else { throw Failure.unavailable }
            state.nextMember += 1
            let id = "\(group)-member-\(state.nextMember)"
            state.groups[group, default: Group()].members.append(Member(id: id, topics: topics))
            return id
        }
        groupChanged()
        return id
    }

    fileprivate func leave(_ group: String, member: String) {
        state.withLock { state in
            guard var entry = state.groups[group] else { return }
            entry.members.removeAll { $0.id == member }
            entry.owners = entry.owners.filter { $0.value != member }
            state.groups[group] = entry
        }
        groupChanged()
    }

    /// The partitions `member` should own now: each topic's partitions dealt in turn to the
    /// members subscribed to it, in join order.
    fileprivate func assignment(_ group: String, member: String) -> Set<PartitionKey> {
        state.withLock { state in
            guard let members = state.groups[group]?.members else { return [] }
            var owned = Set<PartitionKey>()
            for topic in members.first(where: { $0.id == member })?.topics ?? [] {
                let sharing = members.filter { $0.topics.contains(topic) }.map(\.id)
                guard let index = sharing.firstIndex(of: member) else { continue }
                for partition in 0..<(state.topics[topic]?.count ?? 0) where partition % sharing.count == index {
                    owned.insert(PartitionKey(topic: topic, partition: partition))
                }
            }
            return owned
        }
    }

    /// Takes a partition its previous owner has released (so two members never consume one
    /// partition at once); false while another member still holds it.
    fileprivate func acquire(_ key: PartitionKey, group: String, member: String) -> Bool {
        state.withLock { state in
            let owner = state.groups[group]?.owners[key]
            guard owner == nil || owner == member else { return false }
            state.groups[group]?.owners[key] = member
            return true
        }
    }

    fileprivate func release(_ keys: [PartitionKey], group: String, member: String) {
        state.withLock { state in
            for key in keys where state.groups[group]?.owners[key] == member { state.groups[group]?.owners[key] = nil }
        }
        groupChanged()
    }

    fileprivate func commit(_ offsets: [PartitionKey: Int64], group: String) {
        state.withLock { state in
            for (key, offset) in offsets { state.groups[group]?.committed[key] = offset }
        }
    }

    /// The offset `group` committed for a partition.
    public func committedOffset(group: String, topic: String, partition: Int) -> Int64? {
        state.withLock { $0.groups[group]?.committed[PartitionKey(topic: topic, partition: partition)] }
    }

    fileprivate func highWatermark(_ key: PartitionKey) -> WatermarkWaiters? {
        state.withLock { $0.topics[key.topic]?[key.partition].highWatermark }
    }

    private final class GroupMember: EventSubscription {
        let bus: InMemoryEventBus
        let group: String
        let topics: [String]
        let options: SubscriptionOptions
        /// Next offset to hand over, per owned partition.
        private let positions = Mutex<[PartitionKey: Int64]>([:])

        init(bus: InMemoryEventBus, group: String, topics: [String], options: SubscriptionOptions) {
            self.bus = bus
            self.group = group
            self.topics = topics
            self.options = options
        }

        func run(_ handler: @escaping @Sendable ([BusRecord]) async throws -> Void) async throws {
            let member = try bus.join(group, topics: topics)
            var fetchers: [PartitionKey: Task<Void, Never>] = [:]
            func stop(_ keys: [PartitionKey]) async {
                for key in keys { fetchers[key]?.cancel() }
                for key in keys { await fetchers.removeValue(forKey: key)?.value }
                let handled = positions.withLock { positions in
                    keys.reduce(into: [PartitionKey: Int64]()) { $0[$1] = positions.removeValue(forKey: $1) }
                }
                bus.commit(handled, group: group)
                bus.release(keys, group: group, member: member)
            }
            do {
                while !Task.isCancelled {
                    let generation = bus.groupGeneration
                    let granted = bus.assignment(group, member: member)
                    await stop(fetchers.keys.filter { !granted.contains($0) })
                    for key in granted where fetchers[key] == nil && bus.acquire(key, group: group, member: member) {
                        let start =
                            try await options.startOffset?(key.topic, key.partition)
                            ?? bus.committedOffset(group: group, topic: key.topic, partition: key.partition) ?? 0
                        positions.withLock { $0[key] = start }
                        fetchers[key] = Task { await self.consume(key, from: start, handler: handler) }
                    }
                    await bus.waitForGroupChange(after: generation, timeout: .milliseconds(200))
                }
            } catch {
                await stop(Array(fetchers.keys))
                bus.leave(group, member: member)
                throw error
            }
            await stop(Array(fetchers.keys))
            bus.leave(group, member: member)
        }

        private func consume(_ key: PartitionKey, from start: Int64, handler: @escaping @Sendable ([BusRecord]) async throws -> Void) async {
            var offset = start
            var backoff = Duration.milliseconds(10)
            while !Task.isCancelled {
                do {
                    let records = try bus.readNow(key.topic, partition: key.partition, from: offset, maxRecords: options.maxRecords)
                    options.onFetch?(key.topic, key.partition, nil)
                    guard let last = records.last else {
                        _ = await bus.highWatermark(key)?.wait(untilAbove: offset, timeout: options.maxWait)
                        continue
                    }
                    try await handler(records)
                    offset = last.offset + 1
                    positions.withLock { $0[key] = offset }
                    backoff = .milliseconds(10)
                } catch {
                    if Task.isCancelled { return }
                    options.onFetch?(key.topic, key.partition, error)
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(1))
                }
            }
        }
    }
}
