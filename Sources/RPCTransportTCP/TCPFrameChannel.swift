import NIOCore
import RPCCore
import RPCTransportNIO
import Synchronization
import WallTime

/// A NIO channel seen as a ``FrameChannel``.
///
/// Writes may come from any thread. They are encoded straight into one pending buffer, and the
/// first write after a flush schedules one flush on the event loop; everything written until it
/// runs leaves in the same system call. Under load many replies share a syscall; alone, a reply
/// costs one event-loop hop.
final class TCPFrameChannel: FrameChannel {
    private struct Pending {
        var buffer: ByteBuffer
        var flushScheduled = false
        /// Writes wait for the channel to become active (a client writes HELLO before connect completes).
        var active = false
        var closeRequested = false
        var closed = false

        /// The bytes written so far, leaving an empty buffer for the next writes.
        mutating func takeBuffer(_ allocator: ByteBufferAllocator) -> ByteBuffer {
            defer { buffer = allocator.buffer(capacity: 0) }
            return buffer
        }
    }

    let channel: any Channel
    let peerDescription: String
    let taskExecutor: (any TaskExecutor)?
    private let pending: Mutex<Pending>
    /// Told when a frame leaves (see `TCPServerTransport`'s `onActivity`).
    private let onActivity: (@Sendable () -> Void)?

    init(channel: any Channel, onActivity: (@Sendable () -> Void)?) {
        self.channel = channel
        self.onActivity = onActivity
        self.taskExecutor = EventLoopTasks.executor(for: channel.eventLoop)
        self.peerDescription = channel.remoteAddress.map { "\($0)" } ?? "unknown"
        self.pending = Mutex(Pending(buffer: channel.allocator.buffer(capacity: 0)))
    }

    func write(_ frames: [Frame]) {
        enum Next {
            case none
            case scheduleFlush
            case writeNow(ByteBuffer)
        }
        let next = pending.withLock { pending -> Next in
            guard !pending.closed, !pending.closeRequested else { return .none }
            // Room for every frame at once: growing as each field is written reallocated the
            // buffer (taken empty after each flush) three times a reply, ~2,000 instructions.
            pending.buffer.reserveCapacity(minimumWritableBytes: frames.reduce(0) { $0 + Frame.headerSize + $1.payload.count })
            for frame in frames { frame.encode(into: &pending.buffer) }
            guard pending.active else { return .none }
            if pending.buffer.readableBytes >= Self.eagerFlushBytes || Self.unblocksPeer(frames), channel.eventLoop.inEventLoop {
                return .writeNow(pending.takeBuffer(channel.allocator))
            }
            guard !pending.flushScheduled else { return .none }
            pending.flushScheduled = true
            return .scheduleFlush
        }
        switch next {
        case .none: break
        case .scheduleFlush: channel.eventLoop.execute { self.flush() }
        case .writeNow(let bytes): channel.writeAndFlush(bytes, promise: nil)
        }
    }

    /// Pending bytes at which a write made on the channel's own loop goes out at once instead of
    /// at the scheduled flush. A stream handler with data ready (Subscribe behind the log's end)
    /// makes message after message without suspending, so the scheduled flush would run only
    /// after the whole run and the client would wait while it is made; with this, the client
    /// decodes one batch while the next is made (Subscribe from one partition: about 480k
    /// records/s without, 750k with). Small replies still share a flush.
    static let eagerFlushBytes = 64 * 1024

    /// Whether `frames` hold a CREDIT, which goes out at once when written on the loop. The
    /// reader of a stream returns credit from its own task; when that task runs on the
    /// connection's loop, a scheduled flush would wait until the task suspends, which for a
    /// reader with messages buffered is after it has read them all, while the sender sits out of
    /// credit: sender and reader took turns instead of overlapping (a 200-byte server stream ran
    /// at half speed, each side's CPU idle half the time).
    static func unblocksPeer(_ frames: [Frame]) -> Bool {
        frames.contains { $0.type == .credit }
    }

    func close() {
        let schedule = pending.withLock { pending -> Bool in
            guard !pending.closed, !pending.closeRequested else { return false }
            pending.closeRequested = true
            // Before activation `becameActive` flushes and closes.
            return pending.active
        }
        if schedule {
            channel.eventLoop.execute {
                self.flush()
                self.channel.close(promise: nil)
            }
        }
    }

    func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> any ScheduledTimer {
        EventLoopTimer(scheduled: channel.eventLoop.scheduleTask(in: .nanoseconds(delay.wholeNanoseconds), body))
    }

    /// The channel is connected: send what was written before.
    func becameActive() {
        let closeRequested = pending.withLock { pending -> Bool in
            pending.active = true
            return pending.closeRequested
        }
        flush()
        if closeRequested { channel.close(promise: nil) }
    }

    func becameInactive() {
        pending.withLock { pending in
            pending.closed = true
            pending.buffer.clear()
        }
    }

    /// A frame arrived: tell whoever watches activity.
    func noteActivity() { onActivity?() }

    /// Writes and flushes everything pending. On the event loop.
    private func flush() {
        let bytes = pending.withLock { pending -> ByteBuffer? in
            pending.flushScheduled = false
            guard pending.active, pending.buffer.readableBytes > 0 else { return nil }
            return pending.takeBuffer(channel.allocator)
        }
        if let bytes {
            onActivity?()
            channel.writeAndFlush(bytes, promise: nil)
        }
    }
}

private struct EventLoopTimer: ScheduledTimer {
    let scheduled: Scheduled<Void>
    func cancel() { scheduled.cancel() }
}
