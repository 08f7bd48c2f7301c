import ArgumentParser
import Contracts
import Foundation
import RPCCore
import RPCHosting
import RPCTransportTCP

typealias ReflectionAPI = JframeReflectionV1

/// Where a generic call goes: `--server`, else the service's own address by package
/// (cqrs.broker.v1 -> CQRS_BROKER, cqrs.commands.v1 -> CQRS_COMMANDS, cqrs.queries.v1 ->
/// CQRS_QUERIES), as grpcurl takes an address per call.
struct AnyServer: ParsableArguments {
    @Option(help: "host:port of the server (default: the service's own address from CQRS_BROKER, CQRS_COMMANDS or CQRS_QUERIES).")
    var server: String?
    @Option(help: "Deadline of the call, ms.") var deadline: Int = 10_000
    @Flag(help: "Print replies as one JSON object per line (the default for call).") var json = false

    /// The service that hosts each package (others, such as health, go to the CommandService).
    static let hosts: [String: ServiceAddress] = ["cqrs.broker.v1": .broker, "cqrs.commands.v1": .commands, "cqrs.queries.v1": .queries]

    func address(forPackage package: String?) -> String {
        (package.flatMap { Self.hosts[$0] } ?? .commands).resolve(server)
    }

    @OptionGroup var security: ClientSecurityOptions

    func client(forPackage package: String?) throws -> RPCClient {
        try security.client(address: address(forPackage: package))
    }

    var options: CallOptions { CallOptions(timeout: .milliseconds(deadline)) }
}

/// `package.Service/Method` or `package.Service.Method` split into its parts.
func splitMethod(_ text: String) throws -> (package: String, service: String, method: String) {
    let normalized =
        text.contains("/")
        ? text : text.split(separator: ".").dropLast().joined(separator: ".") + "/" + (text.split(separator: ".").last.map(String.init) ?? "")
    let parts = normalized.split(separator: "/", maxSplits: 1).map(String.init)
    guard parts.count == 2, !parts[1].isEmpty, parts[0].contains(".") else {
        throw ValidationError("\(text) is not package.Service/Method")
    }
    return (String(parts[0].split(separator: ".").dropLast().joined(separator: ".")), parts[0], parts[1])
}

struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a server's services and methods, or describe one service or method, through reflection.",
        discussion: """
            cqrs describe                              every service of the server (--server, default the CommandService)
            cqrs describe cqrs.queries.v1.Accounts     a service's methods with their kinds and descriptions
            cqrs describe cqrs.queries.v1.Accounts/GetAccount   a method's request and response schemas
            """)
    @OptionGroup var target: AnyServer
    @Argument(help: "package.Service or package.Service/Method.") var name: String?

    func run() async throws {
        try await reporting {
            guard let name else {
                let reply = try await ReflectionAPI.Reflection.Client(try target.client(forPackage: nil)).listServices(
                    .init(), options: target.options)
                Connection.show(reply, json: target.json) {
                    reply.services.map { service in
                        ([service.name] + service.methods.map { "  \($0.name)  \($0.kind.rawValue)  \($0.requestType) -> \($0.responseType)" })
                            .joined(separator: "\n")
                    }.joined(separator: "\n")
                }
                return
            }
            if name.contains("/") {
                let (package, service, method) = try splitMethod(name)
                let reply = try await ReflectionAPI.Reflection.Client(try target.client(forPackage: package)).describeMethod(
                    .init(method: "\(service)/\(method)"), options: target.options)
                Connection.show(reply, json: target.json) {
                    """
                    \(reply.method)  \(reply.info.kind.rawValue)\(reply.info.idempotent == true ? "  idempotent" : "")
                      \(reply.description)
                    request \(reply.info.requestType):
                    \(pretty(reply.requestSchema))
                    response \(reply.info.responseType):
                    \(pretty(reply.responseSchema))
                    """
                }
                return
            }
            let package = name.split(separator: ".").dropLast().joined(separator: ".")
            let reply = try await ReflectionAPI.Reflection.Client(try target.client(forPackage: package)).describeService(
                .init(service: name), options: target.options)
            Connection.show(reply, json: target.json) {
                var lines = [reply.service]
                let shortName = name.split(separator: ".").last.map(String.init) ?? name
                for service in array(object(reply.definition)?["services"]) where text(object(service)?["name"]) == shortName {
                    for method in array(object(service)?["methods"]) {
                        let fields = object(method) ?? [:]
                        lines.append("  \(text(fields["name"]))  \(text(fields["kind"]))  \(text(fields["request"])) -> \(text(fields["response"]))")
                        lines.append("      \(text(fields["description"]))")
                    }
                }
                return lines.joined(separator: "\n")
            }
        }
    }
}

