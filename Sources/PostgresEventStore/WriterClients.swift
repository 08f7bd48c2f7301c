import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import RPCTransportNIO

/// The writer's own connections: per event loop, a client of at most one connection on that
/// loop, so that a batch goes out on the loop its callers' calls arrived on.
///
/// Why: a caller's append and its reply run on the loop of its RPC connection. When the writer's
/// connection was on the other loop, every lone command crossed threads twice more (the batch's
/// send woke the connection's loop, the reply's resumption woke the caller's), and on this kind
/// of VM a wake-up of the other vCPU costs tens of microseconds: one client's deposits ran about
/// a tenth slower whenever the pool happened to hand the writer a connection on the other loop.
/// The pool cannot be asked for a loop, so each loop gets a client of its own (a loop is an
/// `EventLoopGroup` of one), each connecting lazily and kept by its pool's own rules (closed after
/// its idle timeout, kept alive meanwhile). These connections are beside the store's pool, at most
/// one per loop (one per core).
final class WriterClients: Sendable {
    private let clients: [(loop: any EventLoop, client: PostgresClient)]
    private let runs: [Task<Void, Never>]

    init(configuration: PostgresClient.Configuration, group: MultiThreadedEventLoopGroup = .singleton, logger: Logger) {
        var configuration = configuration
        configuration.options.maximumConnections = 1
        configuration.options.minimumConnections = 0
        var clients: [(loop: any EventLoop, client: PostgresClient)] = []
        var runs: [Task<Void, Never>] = []
        for loop in group.makeIterator() {
            let client = PostgresClient(configuration: configuration, eventLoopGroup: loop, backgroundLogger: logger)
            clients.append((loop, client))
            // Immediate, and on its loop, for the reasons the store's pool runs so (`connect`).
            runs.append(Task.immediate(executorPreference: EventLoopTasks.executor(for: loop)) { await client.run() })
        }
        self.clients = clients
        self.runs = runs
    }

    /// The client whose connection is on `loop`; nil for a thread that is no loop of the group.
    func client(for loop: (any EventLoop)?) -> PostgresClient? {
        guard let loop else { return nil }
        return clients.first { $0.loop === loop }?.client
    }

    func shutDown() {
        for run in runs { run.cancel() }
    }
}

/// When the writer moves its connection to its callers' loop: after `wakesBeforeMove` wake-ups in
/// a row from callers on another loop than its connection's. Not at the first: with callers on
/// every loop each wake-up comes from a loop at random, and a move (handing one connection back,
/// leasing another) costs more than the hops it saves; a lone client, or clients that all
/// arrived on one loop, wake it from there every time.
struct WriterLoopAffinity {
    static let wakesBeforeMove = 8
    private var foreignWakes = 0

    /// The writer was woken for a batch; true when it should move to the waking loop now.
    mutating func woke(onConnectionLoop: Bool) -> Bool {
        guard !onConnectionLoop else {
            foreignWakes = 0
            return false
        }
        foreignWakes += 1
        return foreignWakes >= Self.wakesBeforeMove
    }
}
