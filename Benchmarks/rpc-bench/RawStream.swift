import ArgumentParser
import Contracts
import Foundation
import RPCCore

#if canImport(Glibc)
import Glibc
#endif

/// The floor for streaming: 200-byte JSON messages with a 4-byte length prefix over a plain TCP
/// socket, written in 64 KiB batches by a thread, read and decoded by the client with the same
/// generated decoder ours uses. No RPC, no flow control, no framing beyond the length: the ratio
/// against it is the cost of the protocol itself.
struct RawStreamServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw-stream-server", abstract: "Serve an endless raw length-prefixed JSON stream.")
    @Option var port = 0
    @Option var payloadBytes = 200

    func run() throws {
        let message = try JSONEncoder().encode(paddedMessage(payloadBytes))
        var frame = [UInt8]()
        withUnsafeBytes(of: UInt32(message.count).bigEndian) { frame.append(contentsOf: $0) }
        frame.append(contentsOf: message)
        var batch = [UInt8]()
        while batch.count + frame.count <= 65536 { batch.append(contentsOf: frame) }

        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        listen(listener, 16)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        print(#"{"event":"listening","service":"raw-stream-server","host":"127.0.0.1","port":\#(UInt16(bigEndian: address.sin_port))}"#)
        fflush(nil)
        let payload = batch
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            Thread.detachNewThread {
                payload.withUnsafeBytes { bytes in
                    while write(connection, bytes.baseAddress, bytes.count) > 0 {}
                }
                close(connection)
            }
        }
    }
}

struct RawStream: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw-stream", abstract: "Read and JSON-decode the raw stream for a timed window.")
    @OptionGroup var common: Common

    func run() throws {
        let connection = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(common.port).bigEndian)
        address.sin_addr.s_addr = inet_addr(common.host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(connection, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ValidationError("cannot connect to \(common.host):\(common.port)") }
        let window = Window(common)
        let (clock, measureFrom, stopAt) = (window.clock, window.measureFrom, window.stopAt)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var pending = [UInt8]()
        var counted = 0
        reading: while true {
            let n = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            pending.append(contentsOf: buffer[0..<n])
            var offset = 0
            while pending.count - offset >= 4 {
                let length =
                    Int(pending[offset]) << 24 | Int(pending[offset + 1]) << 16 | Int(pending[offset + 2]) << 8
                    | Int(pending[offset + 3])
                guard pending.count - offset - 4 >= length else { break }
                let message = try MessageCoding.decode(
                    JframeTestingV1.EchoMessage.self, from: Array(pending[(offset + 4)..<(offset + 4 + length)]))
                precondition(message.account == "acct-000042")
                offset += 4 + length
                let now = clock.now
                if now >= stopAt { break reading }
                if now >= measureFrom { counted += 1 }
            }
            pending.removeFirst(offset)
        }
        close(connection)
        print(
            String(
                format: #"{"impl":"raw-tcp-json","payload_bytes":%d,"messages":%d,"messages_per_s":%.1f}"#,
                common.payloadBytes, counted, Double(counted) / common.seconds))
    }
}
