import CRdKafka
import Dispatch
import EventBus
import Foundation
import Logging
import WallTime

/// A librdkafka error: its code's name (`_TRANSPORT`, `UNKNOWN_TOPIC_OR_PART`, …) and text,
/// with what the bus was doing.
public struct KafkaError: Error, Hashable, CustomStringConvertible {
    /// librdkafka's `rd_kafka_resp_err_t`: Kafka's error codes, and negative ones of its own.
    public var code: Int32
    public var name: String
    public var message: String

    public var description: String { "\(name): \(message)" }

    init(_ error: rd_kafka_resp_err_t, _ context: String? = nil, detail: String? = nil) {
        code = error.rawValue
        name = String(cString: rd_kafka_err2name(error))
        let text = detail ?? String(cString: rd_kafka_err2str(error))
        message = context.map { "\($0): \(text)" } ?? text
    }

    static func invalidConfiguration(_ message: String) -> KafkaError {
        KafkaError(RD_KAFKA_RESP_ERR__INVALID_ARG, "invalid Kafka configuration", detail: message)
    }

    var isMissingTopic: Bool {
        [RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION].contains {
            $0.rawValue == code
        }
    }

    var isOutOfRange: Bool {
        code == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET.rawValue || code == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE.rawValue
    }
}

/// What a handle's C callbacks reach through librdkafka's opaque pointer: fixed before the
/// handle is made, released once it is destroyed. librdkafka calls them on its own threads
/// (logs, errors) or inside a poll (delivery reports, rebalances).
final class HandleCallbacks: @unchecked Sendable {
    let logger: Logger
    /// Errors librdkafka reports by itself while it retries (a broker down, a connection
    /// lost); `fatal` when the handle can no longer work (an idempotent producer fenced).
    let onError: (@Sendable (KafkaError, _ fatal: Bool) -> Void)?
    /// A producer's delivery report, one per message, inside `rd_kafka_poll`.
    let onDelivery: ((UnsafePointer<rd_kafka_message_t>) -> Void)?
    /// A group consumer's rebalance, inside `rd_kafka_consumer_poll`: it must assign.
    let onRebalance: ((OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)?

    init(
        logger: Logger, onError: (@Sendable (KafkaError, Bool) -> Void)? = nil,
        onDelivery: ((UnsafePointer<rd_kafka_message_t>) -> Void)? = nil,
        onRebalance: ((OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)? = nil
    ) {
        self.logger = logger
        self.onError = onError
        self.onDelivery = onDelivery
        self.onRebalance = onRebalance
    }

    static func of(_ handle: OpaquePointer?) -> HandleCallbacks? {
        guard let handle, let opaque = rd_kafka_opaque(handle) else { return nil }
        return Unmanaged<HandleCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    }

    /// librdkafka's syslog levels as swift-log's, one step milder at the top: it logs a broker
    /// it cannot reach as an error each time it retries, and the bus reports the failures that
    /// matter (a send or a read that gave up) itself. A group's commit refused during a
    /// rebalance is routine (its commits are for lag only; the next batch commits again).
    func log(level: Int32, facility: String, text: String) {
        let mapped: Logger.Level
        switch level {
        case _ where facility == "COMMITFAIL": mapped = .info
        case ...4: mapped = .warning
        case 5: mapped = .notice
        case 6: mapped = .info
        default: mapped = .debug
        }
        logger.log(level: mapped, "\(text)", metadata: ["kafka.facility": "\(facility)"])
    }
}

/// One librdkafka client instance (`rd_kafka_t`): a producer or a consumer with its own
/// threads and connections. Made from the bus's properties; destroyed explicitly, because
/// destroying blocks until its threads are gone and must not run on an event loop.
final class KafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    private let callbacks: Unmanaged<HandleCallbacks>

    init(_ type: rd_kafka_type_t, properties: [KafkaBusLocation.Property], callbacks: HandleCallbacks) throws {
        let configuration = rd_kafka_conf_new()!
        var problem = [CChar](repeating: 0, count: 512)
        for property in properties {
            guard rd_kafka_conf_set(configuration, property.name, property.value, &problem, problem.count) == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(configuration)
                throw KafkaError.invalidConfiguration("\(property.name): \(Self.text(problem))")
            }
        }
        let retained = Unmanaged.passRetained(callbacks)
        rd_kafka_conf_set_opaque(configuration, retained.toOpaque())
        rd_kafka_conf_set_log_cb(configuration) { handle, level, facility, text in
            HandleCallbacks.of(handle)?.log(
                level: level, facility: facility.map { String(cString: $0) } ?? "", text: text.map { String(cString: $0) } ?? "")
        }
        rd_kafka_conf_set_error_cb(configuration) { handle, code, reason, _ in
            guard let callbacks = HandleCallbacks.of(handle) else { return }
            let error = rd_kafka_resp_err_t(rawValue: code)
            var fatal = false
            var detail = reason.map { String(cString: $0) }
            if error == RD_KAFKA_RESP_ERR__FATAL, let handle {
                var text = [CChar](repeating: 0, count: 512)
                _ = rd_kafka_fatal_error(handle, &text, text.count)
                detail = KafkaHandle.text(text)
                fatal = true
            }
            callbacks.onError?(KafkaError(error, nil, detail: detail), fatal)
        }
        if callbacks.onDelivery != nil {
            rd_kafka_conf_set_dr_msg_cb(configuration) { handle, message, _ in
                guard let message else { return }
                HandleCallbacks.of(handle)?.onDelivery?(message)
            }
        }
        if callbacks.onRebalance != nil {
            rd_kafka_conf_set_rebalance_cb(configuration) { handle, error, partitions, _ in
                guard let handle, let partitions else { return }
                HandleCallbacks.of(handle)?.onRebalance?(handle, error, partitions)
            }
        }
        guard let handle = rd_kafka_new(type, configuration, &problem, problem.count) else {
            rd_kafka_conf_destroy(configuration)
            retained.release()
            throw KafkaError.invalidConfiguration(Self.text(problem))
        }
        pointer = handle
        self.callbacks = retained
    }

