import Foundation
public import Logging
import NIOCore
import NIOSSL
public import PostgresNIO
import WallTime

/// Where a PostgreSQL database is, from a URL as users write it:
/// `postgres://user:password@host:port/database` (or `postgresql://`). Query parameters:
/// `sslmode` (`disable`, the default here: the store is meant for a private network or loopback;
/// `require`: TLS with the system's trust roots), `pool` (most connections, default 20), `schema`
/// (the PostgreSQL schema of the store's tables, default `public`), `statement_timeout` (ms, 1 to
/// 3600000, default 30000: the longest any statement runs on the server; the stores bound their
/// transactions tighter by their calls' deadlines).
public struct PostgresLocation: Sendable {
    public let host: String
    public let port: Int
    public let username: String
    public let password: String?
    public let database: String
    public let requireTLS: Bool
    /// The `pool` query parameter, when given.
    public let poolSize: Int?
    /// The `schema` query parameter, when given.
    public let schema: String?
    /// The longest any statement runs on the server, set on every connection at startup.
    public let statementTimeout: Duration
    /// The URL without its password: what logs and errors show.
    public let redacted: String

    public init(url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw PostgresConnectionError.invalid(
                "a PostgreSQL URL looks like postgres://user:password@host:5432/database, not '\(Self.redact(url))'")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresConnectionError.invalid("the PostgreSQL URL '\(Self.redact(url))' names no host")
        }
        self.host = host
        port = components.port ?? 5432
        username = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        password = components.password.flatMap { $0.removingPercentEncoding }
        database = components.path.count > 1 ? String(components.path.dropFirst()) : username
        let parameters = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        switch parameters["sslmode"] ?? "disable" {
        case "disable": requireTLS = false
        case "require", "verify-full": requireTLS = true
        case let other: throw PostgresConnectionError.invalid("sslmode '\(other)' is not supported: use disable or require")
        }
        if let pool = parameters["pool"] {
            guard let size = Int(pool), (1...1000).contains(size) else {
                throw PostgresConnectionError.invalid("pool must be 1 to 1000 connections, not '\(pool)'")
            }
            poolSize = size
        } else {
            poolSize = nil
        }
        schema = parameters["schema"]
        if let timeout = parameters["statement_timeout"] {
            guard let milliseconds = Int64(timeout), (1...3_600_000).contains(milliseconds) else {
                throw PostgresConnectionError.invalid("statement_timeout must be 1 to 3600000 ms, not '\(timeout)'")
            }
            statementTimeout = .milliseconds(milliseconds)
        } else {
            statementTimeout = .seconds(30)
        }
        redacted = Self.redact(url)
    }

    /// The connection pool's configuration.
    public var configuration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database,
            tls: requireTLS ? .require(.makeClientConfiguration()) : .disable)
        if let poolSize { configuration.options.maximumConnections = poolSize }
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    /// The configuration of one connection (not pooled), failing to connect after `connectTimeout`.
    public func connectionConfiguration(connectTimeout: Duration = .seconds(10)) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        if requireTLS {
            tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        } else {
            tls = .disable
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .nanoseconds(Int64(connectTimeout.components.seconds) * 1_000_000_000)
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    /// Session settings every connection starts with.
    var startupParameters: [(String, String)] {
        [("statement_timeout", String(statementTimeout.wholeMilliseconds))]
    }

    /// Opens one connection and closes it: a database that is not there (or refuses these
    /// credentials) is reported at once, in one line, where the pool would retry for a minute.
    public func probe(timeout: Duration = .seconds(10), logger: Logger) async throws {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: connectionConfiguration(connectTimeout: timeout), id: 0, logger: logger)
            try await connection.close()
        } catch {
            throw PostgresConnectionError.unavailable("cannot reach PostgreSQL at \(redacted): \(PostgresErrors.describe(error))")
        }
    }

    /// The URL with any password replaced by `***`.
    public static func redact(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? "postgres://***"
    }
}

/// A URL that is not a PostgreSQL location, or a database that cannot be reached.
public enum PostgresConnectionError: Error, CustomStringConvertible, Sendable {
    case invalid(String)
    case unavailable(String)

    public var description: String {
        switch self {
        case .invalid(let message), .unavailable(let message): message
        }
    }
}

/// Database errors as one line a user can act on, never with credentials in them.
public enum PostgresErrors {
    public static func describe(_ error: any Error) -> String {
        if case .server(let server) = error as? PostgresError, let message = server.fields[.message] {
            return "\(message)\(server.fields[.sqlState].map { " (SQLSTATE \($0))" } ?? "")"
        }
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            let code = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return "\(message)\(code)"
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }

    /// The SQLSTATE of an error the server sent, from either of postgres-nio's error types (its
    /// EventLoopFuture API turns `PSQLError`s into `PostgresError`s); nil for any other error.
    public static func sqlState(_ error: any Error) -> String? {
        if case .server(let server) = error as? PostgresError { return server.fields[.sqlState] }
        return (error as? PSQLError)?.serverInfo?[.sqlState]
    }
}
