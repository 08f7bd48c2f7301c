import Contracts
import Logging
import RPCCore

/// Topic housekeeping the services share.
public enum TopicAdmin {
    /// Creates `topic` with `partitions` when it does not exist; another client creating it
    /// first is fine. Returns true when this call created it.
    @discardableResult
    public static func ensure(_ topic: String, partitions: Int, client: RPCClient, options: CallOptions = .defaults, logger: Logger? = nil) async throws -> Bool {
        let broker = BrokerAPI.Broker.Client(client)
        do {
            _ = try await broker.describeTopic(.init(name: topic), options: options)
            return false
        } catch let error as RPCError where error.code == .notFound {
            do {
                _ = try await broker.createTopic(.init(name: topic, partitions: partitions), options: options)
                logger?.info("created topic", metadata: ["topic": "\(topic)", "partitions": "\(partitions)"])
                return true
            } catch let error as RPCError where error.code == .alreadyExists {
                return false
            }
        }
    }
}
