import Foundation
import Synchronization

/// One of our server binaries (broker, command-service, ...) running as a real process on a real
/// port, for integration tests: started on port 0, found by the JSON line it prints once
/// listening, restartable on the same port and data, killable with SIGKILL.
///
/// The binaries are looked up next to the running test bundle (`.build/debug`).
public final class ServerProcess: Sendable {
    public let binary: String
    private let arguments: [String]
    private let announcements: Set<String>
    private let state: Mutex<(process: Process?, port: Int, others: [String: Int])>

    /// Starts `binary` with `arguments` plus `--listen 127.0.0.1:<port>`; port 0 picks one.
    /// Waits for its `listening` line, and for the lines of `announcements` too (other ports it
    /// opens, such as `listening-kafka`), whose ports `port(of:)` then gives.
    public init(_ binary: String, arguments: [String], port: Int = 0, announcements: Set<String> = []) throws {
        self.binary = binary
        self.arguments = arguments
        self.announcements = announcements
        state = Mutex((nil, port, [:]))
        try start()
    }

    public var port: Int { state.withLock { $0.port } }
    /// The port another announced line named (see `init`).
    public func port(of announcement: String) -> Int? { state.withLock { $0.others[announcement] } }
    public var address: String { "127.0.0.1:\(port)" }
    public var isRunning: Bool { state.withLock { $0.process?.isRunning ?? false } }

    /// The directory holding the built binaries.
    public static let binDirectory: URL = {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("broker").path) && directory.path != "/" {
            directory = directory.deletingLastPathComponent()
        }
        return directory
    }()

    /// Starts the process again (after `kill` or `terminate`) on the same port with the same arguments.
    public func start() throws {
        let process = Process()
        process.executableURL = Self.binDirectory.appendingPathComponent(binary)
        process.arguments = ["--listen", "127.0.0.1:\(port)", "--log-level", "warning"] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var port: Int?
        var others: [String: Int] = [:]
        while port == nil || !announcements.isSubset(of: others.keys) {
            var line = Data()
            while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
                line.append(byte)
            }
            guard let event = try? JSONSerialization.jsonObject(with: line) as? [String: Any], let name = event["event"] as? String,
                let announced = event["port"] as? Int
            else {
                process.terminate()
                throw ServerProcessError(description: "\(binary) did not announce a port (printed: \(String(decoding: line, as: UTF8.self)))")
            }
            if name == "listening" { port = announced } else { others[name] = announced }
        }
        state.withLock { $0 = (process, port!, others) }
    }

    /// SIGKILL: no shutdown work at all, as in a crash.
    public func kill() {
        guard let process = state.withLock({ $0.process }) else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then waits: a graceful shutdown. Returns the exit status.
    @discardableResult
    public func terminate() -> Int32 {
        guard let process = state.withLock({ $0.process }), process.isRunning else { return 0 }
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

public struct ServerProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Polls `condition` every 50 ms until it holds; throws after `timeout`.
public func waitUntil(_ what: String = "a condition", timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !(try await condition()) {
        guard ContinuousClock.now < deadline else { throw ServerProcessError(description: "timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(50))
    }
}

/// A fresh directory under the system temp dir, removed by `cleanup()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "cqrs-test") {
        var template = Array((NSTemporaryDirectory() + "/\(prefix)-XXXXXX").utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    public func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}
