import KafkaWire

/// Kafka's classic consumer-group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), the one
/// every Kafka client speaks by default: members join, the broker picks a protocol they all
/// support and a leader, the leader's client computes the assignment and hands it back through
/// SyncGroup, and the broker passes each member its share. The broker never reads assignments.
///
/// States per group: empty → preparing a rebalance (waiting for every known member to join
/// again, up to the longest rebalance timeout) → completing it (waiting for the leader's
/// SyncGroup) → stable. A member silent past its session timeout, or that does not join again
/// in time, is dropped and the group rebalances. Join and Sync park their caller until the
/// group moves on, as Kafka does; ``tick(now:)`` drives the timers.
///
/// Separate from the jframe port's groups (`GroupCoordinator`, with server-side assignment);
/// committed offsets are shared (see `KafkaAPIs.offsetCommit`).
actor ClassicGroups {
    enum State: String {
        case empty = "Empty"
        case preparingRebalance = "PreparingRebalance"
        case completingRebalance = "CompletingRebalance"
        case stable = "Stable"
    }

    struct Limits {
        var minSessionTimeoutMs: Int32 = 6_000
        var maxSessionTimeoutMs: Int32 = 1_800_000
    }

    struct JoinRequest {
        var group: String
        var memberId: String
        var instanceId: String?
        var clientId: String
        var clientHost: String
        var sessionTimeoutMs: Int32
        var rebalanceTimeoutMs: Int32
        var protocolType: String
        var protocols: [(name: String, metadata: [UInt8])]
        /// JoinGroup v4+: a member without an id is given one and asked to join again with it (KIP-394).
        var requiresKnownMemberId: Bool
    }

    struct JoinResult: Sendable {
        var error: KafkaErrorCode = .none
        var generation: Int32 = -1
        var protocolType: String?
        var protocolName: String?
        var leader = ""
        var memberId = ""
        /// For the leader: every member's id, instance id and metadata for the chosen protocol.
        var members: [(id: String, instanceId: String?, metadata: [UInt8])] = []
    }

    struct SyncResult: Sendable {
        var error: KafkaErrorCode = .none
        var protocolType: String?
        var protocolName: String?
        var assignment: [UInt8] = []
    }

    struct Member {
        var id: String
        var instanceId: String?
        var clientId: String
        var clientHost: String
        var sessionTimeout: Duration
        var rebalanceTimeout: Duration
        var protocols: [(name: String, metadata: [UInt8])]
        var lastHeard: ContinuousClock.Instant
        var joinWaiter: CheckedContinuation<JoinResult, Never>?
        var syncWaiter: CheckedContinuation<SyncResult, Never>?
        var assignment: [UInt8] = []
    }

    struct Group {
        var state = State.empty
        var generation: Int32 = 0
        var protocolType: String?
        var protocolName: String?
        var leader: String?
        var members: [String: Member] = [:]
        /// Insertion order, so the first member leads and listings are stable.
        var order: [String] = []
        var rebalanceDeadline: ContinuousClock.Instant?
        /// Ids handed out with MEMBER_ID_REQUIRED, until they join or their session times out.
        var pending: [String: ContinuousClock.Instant] = [:]

        var supportedByAll: [String] {
            guard let first = order.first.flatMap({ members[$0] }) else { return [] }
            return first.protocols.map(\.name).filter { name in members.values.allSatisfy { $0.protocols.contains { $0.name == name } } }
        }
    }

    private var groups: [String: Group] = [:]
    private let limits: Limits
    private var nextId = 0

    init(limits: Limits = Limits()) { self.limits = limits }

    // MARK: Join

    func join(_ request: JoinRequest, now: ContinuousClock.Instant = .now) async -> JoinResult {
        guard (limits.minSessionTimeoutMs...limits.maxSessionTimeoutMs).contains(request.sessionTimeoutMs) else {
            return JoinResult(error: .invalidSessionTimeout, memberId: request.memberId)
        }
        guard !request.protocolType.isEmpty, !request.protocols.isEmpty else {
            return JoinResult(error: .inconsistentGroupProtocol, memberId: request.memberId)
        }
        var group = groups[request.group] ?? Group()
        if !group.members.isEmpty {
            let shared = group.supportedByAll.filter { name in request.protocols.contains { $0.name == name } }
            if group.protocolType != request.protocolType || shared.isEmpty {
                return JoinResult(error: .inconsistentGroupProtocol, memberId: request.memberId)
            }
        }
        var id = request.memberId
        if id.isEmpty {
            nextId += 1
            id = "\(request.clientId.isEmpty ? "member" : request.clientId)-\(nextId)-\(UInt64.random(in: 0 ... .max))"
            if request.requiresKnownMemberId {
                group.pending[id] = now + .milliseconds(Int(request.sessionTimeoutMs))
                groups[request.group] = group
                return JoinResult(error: .memberIdRequired, memberId: id)
            }
        } else if group.members[id] == nil {
            guard group.pending.removeValue(forKey: id) != nil else { return JoinResult(error: .unknownMemberId, memberId: id) }
        }
        let member = Member(
            id: id, instanceId: request.instanceId, clientId: request.clientId, clientHost: request.clientHost,
            sessionTimeout: .milliseconds(Int(request.sessionTimeoutMs)),
            rebalanceTimeout: .milliseconds(Int(max(request.rebalanceTimeoutMs, request.sessionTimeoutMs))),
            protocols: request.protocols, lastHeard: now, assignment: group.members[id]?.assignment ?? [])
        if let old = group.members[id] {
            old.joinWaiter?.resume(returning: JoinResult(error: .unknownMemberId, memberId: id))
            old.syncWaiter?.resume(returning: SyncResult(error: .rebalanceInProgress))
        } else {
            group.order.append(id)
        }
        group.members[id] = member
        group.protocolType = request.protocolType
        groups[request.group] = group
        return await withCheckedContinuation { continuation in
            groups[request.group]!.members[id]!.joinWaiter = continuation
            prepareRebalance(request.group, now: now)
            completeJoinIfReady(request.group, now: now)
        }
    }

    private func prepareRebalance(_ name: String, now: ContinuousClock.Instant) {
        guard var group = groups[name], group.state != .preparingRebalance else { return }
        // Members parked in SyncGroup learn of the new round and join again.
        for id in group.order {
            group.members[id]?.syncWaiter?.resume(returning: SyncResult(error: .rebalanceInProgress))
            group.members[id]?.syncWaiter = nil
        }
        group.state = .preparingRebalance
        group.rebalanceDeadline = now + (group.members.values.map(\.rebalanceTimeout).max() ?? .seconds(60))
        groups[name] = group
    }

    /// Ends the join phase once every member has joined again, or at the deadline without
    /// those that have not.
    private func completeJoinIfReady(_ name: String, now: ContinuousClock.Instant) {
        guard var group = groups[name], group.state == .preparingRebalance else { return }
        let waiting = group.members.values.filter { $0.joinWaiter == nil }
        if !waiting.isEmpty {
            guard let deadline = group.rebalanceDeadline, now >= deadline else { return }
            for member in waiting {
                group.members[member.id] = nil
                group.order.removeAll { $0 == member.id }
            }
        }
        guard !group.members.isEmpty else {
            group.state = .empty
            group.leader = nil
            group.protocolName = nil
            group.generation += 1
            groups[name] = group
            return
        }
        group.generation += 1
        group.protocolName = Self.vote(group)
        if group.leader.map({ group.members[$0] == nil }) ?? true { group.leader = group.order.first }
        group.state = .completingRebalance
        group.rebalanceDeadline = nil
        let leader = group.leader!
        let protocolName = group.protocolName
        let everyone = group.order.compactMap { group.members[$0] }.map { member in
            (id: member.id, instanceId: member.instanceId, metadata: member.protocols.first { $0.name == protocolName }?.metadata ?? [])
        }
        for id in group.order {
            guard let waiter = group.members[id]?.joinWaiter else { continue }
            group.members[id]!.joinWaiter = nil
            group.members[id]!.lastHeard = now
            waiter.resume(
                returning: JoinResult(
                    generation: group.generation, protocolType: group.protocolType, protocolName: protocolName, leader: leader, memberId: id,
                    members: id == leader ? everyone : []))
        }
        groups[name] = group
    }

    /// Each member votes for the first of its protocols that every member supports; most votes win.
    static func vote(_ group: Group) -> String? {
        let candidates = group.supportedByAll
        var votes: [String: Int] = [:]
        for member in group.members.values {
            if let choice = member.protocols.first(where: { candidates.contains($0.name) }) { votes[choice.name, default: 0] += 1 }
        }
        return candidates.max { (votes[$0] ?? 0) < (votes[$1] ?? 0) }
    }

    // MARK: Sync

    func sync(group name: String, generation: Int32, memberId: String, assignments: [(String, [UInt8])], now: ContinuousClock.Instant = .now) async
        -> SyncResult
    {
        guard var group = groups[name], group.members[memberId] != nil else { return SyncResult(error: .unknownMemberId) }
        guard generation == group.generation else { return SyncResult(error: .illegalGeneration) }
        group.members[memberId]!.lastHeard = now
        switch group.state {
        case .empty, .preparingRebalance:
            groups[name] = group
            return SyncResult(error: .rebalanceInProgress)
        case .stable:
            groups[name] = group
            return SyncResult(protocolType: group.protocolType, protocolName: group.protocolName, assignment: group.members[memberId]!.assignment)
        case .completingRebalance:
            if memberId == group.leader {
                for id in group.order { group.members[id]!.assignment = [] }
                for (id, assignment) in assignments where group.members[id] != nil { group.members[id]!.assignment = assignment }
                group.state = .stable
                for id in group.order {
                    guard let waiter = group.members[id]?.syncWaiter else { continue }
                    group.members[id]!.syncWaiter = nil
                    waiter.resume(
                        returning: SyncResult(
                            protocolType: group.protocolType, protocolName: group.protocolName, assignment: group.members[id]!.assignment))
                }
                groups[name] = group
                return SyncResult(protocolType: group.protocolType, protocolName: group.protocolName, assignment: group.members[memberId]!.assignment)
            }
            groups[name] = group
            return await withCheckedContinuation { continuation in groups[name]!.members[memberId]!.syncWaiter = continuation }
        }
    }

    // MARK: Heartbeat, leave, timers

    func heartbeat(group name: String, generation: Int32, memberId: String, now: ContinuousClock.Instant = .now) -> KafkaErrorCode {
        guard var group = groups[name], group.members[memberId] != nil else { return .unknownMemberId }
        group.members[memberId]!.lastHeard = now
        groups[name] = group
        if group.state == .preparingRebalance { return .rebalanceInProgress }
        guard generation == group.generation else { return .illegalGeneration }
        return .none
    }

    func leave(group name: String, memberId: String, now: ContinuousClock.Instant = .now) -> KafkaErrorCode {
        guard var group = groups[name], let member = group.members.removeValue(forKey: memberId) else { return .unknownMemberId }
        group.order.removeAll { $0 == memberId }
        member.joinWaiter?.resume(returning: JoinResult(error: .unknownMemberId, memberId: memberId))
        member.syncWaiter?.resume(returning: SyncResult(error: .unknownMemberId))
        groups[name] = group
        membersChanged(name, now: now)
        return .none
    }

    private func membersChanged(_ name: String, now: ContinuousClock.Instant) {
        guard let group = groups[name] else { return }
        if group.members.isEmpty {
            groups[name]!.state = .empty
            groups[name]!.leader = nil
            if group.state != .empty { groups[name]!.generation += 1 }
            return
        }
        prepareRebalance(name, now: now)
        completeJoinIfReady(name, now: now)
    }

    /// Drops members silent past their session timeout (those parked in Join or Sync are not
    /// silent), forgets unused pending ids, and ends join phases whose deadline passed.
    func tick(now: ContinuousClock.Instant = .now) {
        for name in Array(groups.keys) {
            var group = groups[name]!
            group.pending = group.pending.filter { $0.value > now }
            let expired = group.members.values.filter { member in
                member.joinWaiter == nil && member.syncWaiter == nil && member.lastHeard + member.sessionTimeout < now
            }
            for member in expired {
                group.members[member.id] = nil
                group.order.removeAll { $0 == member.id }
            }
            groups[name] = group
            if !expired.isEmpty { membersChanged(name, now: now) }
            completeJoinIfReady(name, now: now)
        }
    }

    // MARK: Offsets and listings

    /// Whether a commit from this member at this generation may go through (Kafka's rules: a
    /// simple consumer, generation -1 and no member id, only while the group has no members).
    func commitAllowed(group name: String, generation: Int32, memberId: String) -> KafkaErrorCode {
        let group = groups[name] ?? Group()
        if generation < 0 && memberId.isEmpty {
            return group.members.isEmpty ? .none : .unknownMemberId
        }
        guard group.members[memberId] != nil else { return .unknownMemberId }
        guard generation == group.generation else { return .illegalGeneration }
        return group.state == .stable ? .none : .rebalanceInProgress
    }

    func hasMembers(_ name: String) -> Bool { !(groups[name]?.members.isEmpty ?? true) }

    struct Description: Sendable {
        struct Member: Sendable {
            var id: String
            var instanceId: String?
            var clientId: String
            var clientHost: String
            var metadata: [UInt8]
            var assignment: [UInt8]
        }

        var name: String
        var state: String
        var protocolType: String
        var protocolName: String
        var members: [Member]
    }

    func describe(_ name: String) -> Description? {
        guard let group = groups[name] else { return nil }
        return Description(
            name: name, state: group.state.rawValue, protocolType: group.protocolType ?? "", protocolName: group.protocolName ?? "",
            members: group.order.compactMap { group.members[$0] }.map { member in
                Description.Member(
                    id: member.id, instanceId: member.instanceId, clientId: member.clientId, clientHost: member.clientHost,
                    metadata: member.protocols.first { $0.name == group.protocolName }?.metadata ?? [], assignment: member.assignment)
            })
    }

    func names() -> [String] { groups.keys.sorted() }
}
