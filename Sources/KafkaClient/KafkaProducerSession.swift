import CRdKafka
import EventBus
import Foundation
import Logging
import Synchronization

/// One idempotent librdkafka producer on one topic: the bus's producer session. A send hands
/// every record to librdkafka at once (it batches them per partition) and returns when the last
/// delivery report is in; librdkafka retries within the session, its sequence numbers keeping
/// each record once and in order. A poller thread serves the delivery reports, and at the end
/// flushes and destroys the handle.
final class KafkaProducerSession: TopicProducer, @unchecked Sendable {
    /// What the session's guarantees rest on, and how it batches.
    static let properties: [(String, String)] = [
        ("enable.idempotence", "true"), ("acks", "all"),
        // Java's partitioner and our broker's: a key lands on the same partition whichever
        // client published it.
        ("partitioner", "murmur2_random"),
        // The relay hands over whole batches, and waits for each: nothing is gained by lingering
        // (1 ms here cost batch-1 sends 5x their rate, batch-100 sends 2x in Scripts/bench broker).
        ("linger.ms", "0"),
        // A send gives up after this, so the relay reports a bus that is away instead of
        // waiting librdkafka's default five minutes; it starts a new session and resends.
        ("message.timeout.ms", "30000"),
    ]

    /// Shared with the callbacks and the poller.
    private final class Shared: Sendable {
        let running = Atomic<Bool>(true)
        /// Set by a fatal error: every later send fails with it.
        let fatal = Mutex<KafkaError?>(nil)
    }

    private let handle: KafkaHandle
    private let topic: String
    private let shared = Shared()

    init(topic: String, properties: [KafkaBusLocation.Property], onRetry: (@Sendable (any Error) -> Void)?, logger: Logger) throws {
        let shared = shared
        handle = try KafkaHandle(
            RD_KAFKA_PRODUCER, properties: properties,
            callbacks: HandleCallbacks(
                logger: logger,
                onError: { error, isFatal in
                    if isFatal { shared.fatal.withLock { $0 = error } }
                    onRetry?(error)
                },
                onDelivery: { message in Delivery.report(message) }))
        self.topic = topic
        let handle = handle
        let poller = Thread {
            while shared.running.load(ordering: .relaxed) { rd_kafka_poll(handle.pointer, 100) }
            _ = rd_kafka_flush(handle.pointer, 10_000)
            handle.destroy()
        }
        poller.name = "kafka-producer"
        poller.start()
    }

    deinit {
        shared.running.store(false, ordering: .relaxed)
    }

