import KafkaWire
import Testing

@testable import KafkaListener

/// The classic group protocol's state machine, its timers driven by explicit instants.
@Suite struct ClassicGroupsTests {
    let start = ContinuousClock.now

    func request(_ member: String, protocols: [String] = ["range", "roundrobin"], session: Int32 = 10_000, knownId: Bool = false)
        -> ClassicGroups.JoinRequest
    {
        ClassicGroups.JoinRequest(
            group: "g", memberId: member, instanceId: nil, clientId: "client", clientHost: "/127.0.0.1", sessionTimeoutMs: session,
            rebalanceTimeoutMs: 20_000, protocolType: "consumer", protocols: protocols.map { ($0, Array($0.utf8)) },
            requiresKnownMemberId: knownId)
    }

    @Test func aLoneMemberJoinsSyncsAndIsStable() async {
        let groups = ClassicGroups()
        let joined = await groups.join(request(""), now: start)
        #expect(joined.error == .none && joined.generation == 1 && joined.leader == joined.memberId)
        #expect(joined.protocolName == "range" && joined.members.map(\.id) == [joined.memberId])
        let synced = await groups.sync(group: "g", generation: 1, memberId: joined.memberId, assignments: [(joined.memberId, [1, 2])], now: start)
        #expect(synced.error == .none && synced.assignment == [1, 2])
        #expect(await groups.heartbeat(group: "g", generation: 1, memberId: joined.memberId, now: start) == .none)
        #expect(await groups.heartbeat(group: "g", generation: 0, memberId: joined.memberId, now: start) == .illegalGeneration)
        #expect(await groups.heartbeat(group: "g", generation: 1, memberId: "stranger", now: start) == .unknownMemberId)
        #expect(await groups.commitAllowed(group: "g", generation: 1, memberId: joined.memberId) == .none)
        #expect(await groups.commitAllowed(group: "g", generation: -1, memberId: "") == .unknownMemberId, "no simple commits while it has members")
        #expect(await groups.describe("g")?.state == "Stable")
    }

    @Test func joinGroupV4AsksForAKnownMemberIdFirst() async {
        let groups = ClassicGroups()
        let first = await groups.join(request("", knownId: true), now: start)
        #expect(first.error == .memberIdRequired && !first.memberId.isEmpty)
        #expect(await groups.join(request("made-up", knownId: true), now: start).error == .unknownMemberId)
        let second = await groups.join(request(first.memberId, knownId: true), now: start)
        #expect(second.error == .none && second.memberId == first.memberId)
        // An id handed out and never used expires with its session timeout.
        let unused = await groups.join(request("", knownId: true), now: start)
        await groups.tick(now: start + .seconds(11))
        #expect(await groups.join(request(unused.memberId, knownId: true), now: start + .seconds(11)).error == .unknownMemberId)
    }

    @Test func aSecondMemberRebalancesTheGroupAndTheLeaderAssignsBoth() async throws {
        let groups = ClassicGroups()
        let a = await groups.join(request(""), now: start)
        _ = await groups.sync(group: "g", generation: 1, memberId: a.memberId, assignments: [(a.memberId, [0])], now: start)
        // b joins: the join waits until a joins again (a learns of the rebalance from its heartbeat).
        async let bJoined = groups.join(request(""), now: start)
        try await Task.sleep(for: .milliseconds(50))
        #expect(await groups.heartbeat(group: "g", generation: 1, memberId: a.memberId, now: start) == .rebalanceInProgress)
        let aAgain = await groups.join(request(a.memberId), now: start)
        let b = await bJoined
        #expect(aAgain.generation == 2 && b.generation == 2)
        #expect(aAgain.leader == a.memberId && b.leader == a.memberId, "the leader stays the leader")
        #expect(aAgain.members.count == 2 && b.members.isEmpty, "only the leader sees the members")
        // b's sync waits for the leader's.
        async let bSynced = groups.sync(group: "g", generation: 2, memberId: b.memberId, assignments: [], now: start)
        try await Task.sleep(for: .milliseconds(50))
        let aSynced = await groups.sync(
            group: "g", generation: 2, memberId: a.memberId, assignments: [(a.memberId, [0]), (b.memberId, [1])], now: start)
        #expect(aSynced.assignment == [0])
        #expect(await bSynced.assignment == [1])
        #expect(await groups.describe("g")?.members.map(\.assignment) == [[0], [1]])
    }

    @Test func aSilentMemberIsDroppedAndALeaverRebalancesAtOnce() async throws {
        let groups = ClassicGroups(limits: .init(minSessionTimeoutMs: 1_000, maxSessionTimeoutMs: 60_000))
        let a = await groups.join(request("", session: 3_000), now: start)
        _ = await groups.sync(group: "g", generation: 1, memberId: a.memberId, assignments: [], now: start)
        async let bJoined = groups.join(request("", session: 30_000), now: start)
        try await Task.sleep(for: .milliseconds(50))
        // a neither heartbeats nor joins again: past its session timeout it is dropped, and the
        // join completes with b alone, b now leading.
        await groups.tick(now: start + .seconds(2))
        #expect(await groups.describe("g")?.state == "PreparingRebalance")
        await groups.tick(now: start + .seconds(4))
        let b = await bJoined
        #expect(b.generation == 2 && b.leader == b.memberId && b.members.map(\.id) == [b.memberId])
        #expect(await groups.heartbeat(group: "g", generation: 1, memberId: a.memberId, now: start + .seconds(4)) == .unknownMemberId)
        _ = await groups.sync(group: "g", generation: 2, memberId: b.memberId, assignments: [], now: start + .seconds(4))
        // b goes silent past its session timeout: dropped, the group is empty.
        await groups.tick(now: start + .seconds(40))
        #expect(await groups.describe("g")?.state == "Empty")
        #expect(await groups.commitAllowed(group: "g", generation: -1, memberId: "") == .none, "an empty group takes simple commits")
        // A leave ends a pending join at once: d waits for c to join again, c leaves instead.
        let later = start + .seconds(41)
        let c = await groups.join(request(""), now: later)
        _ = await groups.sync(group: "g", generation: c.generation, memberId: c.memberId, assignments: [], now: later)
        async let dJoined = groups.join(request(""), now: later)
        try await Task.sleep(for: .milliseconds(50))
        #expect(await groups.leave(group: "g", memberId: c.memberId, now: later) == .none)
        let d = await dJoined
        #expect(d.error == .none && d.generation == c.generation + 1 && d.leader == d.memberId)
        #expect(await groups.leave(group: "g", memberId: c.memberId, now: later) == .unknownMemberId)
    }

    @Test func membersMustShareAProtocolAndSessionTimeoutsAreBounded() async {
        let groups = ClassicGroups(limits: .init(minSessionTimeoutMs: 6_000, maxSessionTimeoutMs: 60_000))
        #expect(await groups.join(request("", session: 1_000), now: start).error == .invalidSessionTimeout)
        #expect(await groups.join(request("", session: 100_000), now: start).error == .invalidSessionTimeout)
        let a = await groups.join(request("", protocols: ["range"]), now: start)
        #expect(a.error == .none)
        #expect(await groups.join(request("", protocols: ["sticky"]), now: start).error == .inconsistentGroupProtocol)
    }
}
