public import RPCCore
import Synchronization

/// A client and a server joined in memory: the real connection logic of both ends, no sockets.
///
/// Frames go straight from one side's ``FrameChannel`` to the other side's receiver, in order.
/// Tests use it to run a real ``RPCServer`` and ``RPCClient`` together without the kernel.
public final class InProcessTransport: Sendable {
    private struct State {
        var accept: (@Sendable (any FrameChannel) -> any FrameReceiver)?
        var stop: CheckedContinuation<Void, Never>?
        var stopped = false
        var connections = 0
        var listeningWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Returns once the server side listens (its ``RPCServer`` is running), so a client's first
    /// call does not find it absent; at once if it stopped.
    public func listening() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.accept != nil || state.stopped { return true }
                state.listeningWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// The side to give an ``RPCServer``.
    public var server: some ServerTransport { ServerSide(transport: self) }
    /// The side to give an ``RPCClient``.
    public var client: some ClientTransport { ClientSide(transport: self) }

    struct ServerSide: ServerTransport {
        let transport: InProcessTransport

        func listen(_ accept: @escaping @Sendable (any FrameChannel) -> any FrameReceiver) async throws {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let (stopNow, waiters) = transport.state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                        defer { state.listeningWaiters = [] }
                        if state.stopped { return (true, state.listeningWaiters) }
                        state.accept = accept
                        state.stop = continuation
                        return (false, state.listeningWaiters)
                    }
                    for waiter in waiters { waiter.resume() }
                    if stopNow { continuation.resume() }
                }
            } onCancel: {
                stopListening()
            }
            try Task.checkCancellation()
        }

        func stopListening() {
            let (waiter, listeners) = transport.state.withLock { state -> (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) in
                state.stopped = true
                state.accept = nil
                defer {
                    state.stop = nil
                    state.listeningWaiters = []
                }
                return (state.stop, state.listeningWaiters)
            }
            for listener in listeners { listener.resume() }
            waiter?.resume()
        }
    }

    struct ClientSide: ClientTransport {
        let transport: InProcessTransport

        func connect(
            _ makeReceiver: @escaping @Sendable (any FrameChannel) -> any FrameReceiver
        ) async throws -> any FrameReceiver {
            let (accept, number) = transport.state.withLock { state in
                state.connections += 1
                return (state.accept, state.connections)
            }
            guard let accept else {
                throw RPCError(code: .unavailable, message: "the in-process server is not listening")
            }
            let clientEnd = InProcessChannel(name: "in-process-client-\(number)")
            let serverEnd = InProcessChannel(name: "in-process-server-\(number)")
            // The server must be able to receive before the client's HELLO is written.
            serverEnd.link(peer: clientEnd)
            clientEnd.link(peer: serverEnd)
            serverEnd.setReceiver(accept(serverEnd))
            let receiver = makeReceiver(clientEnd)
            clientEnd.setReceiver(receiver)
            return receiver
        }
    }
}

/// One end of an in-memory connection. Writes are delivered to the peer's receiver in order; a
/// delivery already running on another thread picks up frames written meanwhile, so one
/// receiver never sees two frames at once.
final class InProcessChannel: FrameChannel {
    private struct State {
        var peer: InProcessChannel?
        var receiver: (any FrameReceiver)?
        /// Frames not yet handed to the receiver (including those written before it was set).
        var inbox: [Frame] = []
        /// A thread is handing frames to the receiver; others only queue.
        var delivering = false
        var closed = false
        var closeDelivered = false
    }

    private let state = Mutex(State())
    let peerDescription: String

    init(name: String) { peerDescription = name }

    func link(peer: InProcessChannel) { state.withLock { $0.peer = peer } }

    func setReceiver(_ receiver: any FrameReceiver) {
        state.withLock { $0.receiver = receiver }
        drain()
    }

    func write(_ frames: [Frame]) {
        guard let peer = state.withLock({ $0.closed ? nil : $0.peer }) else { return }
        peer.enqueue(frames)
    }

    func close() {
        let peer = state.withLock { state -> InProcessChannel? in
            guard !state.closed else { return nil }
            state.closed = true
            return state.peer
        }
        guard let peer else { return }
        peer.peerClosed()
        drain()
    }

    func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> any ScheduledTimer {
        let task = Task {
            try await Task.sleep(for: delay)
            body()
        }
        return TaskTimer(task: task)
    }

    private func enqueue(_ frames: [Frame]) {
        state.withLock { $0.inbox.append(contentsOf: frames) }
        drain()
    }

    private func peerClosed() {
        state.withLock { $0.closed = true }
        drain()
    }

    /// Hands queued frames, then the close, to the receiver; one thread at a time.
    private func drain() {
        while true {
            enum Next {
                case frames([Frame], any FrameReceiver)
                case closed(any FrameReceiver)
                case none
            }
            let next = state.withLock { state -> Next in
                guard !state.delivering, let receiver = state.receiver else { return .none }
                if !state.inbox.isEmpty {
                    state.delivering = true
                    defer { state.inbox.removeAll() }
                    return .frames(state.inbox, receiver)
                }
                if state.closed, !state.closeDelivered {
                    state.closeDelivered = true
                    state.delivering = true
                    return .closed(receiver)
                }
                return .none
            }
            switch next {
            case .none:
                return
            case .frames(let frames, let receiver):
                for frame in frames { receiver.receive(frame) }
            case .closed(let receiver):
                receiver.connectionClosed()
            }
            state.withLock { $0.delivering = false }
        }
    }
}

private struct TaskTimer: ScheduledTimer {
    let task: Task<Void, any Error>
    func cancel() { task.cancel() }
}