    /// Blocks until the instance's threads are gone, or for `patience` at most: call it off the
    /// event loops. librdkafka 2.0.2 can wait forever here for a broker thread that still counts
    /// references to partitions of a topic deleted under a consumer (a bus that lost its data);
    /// past `patience` the instance's idle threads are left behind, with a warning, so the caller
    /// can go on (the projection rejoins).
    func destroy(patience: Duration = .seconds(5)) {
        let done = DispatchSemaphore(value: 0)
        let destroying = Thread { [self] in
            rd_kafka_destroy(pointer)
            callbacks.release()
            done.signal()
        }
        destroying.name = "kafka-destroy"
        destroying.start()
        if done.wait(timeout: .now() + .milliseconds(Int(patience.wholeMilliseconds))) == .timedOut {
            callbacks.takeUnretainedValue().logger.warning(
                "librdkafka did not finish closing a client; its idle threads are left behind",
                metadata: ["waited_ms": "\(patience.wholeMilliseconds)"])
        }
    }

    static func text(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// A topic's partitions and their bounds (nil: no such topic), from a Metadata request and
    /// a ListOffsets per partition. Blocking.
    func partitions(of topic: String, timeoutMs: Int32) throws -> [PartitionBounds]? {
        try partitionIds(of: topic, timeoutMs: timeoutMs)?.map { partition in
            let (low, high) = try watermarks(topic, partition: partition, timeoutMs: timeoutMs)
            return PartitionBounds(partition: partition, logStartOffset: low, highWatermark: high)
        }
    }

    func partitionIds(of topic: String, timeoutMs: Int32) throws -> [Int]? {
        try Self.partitionIds(of: topic, handle: pointer, timeoutMs: timeoutMs)
    }

    /// A topic's partition numbers in order (nil: no such topic), from a Metadata request on
    /// `pointer`'s instance. With `allTopics` it asks for every topic instead of making a topic
    /// object: a group member must not hold one of a topic it subscribes to, or destroying the
    /// member waits for it forever (librdkafka 2.0).
    static func partitionIds(of topic: String, handle pointer: OpaquePointer, timeoutMs: Int32, allTopics: Bool = false) throws -> [Int]? {
        let handle = allTopics ? nil : rd_kafka_topic_new(pointer, topic, nil)
        guard allTopics || handle != nil else { throw KafkaError(rd_kafka_last_error(), "topic \(topic)") }
        defer { if let handle { rd_kafka_topic_destroy(handle) } }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(pointer, allTopics ? 1 : 0, handle, &metadata, timeoutMs)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(error, "metadata of \(topic)") }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard
            let described = (0..<Int(metadata.pointee.topic_cnt)).lazy.map({ metadata.pointee.topics[$0] }).first(where: {
                String(cString: $0.topic) == topic
            })
        else { return nil }
        if described.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { return nil }
        guard described.err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(described.err, "metadata of \(topic)") }
        return (0..<Int(described.partition_cnt)).map { Int(described.partitions[$0].id) }.sorted()
    }

    /// Where a partition starts and ends. Blocking.
    func watermarks(_ topic: String, partition: Int, timeoutMs: Int32) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        var error = rd_kafka_query_watermark_offsets(pointer, topic, Int32(partition), &low, &high, timeoutMs)
        if error == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION || error == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC {
            // The handle's metadata still holds the topic as it was (missing, just before this
            // client created it): a Metadata request refreshes it, then ask once more.
            _ = try? partitionIds(of: topic, timeoutMs: timeoutMs)
            error = rd_kafka_query_watermark_offsets(pointer, topic, Int32(partition), &low, &high, timeoutMs)
        }
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(error, "offsets of \(topic)/\(partition)") }
        return (low, high)
    }
}

extension DispatchQueue {
    /// Runs blocking librdkafka work on this queue and awaits its result: the one way the bus's
    /// handles (tools, group members) keep their calls off the caller's thread and one at a time.
    func perform<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            self.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

extension BusRecord {
    /// Copies a consumed message out of librdkafka's memory.
    init(message pointer: UnsafePointer<rd_kafka_message_t>) {
        let message = pointer.pointee
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(pointer, &timestampType)
        var headers: [String: String] = [:]
        var list: OpaquePointer?
        if rd_kafka_message_headers(pointer, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                if let name {
                    headers[String(cString: name)] =
                        value.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: size), as: UTF8.self) } ?? ""
                }
                index += 1
            }
        }
        self.init(
            topic: message.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "", partition: Int(message.partition), offset: message.offset,
            timestamp: timestamp, key: message.key.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: message.key_len), as: UTF8.self) },
            value: message.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: message.len)) }, headers: headers)
    }
}
