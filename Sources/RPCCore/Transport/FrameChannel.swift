/// A connection as the RPC core sees it: somewhere to write frames, and a clock for timeouts.
///
/// Transports implement this once per connection. Writes may come from any thread; frames
/// written together are delivered in order and flushed together (one system call on TCP), which
/// is how a unary reply's MESSAGE and TRAILERS leave in one packet.
public protocol FrameChannel: AnyObject, Sendable {
    /// Queues frames for the peer, in order. Frames written after `close()` are dropped.
    func write(_ frames: [Frame])
    /// Flushes what was written, then closes the connection.
    func close()
    /// Runs `body` after `delay` unless cancelled first. Timers die with the connection.
    func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> any ScheduledTimer
    /// The remote address, for logs.
    var peerDescription: String { get }
    /// Where the tasks serving this connection's calls prefer to run, if the transport has a
    /// thread of its own (an event loop).
    ///
    /// Why: a handler that awaits work finished on another thread (the event store's writer
    /// after its fsync) is resumed wherever the global executor puts it. Resuming it on the
    /// connection's own thread saves a second thread wake-up before the reply can be written,
    /// which on a small machine is most of a call's latency.
    var taskExecutor: (any TaskExecutor)? { get }
}

extension FrameChannel {
    public func write(_ frame: Frame) { write([frame]) }
    public var taskExecutor: (any TaskExecutor)? { nil }
}

/// A timer returned by ``FrameChannel/schedule(after:_:)``.
public protocol ScheduledTimer: Sendable {
    func cancel()
}

/// What a transport hands the frames it reads from one connection to.
///
/// Calls for one connection come in order from one thread at a time.
public protocol FrameReceiver: AnyObject, Sendable {
    /// A frame arrived whole.
    func receive(_ frame: Frame)
    /// A frame larger than the accepted limit arrived; its payload was skipped without being buffered.
    func receiveOversizedFrame(type: FrameType, streamID: UInt32, length: Int)
    /// The byte stream cannot go on (a frame over the skippable limit, a partial frame that did
    /// not complete in time): the receiver says why to the peer if it can, and closes.
    func receiveUnrecoverable(_ error: RPCError)
    /// The connection is gone: closed by the peer, timed out, or failed.
    func connectionClosed()
}

/// Accepts connections and hands each to the server.
public protocol ServerTransport: Sendable {
    /// Accepts connections until ``stopListening()`` is called or the task is cancelled. For each
    /// connection it calls `accept`, and feeds the returned receiver the frames it reads.
    func listen(_ accept: @escaping @Sendable (any FrameChannel) -> any FrameReceiver) async throws
    /// Stops accepting new connections; open ones stay until the server closes them.
    func stopListening()
}

/// Opens connections to one server.
public protocol ClientTransport: Sendable {
    /// Connects, and feeds the receiver made by `makeReceiver` the frames read from the connection.
    /// Throws when the server cannot be reached.
    func connect(
        _ makeReceiver: @escaping @Sendable (any FrameChannel) -> any FrameReceiver
    ) async throws -> any FrameReceiver
}
