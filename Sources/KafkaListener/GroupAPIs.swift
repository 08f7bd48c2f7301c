import BrokerCore
import KafkaMessages
import KafkaWire
import LogStorage

// FindCoordinator (10), JoinGroup (11), Heartbeat (12), LeaveGroup (13), SyncGroup (14),
// OffsetCommit (8), OffsetFetch (9), DescribeGroups (15), ListGroups (16): the classic
// consumer-group protocol over ``ClassicGroups``, offsets in the broker's offsets log.

extension KafkaAPIs {
    // MARK: FindCoordinator

    /// This node coordinates every group. Transactions (key type 1) are not served.
    func findCoordinator(_ request: FindCoordinatorRequest, version: Int16, connection: KafkaConnectionInfo) -> FindCoordinatorResponse {
        let host = settings.advertisedAddress?.host ?? connection.localHost
        let port = Int32(settings.advertisedAddress?.port ?? connection.localPort)
        let unsupported = request.keyType != 0
        var response = FindCoordinatorResponse()
        if version >= 4 {
            response.coordinators = request.coordinatorKeys.map { key in
                var coordinator = FindCoordinatorResponse.Coordinator()
                coordinator.key = key
                coordinator.nodeId = unsupported ? -1 : Self.nodeId
                coordinator.host = unsupported ? "" : host
                coordinator.port = unsupported ? -1 : port
                if unsupported {
                    coordinator.errorCode = KafkaErrorCode.coordinatorNotAvailable.rawValue
                    coordinator.errorMessage = "transactions are not served"
                }
                return coordinator
            }
        } else if unsupported {
            response.errorCode = KafkaErrorCode.coordinatorNotAvailable.rawValue
            response.errorMessage = "transactions are not served"
            response.nodeId = -1
            response.port = -1
        } else {
            response.nodeId = Self.nodeId
            response.host = host
            response.port = port
        }
        return response
    }

    // MARK: Join, Sync, Heartbeat, Leave

    func joinGroup(_ request: JoinGroupRequest, version: Int16, clientId: String, connection: KafkaConnectionInfo) async -> JoinGroupResponse {
        var response = JoinGroupResponse()
        if broker.groups.snapshot(group: request.groupId).map({ !$0.members.isEmpty }) ?? false {
            // A jframe group of that name has members: two coordinators cannot fence one group.
            response.errorCode = KafkaErrorCode.inconsistentGroupProtocol.rawValue
            response.memberId = request.memberId
            return response
        }
        let result = await groups.join(
            ClassicGroups.JoinRequest(
                group: request.groupId, memberId: request.memberId, instanceId: request.groupInstanceId, clientId: clientId,
                clientHost: "/\(connection.peerHost)", sessionTimeoutMs: request.sessionTimeoutMs,
                rebalanceTimeoutMs: version >= 1 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs,
                protocolType: request.protocolType, protocols: request.protocols.map { ($0.name, $0.metadata) },
                requiresKnownMemberId: version >= 4 && request.groupInstanceId == nil))
        response.errorCode = result.error.rawValue
        response.generationId = result.generation
        response.protocolType = result.protocolType
        response.protocolName = result.protocolName ?? (version >= 7 ? nil : "")
        response.leader = result.leader
        response.memberId = result.memberId
        response.members = result.members.map { member in
            var entry = JoinGroupResponse.JoinGroupResponseMember()
            entry.memberId = member.id
            entry.groupInstanceId = member.instanceId
            entry.metadata = member.metadata
            return entry
        }
        return response
    }

    func syncGroup(_ request: SyncGroupRequest, version: Int16) async -> SyncGroupResponse {
        let result = await groups.sync(
            group: request.groupId, generation: request.generationId, memberId: request.memberId,
            assignments: request.assignments.map { ($0.memberId, $0.assignment) })
        var response = SyncGroupResponse()
        response.errorCode = result.error.rawValue
        response.protocolType = result.protocolType
        response.protocolName = result.protocolName
        response.assignment = result.assignment
        return response
    }

    func heartbeat(_ request: HeartbeatRequest, version: Int16) async -> HeartbeatResponse {
        var response = HeartbeatResponse()
        response.errorCode = await groups.heartbeat(group: request.groupId, generation: request.generationId, memberId: request.memberId).rawValue
        return response
    }

    func leaveGroup(_ request: LeaveGroupRequest, version: Int16) async -> LeaveGroupResponse {
        var response = LeaveGroupResponse()
        if version < 3 {
            response.errorCode = await groups.leave(group: request.groupId, memberId: request.memberId).rawValue
            return response
        }
        var results: [LeaveGroupResponse.MemberResponse] = []
        for member in request.members {
            var result = LeaveGroupResponse.MemberResponse()
            result.memberId = member.memberId
            result.groupInstanceId = member.groupInstanceId
            result.errorCode = await groups.leave(group: request.groupId, memberId: member.memberId).rawValue
            results.append(result)
        }
        response.members = results
        return response
    }

    // MARK: Offsets

