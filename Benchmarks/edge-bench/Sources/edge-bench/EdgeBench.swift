// edge-bench: the grpc-swift-2 baseline's unary client (../shared/bench-grpc-baseline, grpc-bench
// client), pointed at any method: our HTTP/2 edge's jframe.testing.v1.Echo/Get by default.
// Copied rather than linked so the client code is the baseline's line for line; only `--method`
// and the impl name in the output line differ.
//
// Messages are Codable structs carried as JSON (Foundation's JSONEncoder/JSONDecoder) through a
// custom MessageSerializer/MessageDeserializer, so the numbers are comparable with a framed-JSON
// RPC protocol rather than with protobuf-encoded gRPC.
//
//   edge-bench --port P --concurrency C --seconds S --payload-bytes B [--method pkg.Service/Method]
//
// The client prints one JSON line on stdout; everything else goes to stderr.

import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix

// MARK: - Message and JSON codec

/// The request, echoed back unchanged as the response.
struct EchoMessage: Codable, Sendable, Equatable {
  var id: String
  var account: String
  var amount: Int
  var note: String

  /// A template whose JSON encoding (with any 36-character UUID string as `id`) is exactly
  /// `bytes` long; `note` carries the padding.
  static func padded(to bytes: Int) throws -> EchoMessage {
    var message = EchoMessage(
      id: UUID().uuidString, account: "acct-000042", amount: 123, note: "")
    let minimum = try JSONEncoder().encode(message).count
    guard bytes >= minimum else {
      throw ValidationError("--payload-bytes must be at least \(minimum)")
    }
    message.note = String(repeating: "x", count: bytes - minimum)
    let encoded = try JSONEncoder().encode(message).count
    precondition(encoded == bytes, "padding miscounted: \(encoded) != \(bytes)")
    return message
  }
}

struct JSONSerializer<Message: Encodable>: MessageSerializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
    do {
      return Bytes(try JSONEncoder().encode(message))
    } catch {
      throw RPCError(code: .internalError, message: "JSON encoding failed: \(error)")
    }
  }
}

struct JSONDeserializer<Message: Decodable>: MessageDeserializer {
  func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> Message {
    do {
      return try bytes.withUnsafeBytes { try JSONDecoder().decode(Message.self, from: Data($0)) }
    } catch {
      throw RPCError(code: .invalidArgument, message: "JSON decoding failed: \(error)")
    }
  }
}

@main
struct EdgeBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Keep C unary calls in flight over one connection; print one JSON line.")

  @Option(help: "The method called, package.Service/Method.") var method = "jframe.testing.v1.Echo/Get"
  @Option(help: "Server address.") var host = "127.0.0.1"
  @Option(help: "Server port.") var port = 50151
  @Option(help: "Calls kept in flight.") var concurrency = 1
  @Option(help: "Measured seconds (after the warm-up).") var seconds = 5.0
  @Option(help: "Encoded size of each JSON request in bytes.") var payloadBytes = 200
  @Option(help: "Unmeasured warm-up seconds.") var warmupSeconds = 1.0
  @Flag(help: "Disable grpc-swift-nio-transport's flush coalescing (on by default, ≤100 µs).")
  var noFlushCoalescing = false

  func validate() throws {
    guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
    guard seconds > 0, warmupSeconds >= 0 else { throw ValidationError("bad duration") }
  }

  func run() async throws {
    let parts = method.split(separator: "/")
    guard parts.count == 2 else { throw ValidationError("--method must be package.Service/Method") }
    let descriptor = MethodDescriptor(fullyQualifiedService: String(parts[0]), method: String(parts[1]))
    let template = try EchoMessage.padded(to: payloadBytes)
    let config = HTTP2ClientTransport.Posix.Config.defaults {
      if noFlushCoalescing { $0.connection.flushCoalescing = nil }
    }
    // An ipv4 target with the default (pick-first) policy: one subchannel, one HTTP/2 connection,
    // every call a stream on it.
    let transport = try HTTP2ClientTransport.Posix(
      target: .ipv4(address: host, port: port),
      transportSecurity: .plaintext,
      config: config
    )

    let clock = ContinuousClock()
    let measureFrom = clock.now + .seconds(warmupSeconds)
    let stopAt = measureFrom + .seconds(seconds)

    // Latencies (ns) of calls that completed inside [measureFrom, stopAt).
    let latencies = try await withGRPCClient(transport: transport) { client in
      try await withThrowingTaskGroup(of: [Int64].self) { group in
        for _ in 0 ..< concurrency {
          group.addTask {
            var samples: [Int64] = []
            samples.reserveCapacity(1 << 16)
            while true {
              var message = template
              message.id = UUID().uuidString
              let started = clock.now
              if started >= stopAt { break }
              let reply = try await client.unary(
                request: ClientRequest(message: message),
                descriptor: descriptor,
                serializer: JSONSerializer<EchoMessage>(),
                deserializer: JSONDeserializer<EchoMessage>(),
                options: .defaults
              ) { try $0.message }
              let finished = clock.now
              guard reply == message else {
                throw RPCError(code: .dataLoss, message: "echo mismatch for \(message.id)")
              }
              if finished >= measureFrom, finished < stopAt {
                let elapsed = (finished - started).components
                samples.append(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
              }
            }
            return samples
          }
        }
        var all: [Int64] = []
        for try await samples in group { all += samples }
        return all
      }
    }

    let sorted = latencies.sorted()
    func percentileMicros(_ p: Double) -> Double {
      guard !sorted.isEmpty else { return 0 }
      let rank = Int((p * Double(sorted.count)).rounded(.up))  // nearest-rank
      return Double(sorted[min(max(rank, 1), sorted.count) - 1]) / 1000
    }
    let line = String(
      format:
        #"{"impl":"grpc-swift-2 client","method":"\#(method)","concurrency":%d,"payload_bytes":%d,"calls":%d,"calls_per_s":%.1f,"p50_us":%.1f,"p99_us":%.1f,"p999_us":%.1f}"#,
      concurrency, payloadBytes, sorted.count, Double(sorted.count) / seconds,
      percentileMicros(0.50), percentileMicros(0.99), percentileMicros(0.999)
    )
    print(line)
  }
}
