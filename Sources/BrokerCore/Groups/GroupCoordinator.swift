import LogStorage
import Logging
import Synchronization
import WallTime

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A committed offset: the next offset the group will consume.
public struct CommittedOffset: Hashable, Sendable, Codable {
    public var offset: Int64
    public var metadata: String?
    public var committedAt: Int64
}

/// What a member may consume now.
public struct Membership: Hashable, Sendable {
    public var group: String
    public var memberId: String
    public var generation: Int
    /// Partitions granted: assigned to this member and released by any previous owner.
    public var assignment: [TopicPartition]
    public var heartbeatIntervalMs: Int
    /// Assigned partitions still owned by another member.
    public var pendingPartitions: Int
}

/// A snapshot of a group for DescribeGroup and ListGroups.
public struct GroupSnapshot: Sendable {
    public struct Member: Sendable {
        public var memberId: String
        public var clientId: String?
        public var topics: [String]
        public var assignment: [TopicPartition]
        public var lastHeartbeatMsAgo: Int64
    }

    public enum State: String, Sendable { case empty, reconciling, stable }

    public var name: String
    public var state: State
    public var generation: Int
    public var members: [Member]
    public var subscribedPartitions: [TopicPartition]
    public var offsets: [TopicPartition: CommittedOffset]
}

/// Consumer groups: membership with session timeouts, assignment and its hand-over, commits
/// fenced by generation and ownership, and committed offsets kept durably in a compacted log
/// (Kafka's `__consumer_offsets`), replayed on start.
///
/// Hand-over is two-phase, as in Kafka's KIP-848 protocol: a partition moving from A to B is
/// granted to B only once A has reported (in a heartbeat) that it no longer owns it, or A is
/// gone. So two members never consume one partition at the same time.
public final class GroupCoordinator: Sendable {
    private struct Member {
        var id: String
        var clientId: String?
        var topics: [String]
        var sessionTimeoutMs: Int
        var lastSeen: Int64
        var owned: Set<TopicPartition> = []
        var target: Set<TopicPartition> = []
    }

    private struct Group {
        var members: [String: Member] = [:]
        var generation = 0
        var partitionCounts: [String: Int] = [:]
        var offsets: [TopicPartition: (committed: CommittedOffset, logOffset: Int64)] = [:]

        func granted(_ member: Member) -> Set<TopicPartition> {
            member.target.filter { partition in
                !members.values.contains { $0.id != member.id && $0.owned.contains(partition) }
            }
        }

        mutating func rebalance() {
            let next = GroupAssignor.assign(
                subscriptions: members.mapValues(\.topics), partitionCounts: partitionCounts,
                current: members.mapValues(\.target))
            var changed = false
            for (id, target) in next where members[id]!.target != target {
                members[id]!.target = target
                changed = true
            }
            if changed { generation += 1 }
        }
    }

    private struct OffsetKey: Codable, Hashable {
        var group: String
        var topic: String
        var partition: Int
    }

    private let offsetsLog: PartitionLog
    private let clock: any WallClock
    private let logger: Logger
    private let groups: Mutex<[String: Group]>

    init(offsetsLog: PartitionLog, clock: any WallClock, logger: Logger) throws {
        self.offsetsLog = offsetsLog
        self.clock = clock
        self.logger = logger
        var groups: [String: Group] = [:]
        var offset = offsetsLog.logStartOffset
        let decoder = JSONDecoder()
        while offset < offsetsLog.highWatermark {
            let read = try offsetsLog.read(from: offset, maxRecords: 10_000, maxBytes: 8 << 20)
            for record in read.records {
                guard let keyBytes = record.key, let key = try? decoder.decode(OffsetKey.self, from: Data(keyBytes)) else { continue }
                let partition = TopicPartition(topic: key.topic, partition: key.partition)
                if let value = record.value, let committed = try? decoder.decode(CommittedOffset.self, from: Data(value)) {
                    groups[key.group, default: Group()].offsets[partition] = (committed, record.offset)
                } else {
                    groups[key.group]?.offsets[partition] = nil
                }
            }
            offset = read.nextOffset
        }
        self.groups = Mutex(groups.filter { !$0.value.offsets.isEmpty })
    }