    /// Fenced here by the classic group's generation and member, then stored through the
    /// broker's offsets log (durable before the answer, replayed on start): the same committed
    /// offsets `cqrs groups describe` shows.
    func offsetCommit(_ request: OffsetCommitRequest, version: Int16) async -> OffsetCommitResponse {
        var response = OffsetCommitResponse()
        func answer(_ code: (String, Int32) -> KafkaErrorCode) -> [OffsetCommitResponse.OffsetCommitResponseTopic] {
            request.topics.map { topic in
                var entry = OffsetCommitResponse.OffsetCommitResponseTopic()
                entry.name = topic.name
                entry.partitions = topic.partitions.map { partition in
                    var result = OffsetCommitResponse.OffsetCommitResponseTopic.OffsetCommitResponsePartition()
                    result.partitionIndex = partition.partitionIndex
                    result.errorCode = code(topic.name, partition.partitionIndex).rawValue
                    return result
                }
                return entry
            }
        }
        let fenced = await groups.commitAllowed(group: request.groupId, generation: request.generationIdOrMemberEpoch, memberId: request.memberId)
        guard fenced == .none else {
            response.topics = answer { _, _ in fenced }
            return response
        }
        var offsets: [TopicPartition: (offset: Int64, metadata: String?)] = [:]
        var unknown: Set<TopicPartition> = []
        for topic in request.topics {
            let partitions = (try? broker.topic(topic.name))?.partitions.count ?? 0
            for partition in topic.partitions {
                let key = TopicPartition(topic: topic.name, partition: Int(partition.partitionIndex))
                if partition.partitionIndex < 0 || Int(partition.partitionIndex) >= partitions {
                    unknown.insert(key)
                } else {
                    offsets[key] = (partition.committedOffset, partition.committedMetadata)
                }
            }
        }
        var failure = KafkaErrorCode.none
        if !offsets.isEmpty {
            do {
                try await broker.groups.commit(group: request.groupId, memberId: nil, generation: nil, offsets: offsets)
            } catch BrokerError.notOwner {
                failure = .inconsistentGroupProtocol  // a jframe group of that name has members
            } catch {
                logger.error("a Kafka offset commit failed", metadata: ["group": "\(request.groupId)", "error": "\(error)"])
                failure = .kafkaStorageError
            }
        }
        response.topics = answer { topic, partition in
            unknown.contains(TopicPartition(topic: topic, partition: Int(partition))) ? .unknownTopicOrPartition : failure
        }
        return response
    }

    func offsetFetch(_ request: OffsetFetchRequest, version: Int16) -> OffsetFetchResponse {
        var response = OffsetFetchResponse()
        let committed = broker.groups.committedOffsets(group: request.groupId)
        let wanted: [(String, [Int32])] =
            request.topics.map { topics in topics.map { ($0.name, $0.partitionIndexes) } }
            ?? Dictionary(grouping: committed.keys, by: \.topic).sorted { $0.key < $1.key }.map { topic, partitions in
                (topic, partitions.map { Int32($0.partition) }.sorted())
            }
        response.topics = wanted.map { name, partitions in
            var topic = OffsetFetchResponse.OffsetFetchResponseTopic()
            topic.name = name
            topic.partitions = partitions.map { index in
                var partition = OffsetFetchResponse.OffsetFetchResponseTopic.OffsetFetchResponsePartition()
                partition.partitionIndex = index
                partition.committedLeaderEpoch = -1
                if let offset = committed[TopicPartition(topic: name, partition: Int(index))] {
                    partition.committedOffset = offset.offset
                    partition.metadata = offset.metadata ?? ""
                } else {
                    partition.committedOffset = -1
                    partition.metadata = ""
                }
                return partition
            }
            return topic
        }
        return response
    }

    // MARK: DescribeGroups, ListGroups

    func describeGroups(_ request: DescribeGroupsRequest, version: Int16) async -> DescribeGroupsResponse {
        var response = DescribeGroupsResponse()
        var described: [DescribeGroupsResponse.DescribedGroup] = []
        for name in request.groups {
            var group = DescribeGroupsResponse.DescribedGroup()
            group.groupId = name
            group.authorizedOperations = Int32.min
            if let description = await groups.describe(name) {
                group.groupState = description.state
                group.protocolType = description.protocolType
                group.protocolData = description.protocolName
                group.members = description.members.map { member in
                    var entry = DescribeGroupsResponse.DescribedGroup.DescribedGroupMember()
                    entry.memberId = member.id
                    entry.groupInstanceId = member.instanceId
                    entry.clientId = member.clientId
                    entry.clientHost = member.clientHost
                    entry.memberMetadata = member.metadata
                    entry.memberAssignment = member.assignment
                    return entry
                }
            } else {
                group.groupState = "Dead"
            }
            described.append(group)
        }
        response.groups = described
        return response
    }

    func listGroups(_ request: ListGroupsRequest, version: Int16) async -> ListGroupsResponse {
        var response = ListGroupsResponse()
        var listed: [ListGroupsResponse.ListedGroup] = []
        for name in await groups.names() {
            guard let description = await groups.describe(name) else { continue }
            if !request.statesFilter.isEmpty && !request.statesFilter.contains(description.state) { continue }
            var entry = ListGroupsResponse.ListedGroup()
            entry.groupId = name
            entry.protocolType = description.protocolType
            entry.groupState = description.state
            listed.append(entry)
        }
        response.groups = listed
        return response
    }

    /// Runs the groups' timers (session timeouts, rebalance deadlines): the listener calls it
    /// a few times a second.
    public func tickGroups() async { await groups.tick() }
}