private func object(_ value: JSONValue?) -> [String: JSONValue]? {
    if case .object(let fields)? = value { return fields }
    return nil
}

private func array(_ value: JSONValue?) -> [JSONValue] {
    if case .array(let items)? = value { return items }
    return []
}

private func text(_ value: JSONValue?) -> String {
    if case .string(let string)? = value { return string }
    return value.map { "\($0)" } ?? ""
}

private func pretty(_ value: JSONValue) -> String {
    guard let data = "\(value)".data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data),
        let formatted = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    else { return "\(value)" }
    return String(decoding: formatted, as: UTF8.self)
}

struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call any method of any of our servers with JSON, as grpcurl does: the method's kind comes from reflection.",
        discussion: """
            cqrs call cqrs.queries.v1.Accounts/GetAccount '{"accountId":"acct-1"}'
            echo '{"accountId":"acct-1"}' | cqrs call cqrs.queries.v1.Accounts/GetAccount
            cqrs call cqrs.commands.v1.EventStore/SubscribeAll '{}'        (prints each message as it arrives)
            For client- and bidi-streaming methods each line of stdin (or of the argument) is one request.
            Replies print as one JSON object per line; failures as one line with the status as exit code.
            """)
    @OptionGroup var target: AnyServer
    @Argument(help: "package.Service/Method") var method: String
    @Argument(help: "The request as JSON (default: read from stdin).") var request: String?

    func run() async throws {
        try await reporting {
            let (package, service, name) = try splitMethod(method)
            let client = try target.client(forPackage: package)
            let info = try await ReflectionAPI.Reflection.Client(client).describeMethod(.init(method: "\(service)/\(name)"), options: target.options)
                .info
            let kind = CallKind(rawValue: info.kind.rawValue) ?? .unary
            let descriptor = MethodDescriptor(service: service, method: name, kind: kind)
            let input = request ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            let requests = try input.split(whereSeparator: \.isNewline).map { try RawJSON(validating: String($0)) }
            @Sendable func show(_ reply: RawJSON) {
                print(reply.description)
                fflush(nil)
            }
            switch kind {
            case .unary:
                guard requests.count == 1 else { throw ValidationError("\(method) is unary: give exactly one JSON request") }
                show(try await client.unary(requests[0], method: descriptor, responseType: RawJSON.self, options: target.options))
            case .serverStreaming:
                guard requests.count == 1 else { throw ValidationError("\(method) takes one JSON request") }
                // A stream may be endless (SubscribeAll, WatchAccount): no deadline unless one was given.
                let options = CommandLine.arguments.contains("--deadline") ? target.options : CallOptions()
                try await client.serverStreaming(requests[0], method: descriptor, responseType: RawJSON.self, options: options) { stream in
                    for try await reply in stream { show(reply) }
                }
            case .clientStreaming:
                show(
                    try await client.clientStreaming(
                        method: descriptor, requestType: RawJSON.self, responseType: RawJSON.self, options: target.options
                    ) { writer in
                        for request in requests { try await writer.write(request) }
                    })
            case .bidiStreaming:
                try await client.bidiStreaming(
                    method: descriptor, requestType: RawJSON.self, responseType: RawJSON.self, options: target.options,
                    requests: { writer in for request in requests { try await writer.write(request) } },
                    responses: { stream in for try await reply in stream { show(reply) } })
            }
        }
    }
}

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a server's health (jframe.health.v1): exit 0 when it is SERVING, 1 otherwise (for container health checks).")
    @OptionGroup var target: AnyServer
    @Option(help: "A service name to check instead of the whole server.") var service: String?

    func run() async throws {
        let status: String
        do {
            let client = try target.client(forPackage: nil)
            defer { client.close() }
            status = try await JframeHealthV1.Health.Client(client).check(.init(service: service), options: target.options).status.rawValue
        } catch {
            print(target.json ? #"{"status":"UNREACHABLE"}"# : "UNREACHABLE: \(error)")
            throw ExitCode.failure
        }
        print(target.json ? #"{"status":"\#(status)"}"# : status)
        if status != "SERVING" { throw ExitCode.failure }
    }
}
