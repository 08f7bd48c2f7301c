import Synchronization

/// One call made by a client, from HEADERS until its status.
final class ClientCall: Sendable {
    let streamID: UInt32
    let method: MethodDescriptor
    /// The response messages; ends with the status (OK: nil, else the error is thrown).
    let responses: InboundMessages
    let outboundCredit: OutboundCredit
    private let connection: ClientConnection
    let deadlineTimer = Mutex<(any ScheduledTimer)?>(nil)

    init(streamID: UInt32, method: MethodDescriptor, connection: ClientConnection, limits: ConnectionLimits, peerCredit: Int) {
        self.streamID = streamID
        self.method = method
        self.connection = connection
        self.outboundCredit = OutboundCredit(initial: peerCredit)
        if method.kind.hasSingleResponse {
            responses = InboundMessages()
        } else {
            responses = InboundMessages(window: ReceiveWindow(limits)) { [connection] n in
                connection.grantCredit(n, streamID: streamID)
            }
        }
    }

    /// Sends one request message, waiting for credit.
    @Sendable func send(_ message: [UInt8]) async throws {
        try await outboundCredit.acquire()
        guard connection.write([Frame(type: .message, streamID: streamID, payload: message)], for: self) else {
            throw RPCError(code: .cancelled, message: "the call is over")
        }
    }

    /// Tells the server no more requests follow.
    func halfClose() {
        _ = connection.write([Frame(type: .message, flags: .endStream, streamID: streamID)], for: self)
    }

    /// Abandons the call: CANCEL goes to the server, and readers see `code`.
    func cancel(_ code: StatusCode, _ message: String) {
        connection.cancel(self, RPCError(code: code, message: message))
    }

    /// Runs `body`, turning task cancellation into `CANCELLED` (and a CANCEL frame), and cancels
    /// the call if `body` leaves before the server ended it.
    func run<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result {
        do {
            let result = try await body()
            cancel(.cancelled, "the caller stopped reading before the call ended")
            return result
        } catch is CancellationError {
            cancel(.cancelled, "the caller cancelled the call")
            throw RPCError(code: .cancelled, message: "the call was cancelled")
        } catch {
            cancel(.cancelled, "the caller stopped reading before the call ended")
            throw error
        }
    }
}
