import LogStorage
import Logging
import TestSupport
import Testing
import WallTime

@testable import BrokerCore

/// The group coordinator on a manual clock: rebalance, fencing by generation, and session
/// expiry driven by moving the clock, not by sleeping.
@Suite struct GroupCoordinatorTests {
    let directory = TemporaryDirectory(prefix: "groups")
    let clock = ManualWallClock(1_763_899_200_000)

    func coordinator() throws -> GroupCoordinator {
        var config = LogConfig()
        config.cleanupPolicy = .compact
        let log = try PartitionLog(directory: directory.path + "/consumer-offsets", config: config, clock: clock)
        return try GroupCoordinator(offsetsLog: log, clock: clock, logger: Logger(label: "test"))
    }

    func partitions(_ numbers: [Int]) -> Set<TopicPartition> { Set(numbers.map { TopicPartition(topic: "t", partition: $0) }) }

    func join(_ groups: GroupCoordinator, _ member: String?, timeoutMs: Int = 10_000) -> Membership {
        groups.join(group: "g", memberId: member, clientId: "c", topics: ["t"], partitionCounts: ["t": 4], sessionTimeoutMs: timeoutMs)
    }

    @Test func aSecondMemberGetsItsShareOnlyOnceTheFirstHasReleasedIt() throws {
        defer { directory.cleanup() }
        let groups = try coordinator()
        let a = join(groups, nil)
        #expect(Set(a.assignment) == partitions([0, 1, 2, 3]))
        _ = try groups.heartbeat(group: "g", memberId: a.memberId, owned: partitions([0, 1, 2, 3]))

        let b = join(groups, nil)
        #expect(b.generation == a.generation + 1)
        #expect(b.assignment.isEmpty && b.pendingPartitions == 2, "its partitions are still A's")
        let aNow = try groups.heartbeat(group: "g", memberId: a.memberId, owned: partitions([0, 1, 2, 3]))
        #expect(aNow.assignment.count == 2, "A is told to keep two")
        let aKeeps = Set(aNow.assignment)
        _ = try groups.heartbeat(group: "g", memberId: a.memberId, owned: aKeeps)
        let bNow = try groups.heartbeat(group: "g", memberId: b.memberId, owned: [])
        #expect(Set(bNow.assignment) == partitions([0, 1, 2, 3]).subtracting(aKeeps))
        #expect(bNow.pendingPartitions == 0)
    }

    @Test func commitsAreFencedByGenerationAndOwnership() async throws {
        defer { directory.cleanup() }
        let groups = try coordinator()
        let a = join(groups, nil)
        _ = try groups.heartbeat(group: "g", memberId: a.memberId, owned: partitions([0, 1, 2, 3]))
        try await groups.commit(
            group: "g", memberId: a.memberId, generation: a.generation, offsets: [TopicPartition(topic: "t", partition: 0): (5, nil)])
        #expect(groups.committedOffsets(group: "g")[TopicPartition(topic: "t", partition: 0)]?.offset == 5)

        let b = join(groups, nil)
        await #expect(throws: BrokerError.staleGeneration(group: "g", sent: a.generation, current: b.generation)) {
            try await groups.commit(
                group: "g", memberId: a.memberId, generation: a.generation, offsets: [TopicPartition(topic: "t", partition: 0): (6, nil)])
        }
        let aNow = try groups.heartbeat(group: "g", memberId: a.memberId, owned: partitions([0, 1, 2, 3]))
        _ = try groups.heartbeat(group: "g", memberId: a.memberId, owned: Set(aNow.assignment))
        let notMine = try #require(partitions([0, 1, 2, 3]).subtracting(aNow.assignment).min())
        await #expect(throws: BrokerError.notOwner(group: "g", topic: "t", partition: notMine.partition)) {
            try await groups.commit(group: "g", memberId: a.memberId, generation: b.generation, offsets: [notMine: (7, nil)])
        }
        #expect(groups.committedOffsets(group: "g")[TopicPartition(topic: "t", partition: 0)]?.offset == 5, "nothing fenced was stored")
    }

    @Test func aMemberSilentForItsSessionTimeoutIsRemovedAndItsPartitionsMove() throws {
        defer { directory.cleanup() }
        let groups = try coordinator()
        let a = join(groups, nil, timeoutMs: 30_000)
        let b = join(groups, nil, timeoutMs: 10_000)
        _ = try groups.heartbeat(group: "g", memberId: a.memberId, owned: [])
        _ = try groups.heartbeat(group: "g", memberId: b.memberId, owned: [])

        clock.advance(by: 6_000)
        _ = try groups.heartbeat(group: "g", memberId: a.memberId, owned: [])
        groups.expireMembers()
        #expect(throws: Never.self) { try groups.heartbeat(group: "g", memberId: b.memberId, owned: []) }

        clock.advance(by: 10_001)
        _ = try groups.heartbeat(group: "g", memberId: a.memberId, owned: [])
        groups.expireMembers()
        #expect(throws: BrokerError.unknownMember(group: "g", memberId: b.memberId)) {
            try groups.heartbeat(group: "g", memberId: b.memberId, owned: [])
        }
        let aNow = try groups.heartbeat(group: "g", memberId: a.memberId, owned: [])
        #expect(Set(aNow.assignment) == partitions([0, 1, 2, 3]), "B's partitions went back to A")
    }
}
