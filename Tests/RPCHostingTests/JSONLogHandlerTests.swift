import Foundation
import Logging
import Synchronization
import Testing

@testable import RPCHosting

@Suite struct JSONLogHandlerTests {
    /// One record as the object a log pipeline reads back.
    func decoded(_ line: [UInt8]) throws -> [String: Any] {
        #expect(line.last == UInt8(ascii: "\n") && line.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") }, "one line")
        return try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
    }

    @Test func aRecordIsOneObjectWithTheIdsLiftedAndTheRestUnderMetadata() throws {
        let line = JSONLogHandler.line(
            time: 1_764_800_000_123, level: .warning, service: "command-service", label: "relay",
            message: "said \"hi\"\nthen\tleft \u{1}",
            metadata: [
                "rpc.request_id": "req-1", "correlation-id": "corr-9", "command-id": "cmd-3", "trace_id": "abc",
                "topic": "BankAccount", "batch": .array(["1", "2"]), "nested": .dictionary(["a": "b"]),
            ])
        let object = try decoded(line)
        #expect(object["time"] as? String == "2025-12-03T22:13:20.123Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["service"] as? String == "command-service" && object["logger"] as? String == "relay")
        #expect(object["message"] as? String == "said \"hi\"\nthen\tleft \u{1}", "escaped, and read back the same")
        #expect(object["request_id"] as? String == "req-1" && object["correlation_id"] as? String == "corr-9")
        #expect(object["command_id"] as? String == "cmd-3" && object["trace_id"] as? String == "abc")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(Set(metadata.keys) == ["topic", "batch", "nested"], "lifted ids are not repeated")
        #expect(metadata["batch"] as? [String] == ["1", "2"] && (metadata["nested"] as? [String: String]) == ["a": "b"])
    }

    @Test func aRecordWithoutMetadataHasNoMetadataMember() throws {
        let object = try decoded(
            JSONLogHandler.line(time: 0, level: .info, service: "broker", label: "broker", message: "listening", metadata: [:]))
        #expect(object["metadata"] == nil && object["time"] as? String == "1970-01-01T00:00:00.000Z")
    }

    @Test func theHandlerMergesItsOwnMetadataWithTheRecords() throws {
        let lines = Lines()
        var logger = Logger(label: "projection") { label in
            JSONLogHandler(service: "query-service", label: label) { lines.append($0) }
        }
        logger[metadataKey: "topic"] = "OnNewOrder"
        logger.info("applied", metadata: ["rpc.request_id": "r-7"])
        logger.debug("below the level: dropped")
        let recorded = lines.all
        #expect(recorded.count == 1)
        let object = try decoded(try #require(recorded.first))
        #expect(object["logger"] as? String == "projection" && object["request_id"] as? String == "r-7")
        #expect((object["metadata"] as? [String: String]) == ["topic": "OnNewOrder"])
    }
}

private final class Lines: Sendable {
    private let lines = Mutex<[[UInt8]]>([])
    func append(_ line: [UInt8]) { lines.withLock { $0.append(line) } }
    var all: [[UInt8]] { lines.withLock { $0 } }
}
