import Synchronization

/// The messages received on one stream, buffered until the one reader of that stream takes them.
///
/// Flow control keeps the buffer bounded: the peer may send only as many messages as it has
/// credit for, and credit is returned (through `grant`) as the reader consumes, as its
/// ``ReceiveWindow`` decides, so a slow reader slows the sender instead of growing this buffer.
///
/// Thread-safe; `next()` must be called by one task at a time.
public final class InboundMessages: Sendable {
    /// Messages in arrival order. The oldest waits in a field of its own: a unary call's one
    /// message arrives before its handler asks for it, and appended to an empty array it
    /// allocated that array through the standard library's unspecialized generic path (about
    /// 600 instructions a call, callgrind).
    private struct Queue {
        /// Nil only when the queue is empty.
        private var oldest: [UInt8]?
        /// The others, from `head` on.
        private var rest: [[UInt8]] = []
        private var head = 0

        var isEmpty: Bool { oldest == nil }

        mutating func append(_ message: [UInt8]) {
            if oldest == nil { oldest = message } else { rest.append(message) }
        }

        mutating func popFirst() -> [UInt8]? {
            guard let message = oldest else { return nil }
            if head < rest.count {
                oldest = rest[head]
                rest[head] = []
                head += 1
                if head == rest.count {
                    rest.removeAll(keepingCapacity: true)
                    head = 0
                }
            } else {
                oldest = nil
            }
            return message
        }

        mutating func removeAll() { self = Queue() }
    }

    private struct State {
        var buffer = Queue()
        var end: RPCError?? = .none  // .none: open; .some(nil): finished cleanly; .some(error): failed
        var waiter: CheckedContinuation<[UInt8]?, any Error>?
        var window: ReceiveWindow

        mutating func take() -> Result<[UInt8]?, any Error>? {
            if let message = buffer.popFirst() { return .success(message) }
            switch end {
            case .none: return nil
            case .some(.none): return .success(nil)
            case .some(.some(let error)): return .failure(error)
            }
        }
    }

    private let state: Mutex<State>
    private let grant: (@Sendable (Int) -> Void)?

    /// - Parameters:
    ///   - window: when and how much credit goes back to the sender.
    ///   - grant: sends CREDIT to the peer; nil where the stream needs none.
    public init(window: ReceiveWindow = ReceiveWindow(initialCredit: 1, windowBytes: 0), grant: (@Sendable (Int) -> Void)? = nil) {
        self.state = Mutex(State(window: window))
        self.grant = grant
    }

    /// Adds a received message.
    public func append(_ message: [UInt8]) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
            guard state.end == nil else { return nil }
            state.window.received(bytes: message.count)
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.buffer.append(message)
            return nil
        }
        if let waiter {
            waiter.resume(returning: message)
            consumed()
        }
    }

    /// Ends the stream: after the buffered messages, `next()` returns nil, or throws `error`.
    /// The first call wins.
    public func finish(throwing error: RPCError? = nil) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
            guard state.end == nil else { return nil }
            state.end = .some(error)
            guard state.buffer.isEmpty else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        if let error {
            waiter?.resume(throwing: error)
        } else {
            waiter?.resume(returning: nil)
        }
    }

    /// Ends the stream at once, dropping buffered messages: the call is over.
    public func fail(_ error: RPCError) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
            state.buffer.removeAll()
            if state.end == nil { state.end = .some(error) }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: error)
    }

    /// The next message, nil at the end of the stream; throws the error the stream ended with,
    /// or `CancellationError` if the task is cancelled while waiting.
    public func next() async throws -> [UInt8]? {
        if let ready = state.withLock({ $0.take() }) {
            return try delivered(ready)
        }
        let result: [UInt8]? = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<[UInt8]?, any Error>? in
                    if let ready = state.take() { return ready }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiter = continuation
                    return nil
                }
                if let ready {
                    continuation.resume(with: ready)
                    if case .success(.some) = ready { consumed() }
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, any Error>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
        // Messages handed to a waiting reader were counted where they were handed over.
        return result
    }

    private func delivered(_ ready: Result<[UInt8]?, any Error>) throws -> [UInt8]? {
        let message = try ready.get()
        if message != nil { consumed() }
        return message
    }

    private func consumed() {
        guard let grant else { return }
        let toGrant = state.withLock { state -> Int in
            let due = state.window.consumed()
            return state.end == nil ? due : 0
        }
        if toGrant > 0 { grant(toGrant) }
    }
}
