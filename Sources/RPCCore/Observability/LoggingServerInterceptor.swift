import Logging
import WallTime

/// Logs one line per call with its method, request id, status and duration.
///
/// Successful calls log at `debug` (a busy server would drown in them at `info`); failures log at
/// `info`, except `UNKNOWN`, `INTERNAL` and `DATA_LOSS`, which mean a bug and log at `error`.
public struct LoggingServerInterceptor: ServerInterceptor {
    public init() {}

    public func intercept(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Void
    ) async throws {
        let start = ContinuousClock.now
        do {
            try await next(context)
            context.baseLogger.debug(
                "call ok",
                metadata: context.logMetadata.merging(["rpc.duration_us": "\(Self.micros(since: start))"]) { $1 })
        } catch {
            let status = ServerConnection.status(for: error, logger: context.logger)
            let level: Logger.Level = [.unknown, .internalError, .dataLoss].contains(status.code) ? .error : .info
            context.baseLogger.log(
                level: level, "call failed",
                metadata: context.logMetadata.merging([
                    "rpc.status": "\(status.code.name)", "rpc.message": "\(status.message)",
                    "rpc.duration_us": "\(Self.micros(since: start))",
                ]) { $1 })
            throw error
        }
    }

    static func micros(since start: ContinuousClock.Instant) -> Int64 {
        (ContinuousClock.now - start).wholeMicroseconds
    }
}