    // MARK: Membership

    /// Adds (or refreshes) a member and rebalances the group.
    public func join(
        group name: String, memberId: String?, clientId: String?, topics: [String], partitionCounts: [String: Int],
        sessionTimeoutMs: Int
    ) -> Membership {
        let now = clock.nowMilliseconds()
        return groups.withLock { groups in
            var group = groups[name] ?? Group()
            let id = memberId.flatMap { group.members[$0] != nil ? $0 : nil } ?? Self.newMemberId(clientId)
            var member = group.members[id] ?? Member(id: id, clientId: clientId, topics: [], sessionTimeoutMs: sessionTimeoutMs, lastSeen: now)
            member.topics = Array(Set(topics)).sorted()
            member.clientId = clientId ?? member.clientId
            member.sessionTimeoutMs = sessionTimeoutMs
            member.lastSeen = now
            group.members[id] = member
            group.partitionCounts.merge(partitionCounts) { _, new in new }
            group.rebalance()
            let membership = Self.grant(name, &group, id)
            groups[name] = group
            logger.info("member joined", metadata: ["group": "\(name)", "member": "\(id)", "generation": "\(group.generation)"])
            return membership
        }
    }

    /// Records what the member owns and that it is alive; answers with its grant now.
    public func heartbeat(group name: String, memberId: String, owned: Set<TopicPartition>) throws(BrokerError) -> Membership {
        let now = clock.nowMilliseconds()
        return try groups.withLock { groups throws(BrokerError) in
            guard var group = groups[name], var member = group.members[memberId] else {
                throw .unknownMember(group: name, memberId: memberId)
            }
            member.lastSeen = now
            member.owned = owned
            group.members[memberId] = member
            let membership = Self.grant(name, &group, memberId)
            groups[name] = group
            return membership
        }
    }

    public func leave(group name: String, memberId: String) {
        groups.withLock { groups in
            guard var group = groups[name], group.members.removeValue(forKey: memberId) != nil else { return }
            group.rebalance()
            groups[name] = group
            logger.info("member left", metadata: ["group": "\(name)", "member": "\(memberId)", "generation": "\(group.generation)"])
        }
    }

    /// Removes members whose session timed out and rebalances their groups.
    public func expireMembers() {
        let now = clock.nowMilliseconds()
        groups.withLock { groups in
            for (name, var group) in groups {
                let expired = group.members.values.filter { now - $0.lastSeen > Int64($0.sessionTimeoutMs) }.map(\.id)
                guard !expired.isEmpty else { continue }
                for id in expired { group.members[id] = nil }
                group.rebalance()
                groups[name] = group
                logger.info(
                    "members timed out", metadata: ["group": "\(name)", "members": "\(expired)", "generation": "\(group.generation)"])
            }
        }
    }

