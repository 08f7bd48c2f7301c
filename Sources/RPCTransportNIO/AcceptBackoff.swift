import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// When to try `accept` again after it failed, and when to say so: a pure policy, beside the
/// handler that applies it to a listening channel.
///
/// Why: a listening socket stays readable while a connection waits in its backlog, so when the
/// process is out of descriptors (EMFILE, ENFILE) every turn of the event loop fails the same
/// accept again: a core at 100% and no log line. This waits as Go's net/http does (5 ms,
/// doubling to 1 s, back to the start after an accept succeeds) and warns at most once per
/// `warningInterval`, counting the failures in between. The connection stays in the backlog
/// until descriptors are free, so a client sees a slow connect, not a refusal.
struct AcceptBackoff {
    static let firstDelay: Int64 = 5_000_000
    static let longestDelay: Int64 = 1_000_000_000
    let warningInterval: Int64

    private(set) var delay: Int64 = 0
    private var failuresSinceWarning = 0
    private var lastWarning: Int64?

    init(warningIntervalNanoseconds: Int64 = 10_000_000_000) { warningInterval = warningIntervalNanoseconds }

    /// What a failed accept means. `now` is monotonic nanoseconds.
    mutating func failed(now: Int64) -> (pause: Int64, warnAfter: Int?) {
        delay = delay == 0 ? Self.firstDelay : min(delay * 2, Self.longestDelay)
        failuresSinceWarning += 1
        var warnAfter: Int?
        if lastWarning.map({ now - $0 >= warningInterval }) ?? true {
            warnAfter = failuresSinceWarning
            failuresSinceWarning = 0
            lastWarning = now
        }
        return (delay, warnAfter)
    }

    /// An accept succeeded: the next failure starts from the shortest pause again.
    mutating func accepted() { delay = 0 }
}

/// Applies `AcceptBackoff` to a server channel: stops reading (accepting) for the pause after a
/// failure, then starts again, and logs the rate-limited warning.
///
/// Why `autoRead` and not holding back `read` (as NIO's own AcceptBackoffHandler does): a
/// failed accept leaves NIO's server channel with its read still pending and its socket still
/// registered for readability, so no further `read` is asked for and the event loop wakes on
/// the same waiting connection at once, forever. Turning `autoRead` off unregisters the socket;
/// turning it back on registers it again.
final class AcceptPacer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private var policy = AcceptBackoff()
    private var resume: Scheduled<Void>?
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        policy.accepted()
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let ioError = error as? IOError, let options = context.channel.syncOptions else {
            context.fireErrorCaught(error)
            return
        }
        let (pause, warnAfter) = policy.failed(now: Int64(NIODeadline.now().uptimeNanoseconds))
        if let warnAfter {
            logger.warning(
                "accept failed: \(String(cString: strerror(ioError.errnoCode))); new connections wait in the backlog",
                metadata: [
                    "accept.errno": "\(ioError.errnoCode)", "accept.failures": "\(warnAfter)",
                    "accept.pause_ms": "\(pause / 1_000_000)",
                ])
        }
        guard resume == nil else { return }
        try? options.setOption(ChannelOptions.autoRead, value: false)
        resume = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(pause)) {
            self.resume = nil
            try? options.setOption(ChannelOptions.autoRead, value: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
        context.fireChannelInactive()
    }
}