    func send(_ records: [OutgoingRecord]) async throws {
        guard !records.isEmpty else { return }
        if let error = shared.fatal.withLock({ $0 }) { throw error }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let delivery = Delivery(count: records.count, continuation: continuation)
            for (index, record) in records.enumerated() {
                let opaque = Unmanaged.passRetained(delivery)
                if let error = produce(record, opaque: opaque.toOpaque()) {
                    opaque.release()
                    delivery.notSent(records.count - index, error)
                    return
                }
            }
        }
    }

    /// Queues one record; the error when librdkafka refused it (a full queue is waited out).
    private func produce(_ record: OutgoingRecord, opaque: UnsafeMutableRawPointer) -> KafkaError? {
        var strings: [UnsafeMutablePointer<CChar>] = [strdup(topic)]
        defer { strings.forEach { free($0) } }
        var fields = [rd_kafka_vu_t]()
        fields.reserveCapacity(8 + record.headers.count)
        var field = rd_kafka_vu_t()
        field.vtype = RD_KAFKA_VTYPE_TOPIC
        field.u.cstr = UnsafePointer(strings[0])
        fields.append(field)
        field = rd_kafka_vu_t()
        field.vtype = RD_KAFKA_VTYPE_MSGFLAGS
        field.u.i = RD_KAFKA_MSG_F_COPY
        fields.append(field)
        if let partition = record.partition {
            field = rd_kafka_vu_t()
            field.vtype = RD_KAFKA_VTYPE_PARTITION
            field.u.i32 = Int32(partition)
            fields.append(field)
        }
        if let timestamp = record.timestamp {
            field = rd_kafka_vu_t()
            field.vtype = RD_KAFKA_VTYPE_TIMESTAMP
            field.u.i64 = timestamp
            fields.append(field)
        }
        field = rd_kafka_vu_t()
        field.vtype = RD_KAFKA_VTYPE_OPAQUE
        field.u.ptr = opaque
        fields.append(field)
        for (name, value) in record.headers.sorted(by: { $0.key < $1.key }) {
            let name = strdup(name)!
            let value = strdup(value)!
            strings += [name, value]
            field = rd_kafka_vu_t()
            field.vtype = RD_KAFKA_VTYPE_HEADER
            field.u.header.name = UnsafePointer(name)
            field.u.header.val = UnsafeRawPointer(value)
            field.u.header.size = strlen(value)
            fields.append(field)
        }
        let key = record.key.map { Array($0.utf8) }
        return key.withOptionalBytes { key in
            record.value.withOptionalBytes { value in
                // An empty key or value still needs an address: any valid one, with size 0.
                let anywhere = UnsafeRawPointer(strings[0])
                func bytesField(_ type: rd_kafka_vtype_t, _ bytes: UnsafeRawBufferPointer) -> rd_kafka_vu_t {
                    var field = rd_kafka_vu_t()
                    field.vtype = type
                    field.u.mem.ptr = UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? anywhere)
                    field.u.mem.size = bytes.count
                    return field
                }
                var all = fields
                if let key { all.append(bytesField(RD_KAFKA_VTYPE_KEY, key)) }
                // No value field is a tombstone (a null value).
                if let value { all.append(bytesField(RD_KAFKA_VTYPE_VALUE, value)) }
                while true {
                    guard let error = rd_kafka_produceva(handle.pointer, all, all.count) else { return nil }
                    let code = rd_kafka_error_code(error)
                    let failure = KafkaError(code, "publishing to \(topic)", detail: rd_kafka_error_string(error).map { String(cString: $0) })
                    rd_kafka_error_destroy(error)
                    // The poller drains the queue as deliveries complete.
                    guard code == RD_KAFKA_RESP_ERR__QUEUE_FULL else { return failure }
                    usleep(1000)
                }
            }
        }
    }
}

extension Optional where Wrapped == [UInt8] {
    fileprivate func withOptionalBytes<T>(_ body: (UnsafeRawBufferPointer?) -> T) -> T {
        switch self {
        case .none: return body(nil)
        case .some(let bytes): return bytes.withUnsafeBytes { body($0) }
        }
    }
}

/// The delivery reports of one send: resumes the send when the last is in, with the first error.
private final class Delivery: Sendable {
    private struct State {
        var remaining: Int
        var error: KafkaError?
        var continuation: CheckedContinuation<Void, any Error>?
    }

    private let state: Mutex<State>

    init(count: Int, continuation: CheckedContinuation<Void, any Error>) {
        state = Mutex(State(remaining: count, continuation: continuation))
    }

    /// A delivery report: the message carries the retained `Delivery` as its opaque.
    static func report(_ message: UnsafePointer<rd_kafka_message_t>) {
        guard let opaque = message.pointee._private else { return }
        let delivery = Unmanaged<Delivery>.fromOpaque(opaque).takeRetainedValue()
        let error = message.pointee.err
        delivery.finished(
            1,
            error == RD_KAFKA_RESP_ERR_NO_ERROR
                ? nil : KafkaError(error, "publishing", detail: rd_kafka_message_errstr(message).map { String(cString: $0) }))
    }

    /// `count` records were refused before librdkafka took them.
    func notSent(_ count: Int, _ error: KafkaError) {
        finished(count, error)
    }

    private func finished(_ count: Int, _ error: KafkaError?) {
        let done = state.withLock { state -> (CheckedContinuation<Void, any Error>, KafkaError?)? in
            state.remaining -= count
            if state.error == nil { state.error = error }
            guard state.remaining == 0, let continuation = state.continuation else { return nil }
            state.continuation = nil
            return (continuation, state.error)
        }
        guard let (continuation, error) = done else { return }
        if let error { continuation.resume(throwing: error) } else { continuation.resume() }
    }
}