    private static func newMemberId(_ clientId: String?) -> String {
        (clientId ?? "member") + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    /// The member's grant; from now on it counts as owning what it was granted, until a
    /// heartbeat says otherwise.
    private static func grant(_ name: String, _ group: inout Group, _ id: String) -> Membership {
        let member = group.members[id]!
        let granted = group.granted(member)
        group.members[id]!.owned.formUnion(granted)
        return Membership(
            group: name, memberId: id, generation: group.generation, assignment: granted.sorted(),
            heartbeatIntervalMs: max(member.sessionTimeoutMs / 3, 100), pendingPartitions: member.target.count - granted.count)
    }

    // MARK: Offsets

    /// Stores offsets durably, after checking the committer may commit them.
    public func commit(
        group name: String, memberId: String?, generation: Int?, offsets: [TopicPartition: (offset: Int64, metadata: String?)]
    ) async throws {
        try groups.withLock { groups throws(BrokerError) in
            let group = groups[name] ?? Group()
            if let memberId {
                guard let member = group.members[memberId] else { throw .unknownMember(group: name, memberId: memberId) }
                let sent = generation ?? -1
                guard sent == group.generation else { throw .staleGeneration(group: name, sent: sent, current: group.generation) }
                let mine = member.owned.union(group.granted(member))
                for partition in offsets.keys.sorted() where !mine.contains(partition) {
                    throw .notOwner(group: name, topic: partition.topic, partition: partition.partition)
                }
            } else if let partition = offsets.keys.sorted().first, !group.members.isEmpty {
                throw .notOwner(group: name, topic: partition.topic, partition: partition.partition)
            }
        }
        let now = clock.nowMilliseconds()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let entries = offsets.sorted { $0.key < $1.key }
        var records: [Record] = []
        for (partition, value) in entries {
            let key = OffsetKey(group: name, topic: partition.topic, partition: partition.partition)
            let committed = CommittedOffset(offset: value.offset, metadata: value.metadata, committedAt: now)
            records.append(
                Record(timestamp: now, key: Array(try encoder.encode(key)), value: Array(try encoder.encode(committed))))
        }
        let appended = try await offsetsLog.append(records)
        groups.withLock { groups in
            var group = groups[name] ?? Group()
            for (i, (partition, value)) in entries.enumerated() {
                let logOffset = appended.baseOffset + Int64(i)
                if let existing = group.offsets[partition], existing.logOffset > logOffset { continue }
                group.offsets[partition] = (CommittedOffset(offset: value.offset, metadata: value.metadata, committedAt: now), logOffset)
            }
            groups[name] = group
        }
    }

    public func committedOffsets(group name: String, topic: String? = nil) -> [TopicPartition: CommittedOffset] {
        groups.withLock { groups in
            (groups[name]?.offsets ?? [:]).filter { topic == nil || $0.key.topic == topic }.mapValues(\.committed)
        }
    }

    /// Forgets a deleted topic: its committed offsets (with tombstones) and its partitions.
    func topicDeleted(_ topic: String) async throws {
        let doomed = groups.withLock { groups -> [(String, TopicPartition)] in
            var doomed: [(String, TopicPartition)] = []
            for (name, var group) in groups {
                for partition in group.offsets.keys where partition.topic == topic {
                    doomed.append((name, partition))
                    group.offsets[partition] = nil
                }
                if group.partitionCounts.removeValue(forKey: topic) != nil { group.rebalance() }
                groups[name] = group.members.isEmpty && group.offsets.isEmpty ? nil : group
            }
            return doomed
        }
        guard !doomed.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let now = clock.nowMilliseconds()
        let tombstones = try doomed.map { name, partition in
            Record(
                timestamp: now,
                key: Array(try encoder.encode(OffsetKey(group: name, topic: partition.topic, partition: partition.partition))),
                value: nil)
        }
        _ = try await offsetsLog.append(tombstones)
    }

    // MARK: Describe

    public func snapshot(group name: String) -> GroupSnapshot? {
        let now = clock.nowMilliseconds()
        return groups.withLock { groups in
            guard let group = groups[name] else { return nil }
            let members = group.members.values.sorted { $0.id < $1.id }.map { member in
                GroupSnapshot.Member(
                    memberId: member.id, clientId: member.clientId, topics: member.topics,
                    assignment: group.granted(member).sorted(), lastHeartbeatMsAgo: now - member.lastSeen)
            }
            let pending = group.members.values.contains { group.granted($0) != $0.target || $0.owned != $0.target }
            let subscribed = Set(group.members.values.flatMap(\.topics)).flatMap { topic in
                (0..<(group.partitionCounts[topic] ?? 0)).map { TopicPartition(topic: topic, partition: $0) }
            }
            return GroupSnapshot(
                name: name, state: group.members.isEmpty ? .empty : pending ? .reconciling : .stable, generation: group.generation,
                members: members, subscribedPartitions: subscribed.sorted(), offsets: group.offsets.mapValues(\.committed))
        }
    }

    public func groupNames() -> [String] { groups.withLock { Array($0.keys) }.sorted() }

    // MARK: Upkeep

    func maintain() {
        do {
            try offsetsLog.compact()
            try offsetsLog.checkpoint()
        } catch {
            logger.error("offsets log maintenance failed", metadata: ["error": "\(error)"])
        }
    }

    func close() { try? offsetsLog.close() }
}
