import BrokerCore
import BrokerService
import Contracts
import Partitioning
import RPCCore
import TestSupport
import Testing

/// cqrs.broker.v1.Broker over a broker in a temporary directory, called through its generated
/// client over the in-process transport.
@Suite struct BrokerServiceCallTests {
    typealias API = BrokerAPI.Broker

    func withBroker(_ body: (API.Client) async throws -> Void) async throws {
        let data = TemporaryDirectory(prefix: "broker-service")
        defer { data.cleanup() }
        let broker = try Broker(settings: BrokerSettings(dataDirectory: data.path))
        try await InProcessServer.with([BrokerService(broker: broker)], client: API.Client.init, body)
    }

    @Test func keyedRecordsAreProducedToTheirPartitionAndFetchedBack() async throws {
        try await withBroker { broker in
            _ = try await broker.createTopic(.init(name: "t", partitions: 3))
            let records = (0..<6).map { BrokerAPI.ProduceRecord(key: "k\($0 % 2)", value: try! RawJSON(validating: "\($0)")) }
            let produced = try await broker.produce(.init(topic: "t", records: records))
            #expect(produced.results.map(\.partition) == records.map { Partitioner.partition(forKey: Array($0.key!.utf8), partitions: 3) })
            let partition = produced.results[0].partition
            let fetched = try await broker.fetch(.init(topic: "t", partition: partition, offset: 0, maxRecords: 10))
            #expect(fetched.records.allSatisfy { ["k0", "k1"].contains($0.key ?? "") })
            #expect(fetched.records.map(\.offset) == Array(0..<Int64(fetched.records.count)))
            let described = try await broker.describeTopic(.init(name: "t"))
            #expect(described.partitions.map(\.highWatermark).reduce(0, +) == 6)
        }
    }

    @Test func unknownTopicsAndPartitionsAreRefusedWithTheirCodes() async throws {
        try await withBroker { broker in
            await #expect { try await broker.describeTopic(.init(name: "missing")) } throws: { ($0 as? RPCError)?.code == .notFound }
            _ = try await broker.createTopic(.init(name: "t", partitions: 1))
            await #expect { try await broker.createTopic(.init(name: "t", partitions: 1)) } throws: { ($0 as? RPCError)?.code == .alreadyExists }
            await #expect { try await broker.fetch(.init(topic: "t", partition: 5, offset: 0)) } throws: {
                ($0 as? RPCError)?.code == .notFound || ($0 as? RPCError)?.code == .invalidArgument
            }
            await #expect { try await broker.fetch(.init(topic: "t", partition: 0, offset: 1)) } throws: { ($0 as? RPCError)?.code == .outOfRange }
        }
    }
}
