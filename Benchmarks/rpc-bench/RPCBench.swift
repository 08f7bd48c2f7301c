import ArgumentParser
import Contracts
import Foundation
import RPCCore
import RPCHosting
import RPCTransportTCP
import WallTime

/// rpc-bench: the client side of the RPC benchmark (run by Scripts/bench rpc).
///
/// `unary` is the workload of ../shared/bench-grpc-baseline, call for call: a 200-byte JSON
/// request (`{"id":<uuid>,"account":"acct-000042","amount":123,"note":"xxx…"}`) echoed by
/// `jframe.testing.v1.Echo/Get` on rpc-testserver, checked, C calls in flight on one connection,
/// a warm-up and then a timed window; latency from before the call to the decoded reply.
/// `stream` measures server-streaming messages/s; `raw-stream` is its floor: the same 200-byte
/// messages, length-prefixed over plain TCP and JSON-decoded, with no RPC at all.
struct RPCBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rpc-bench", abstract: "RPC benchmark client: one JSON line per run on stdout.",
        subcommands: [Unary.self, Stream.self, RawStreamServer.self, RawStream.self])
}

struct Common: ParsableArguments {
    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port: Int
    @Option(help: "Measured seconds (after the warm-up).") var seconds = 5.0
    @Option(help: "Unmeasured warm-up seconds.") var warmupSeconds = 1.0
    @Option(help: "Encoded size of each JSON message in bytes.") var payloadBytes = 200
    @Option(help: "The client's initialCredit per stream (default: the library's).") var initialCredit: Int?
    @Option(help: "The client's stream window in bytes, 0 for none (default: the library's).") var streamWindowBytes: Int?

    /// The padded message, and an Echo client on one connection to the server.
    func connect() throws -> (JframeTestingV1.EchoMessage, RPCClient, JframeTestingV1.Echo.Client) {
        var configuration = ClientConfiguration()
        if let initialCredit { configuration.limits.initialCredit = initialCredit }
        if let streamWindowBytes { configuration.limits.streamWindowBytes = streamWindowBytes }
        let client = RPCClient(transport: TCPClientTransport(host: host, port: port), configuration: configuration)
        return (try paddedMessage(payloadBytes), client, JframeTestingV1.Echo.Client(client))
    }
}

/// The request: a UUID id and a note padded so the JSON is exactly `bytes` long.
func paddedMessage(_ bytes: Int) throws -> JframeTestingV1.EchoMessage {
    var message = JframeTestingV1.EchoMessage(id: UUID().uuidString, account: "acct-000042", amount: 123, note: "")
    let minimum = try JSONEncoder().encode(message).count
    guard bytes >= minimum else { throw ValidationError("--payload-bytes must be at least \(minimum)") }
    message.note = String(repeating: "x", count: bytes - minimum)
    let encoded = try JSONEncoder().encode(message).count
    precondition(encoded == bytes, "padding miscounted: \(encoded) != \(bytes)")
    return message
}

func percentile(_ sorted: [Int64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((p * Double(sorted.count)).rounded(.up))  // nearest rank, as the baseline
    return Double(sorted[min(max(rank, 1), sorted.count) - 1]) / 1000
}

/// The measured window: calls or messages count only between `measureFrom` and `stopAt`.
struct Window {
    let clock = ContinuousClock()
    let measureFrom: ContinuousClock.Instant
    let stopAt: ContinuousClock.Instant

    init(_ common: Common) {
        measureFrom = clock.now + .seconds(common.warmupSeconds)
        stopAt = measureFrom + .seconds(common.seconds)
    }
}

struct Unary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Keep C unary echo calls in flight on one connection.")
    @OptionGroup var common: Common
    @Option(help: "Calls kept in flight.") var concurrency = 1

    func run() async throws {
        let (template, client, echo) = try common.connect()
        let window = Window(common)
        let (clock, measureFrom, stopAt) = (window.clock, window.measureFrom, window.stopAt)
        let latencies = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var samples: [Int64] = []
                    samples.reserveCapacity(1 << 16)
                    while true {
                        var message = template
                        message.id = UUID().uuidString
                        let started = clock.now
                        if started >= stopAt { break }
                        let reply = try await echo.get(message)
                        let finished = clock.now
                        guard reply == message else {
                            throw RPCError(code: .dataLoss, message: "echo mismatch for \(message.id)")
                        }
                        if finished >= measureFrom, finished < stopAt { samples.append((finished - started).wholeNanoseconds) }
                    }
                    return samples
                }
            }
            var all: [Int64] = []
            for try await samples in group { all += samples }
            return all
        }
        client.close()
        let sorted = latencies.sorted()
        print(
            String(
                format:
                    #"{"impl":"jframe","concurrency":%d,"payload_bytes":%d,"calls":%d,"calls_per_s":%.1f,"p50_us":%.1f,"p99_us":%.1f,"p999_us":%.1f}"#,
                concurrency, common.payloadBytes, sorted.count, Double(sorted.count) / common.seconds,
                percentile(sorted, 0.5), percentile(sorted, 0.99), percentile(sorted, 0.999)))
    }
}

struct Stream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a server stream of 200-byte messages (Echo/Expand) for a timed window.")
    @OptionGroup var common: Common

    func run() async throws {
        let (template, client, echo) = try common.connect()
        let window = Window(common)
        let (clock, measureFrom, stopAt) = (window.clock, window.measureFrom, window.stopAt)
        // More than can be read in the window; the call is cancelled when the window ends.
        let counted = try await echo.expand(.init(message: template, count: 100_000_000)) { stream in
            var counted = 0
            for try await message in stream {
                let now = clock.now
                if now >= stopAt { break }
                guard message.id == template.id, message.note.utf8.count == template.note.utf8.count else {
                    throw RPCError(code: .dataLoss, message: "stream message mismatch")
                }
                if now >= measureFrom { counted += 1 }
            }
            return counted
        }
        client.close()
        print(
            String(
                format: #"{"impl":"jframe","payload_bytes":%d,"messages":%d,"messages_per_s":%.1f}"#, common.payloadBytes,
                counted, Double(counted) / common.seconds))
    }
}

@main
enum Entry {
    static func main() { ConcurrencyOnEventLoops.run { await RPCBench.main() } }
}
