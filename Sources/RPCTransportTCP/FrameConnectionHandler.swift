import Logging
import NIOCore
import RPCCore
import WallTime

/// Sits after the ``FrameReader`` (which calls it with each frame): hands frames to the RPC core's receiver, times out partial
/// frames, and stops reading while the socket cannot take more writes (so a client that does not
/// read its replies cannot make the server buffer them without bound).
final class FrameConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = FrameEvent

    private let frameChannel: TCPFrameChannel
    private let receiver: any FrameReceiver
    private let frameReadTimeout: Duration
    private var partialFrameTimer: Scheduled<Void>?

    init(frameChannel: TCPFrameChannel, receiver: any FrameReceiver, limits: ConnectionLimits) {
        self.frameChannel = frameChannel
        self.receiver = receiver
        self.frameReadTimeout = limits.frameReadTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        frameChannel.becameActive()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partialFrameTimer?.cancel()
        frameChannel.becameInactive()
        receiver.connectionClosed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data), on: context.eventLoop)
    }

    /// An event from the ``FrameReader`` before this handler, straight or through the pipeline.
    func receive(_ event: FrameEvent, on eventLoop: any EventLoop) {
        switch event {
        case .frame(let frame):
            frameChannel.noteActivity()
            partialFrameTimer?.cancel()
            partialFrameTimer = nil
            receiver.receive(frame)
        case .oversizedFrame(let type, let streamID, let length):
            partialFrameTimer?.cancel()
            partialFrameTimer = nil
            receiver.receiveOversizedFrame(type: type, streamID: streamID, length: length)
        case .partialFrame:
            guard partialFrameTimer == nil else { return }
            let receiver = self.receiver
            let timeout = frameReadTimeout
            partialFrameTimer = eventLoop.scheduleTask(in: .nanoseconds(timeout.wholeNanoseconds)) {
                receiver.receiveUnrecoverable(
                    RPCError(code: .deadlineExceeded, message: "a frame did not arrive whole within \(timeout)"))
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Backpressure: stop reading new requests while replies cannot drain.
        context.channel.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenComplete { _ in }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case let error as FrameTooLargeError:
            receiver.receiveUnrecoverable(
                RPCError(
                    code: .resourceExhausted,
                    message: "frame of \(error.length) bytes exceeds the connection limit of \(error.limit) bytes"))
        case is IOError, is ChannelError:
            context.close(promise: nil)
        default:
            receiver.receiveUnrecoverable(RPCError(code: .internalError, message: "transport error: \(error)"))
        }
    }
}

/// Adds the decoder and connection handler that turn `channel` into a frame connection.
/// On the channel's event loop.
func addFrameHandlers(
    to channel: any Channel, limits: ConnectionLimits, onActivity: (@Sendable () -> Void)?, makeReceiver: (TCPFrameChannel) -> any FrameReceiver
) throws {
    let frameChannel = TCPFrameChannel(channel: channel, onActivity: onActivity)
    let receiver = makeReceiver(frameChannel)
    let pipeline = channel.pipeline.syncOperations
    let connection = FrameConnectionHandler(frameChannel: frameChannel, receiver: receiver, limits: limits)
    // Frames go from the reader to the connection handler by a call, not through the pipeline;
    // the handler still sees the channel's other events there.
    try pipeline.addHandler(FrameReader(limits: limits) { event, context in connection.receive(event, on: context.eventLoop) })
    try pipeline.addHandler(connection)
}
