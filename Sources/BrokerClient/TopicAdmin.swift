import Contracts
import Logging
import RPCCore

/// Topic housekeeping the services share.
public enum TopicAdmin {
    /// How event topics are made, by whichever side creates one first (the relay publishing, or
    /// the projection about to consume): records take the broker's append time, so retention
    /// counts from when the broker got an event, not from when it was stored. An event published
    /// after a long outage, or stamped by a clock days behind, would otherwise arrive already past
    /// retention and be deleted before a stopped consumer reads it. The event's own time travels
    /// in its `ce_time` header.
    public static let eventTopicConfig = BrokerAPI.TopicConfig(timestampType: .logAppendTime)

    /// Creates `topic` with `partitions` (and `config`) when it does not exist; another client
    /// creating it first is fine. Returns true when this call created it.
    @discardableResult
    public static func ensure(
        _ topic: String, partitions: Int, config: BrokerAPI.TopicConfig? = nil, client: RPCClient, options: CallOptions = .defaults,
        logger: Logger? = nil
    ) async throws -> Bool {
        let broker = BrokerAPI.Broker.Client(client)
        do {
            _ = try await broker.describeTopic(.init(name: topic), options: options)
            return false
        } catch let error as RPCError where error.code == .notFound {
            do {
                _ = try await broker.createTopic(.init(name: topic, partitions: partitions, config: config), options: options)
                logger?.info("created topic", metadata: ["topic": "\(topic)", "partitions": "\(partitions)"])
                return true
            } catch let error as RPCError where error.code == .alreadyExists {
                return false
            }
        }
    }
}
