import ArgumentParser
import BenchSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// bench-context: the hour a benchmark ran in, measured beside it. On a shared VM both floors
/// move by more than most changes do (the loopback round trip from 24 to over 100 µs, fdatasync
/// from 2k to 9k/s), so every `Scripts/bench` run prints them with its figures.
///
/// - The loopback floor: one TCP connection on 127.0.0.1 between two threads with blocking
///   sockets and TCP_NODELAY, a `--payload-bytes` message sent and echoed back, timed per round
///   trip: what any RPC over loopback pays at least (two wake-ups, two system calls each way).
/// - The disk: `write` of the same size then `fdatasync`, one after the other, on a file in
///   `--dir` (the disk the benchmarks store on).
@main
struct BenchContext: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-context",
        abstract: "Measure the loopback TCP ping-pong floor and the disk's write+fdatasync rate; one JSON line.")

    @Option(help: "Directory on the disk to measure (a scratch file is made and removed there).") var dir: String
    @Option(help: "Seconds for each of the two measurements.") var seconds = 2.0
    @Option(help: "Bytes per ping-pong message and per write.") var payloadBytes = 200

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        guard payloadBytes >= 1 else { throw ValidationError("--payload-bytes must be at least 1") }
    }

    func run() throws {
        let pingPong = try loopbackPingPong()
        let syncs = try fdatasyncRate()
        emit([
            "case": "context", "loopback_pingpong_p50_us": pingPong.p50, "loopback_pingpong_p99_us": pingPong.p99,
            "loopback_round_trips_per_s": pingPong.rate, "payload_bytes": payloadBytes,
            "fdatasync_per_s": syncs, "dir": dir,
        ])
    }

    /// Round trips of `payloadBytes` over one loopback connection: p50, p99 (µs) and rate.
    func loopbackPingPong() throws -> (p50: Double, p99: Double, rate: Double) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        try withSocketAddress(&address) { guard bind(listener, $0, $1) == 0, listen(listener, 1) == 0 else { throw posixError("bind") } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }

        let size = payloadBytes
        let echo = Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            noDelay(connection)
            var buffer = [UInt8](repeating: 0, count: size)
            while readFully(connection, &buffer), writeFully(connection, buffer) {}
            close(connection)
        }
        echo.start()

        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        try withSocketAddress(&address) { guard connect(client, $0, $1) == 0 else { throw posixError("connect") } }
        noDelay(client)
        let message = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        var reply = [UInt8](repeating: 0, count: size)
        var latencies: [Double] = []
        let clock = ContinuousClock()
        let warmUpEnd = clock.now + .milliseconds(200)
        let end = warmUpEnd + .milliseconds(Int(seconds * 1000))
        while true {
            let start = clock.now
            guard writeFully(client, message), readFully(client, &reply) else { throw posixError("ping-pong") }
            let now = clock.now
            if now >= end { break }
            if start >= warmUpEnd { latencies.append((now - start).seconds * 1e6) }
        }
        latencies.sort()
        return (
            percentile(latencies, 0.5).rounded(toPlaces: 1), percentile(latencies, 0.99).rounded(toPlaces: 1),
            (Double(latencies.count) / seconds).rounded()
        )
    }

    /// `write` + `fdatasync` of `payloadBytes`, one after another, per second.
    func fdatasyncRate() throws -> Double {
        let path = (dir as NSString).appendingPathComponent("bench-context-\(getpid()).scratch")
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw posixError("open \(path)") }
        defer {
            close(fd)
            unlink(path)
        }
        let bytes = [UInt8](repeating: UInt8(ascii: "r"), count: payloadBytes)
        let clock = ContinuousClock()
        let end = clock.now + .milliseconds(Int(seconds * 1000))
        let start = clock.now
        var count = 0
        while clock.now < end {
            guard writeFully(fd, bytes), fdatasync(fd) == 0 else { throw posixError("write+fdatasync") }
            count += 1
        }
        return (Double(count) / (clock.now - start).seconds).rounded()
    }
}

private func withSocketAddress(_ address: inout sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) throws {
    try withUnsafePointer(to: &address) {
        try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

private func noDelay(_ fd: Int32) {
    var on: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
}

private func readFully(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
    var done = 0
    let total = buffer.count
    while done < total {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, total - done) }
        if n <= 0 { return false }
        done += n
    }
    return true
}

private func writeFully(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if n <= 0 { return false }
        done += n
    }
    return true
}

private func posixError(_ what: String) -> ValidationError { ValidationError("\(what): \(String(cString: strerror(errno)))") }

extension Double {
    fileprivate func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
