import Contracts
import Foundation
import RPCCore

/// `jframe.reflection.v1.Reflection`: what a live server hosts, described from the Protocols/
/// definitions its code was generated from, so a client needs no local copy to call it.
public struct ReflectionService: JframeReflectionV1.Reflection.ServiceProtocol {
    public typealias V1 = JframeReflectionV1

    private let hosted: [MethodDescriptor]
    private let definitions: [String: JSONValue]

    /// - Parameters:
    ///   - methods: the methods the server hosts (reflection's own are added).
    ///   - catalog: package name -> package file text; by default every generated package.
    public init(hosting methods: [MethodDescriptor], catalog: [String: String] = ProtocolCatalog.packages) {
        var all = methods
        for method in V1.Reflection.Method.all where !all.contains(method) { all.append(method) }
        hosted = all.sorted { $0.fullName < $1.fullName }
        var definitions: [String: JSONValue] = [:]
        for (package, text) in catalog {
            definitions[package] = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        }
        self.definitions = definitions
    }

    public func listServices(_ request: V1.ListServicesRequest, context: ServerContext) async throws
        -> V1.ListServicesResponse
    {
        let services = Dictionary(grouping: hosted, by: \.service).keys.sorted().map { service in
            V1.ServiceInfo(
                name: service, package: Self.package(of: service),
                methods: hosted.filter { $0.service == service }.map(info))
        }
        return V1.ListServicesResponse(services: services)
    }

    public func describeService(_ request: V1.DescribeServiceRequest, context: ServerContext) async throws
        -> V1.DescribeServiceResponse
    {
        guard hosted.contains(where: { $0.service == request.service }),
            let definition = definitions[Self.package(of: request.service)]
        else {
            throw RPCError(code: .notFound, message: "this server hosts no service \(request.service)")
        }
        return V1.DescribeServiceResponse(service: request.service, definition: definition)
    }

    public func describeMethod(_ request: V1.DescribeMethodRequest, context: ServerContext) async throws
        -> V1.DescribeMethodResponse
    {
        let parts = request.method.split(separator: "/")
        guard parts.count == 2, parts[0].contains(".") else {
            throw RPCError.invalidArgument(
                "method must be package.Service/Method",
                violations: [FieldViolation(field: "method", description: "'\(request.method)' is not package.Service/Method")])
        }
        guard let method = hosted.first(where: { $0.fullName == request.method }),
            let definition = definitions[Self.package(of: method.service)],
            case .object(let messages)? = definition["messages"]
        else {
            throw RPCError(code: .notFound, message: "this server hosts no method \(request.method)")
        }
        let declared = declaration(of: method)
        let info = info(method)
        return V1.DescribeMethodResponse(
            method: method.fullName, info: info,
            description: declared?["description"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? "",
            requestSchema: messages[Self.shortName(info.requestType)] ?? .object([:]),
            responseSchema: messages[Self.shortName(info.responseType)] ?? .object([:]),
            messages: .object(messages))
    }

    private func info(_ method: MethodDescriptor) -> V1.MethodInfo {
        let declared = declaration(of: method)
        func field(_ key: String) -> String {
            if case .string(let value)? = declared?[key] { return value }
            return ""
        }
        let package = Self.package(of: method.service)
        var idempotent = false
        if case .bool(let value)? = declared?["idempotent"] { idempotent = value }
        return V1.MethodInfo(
            name: method.method, kind: V1.CallKind(rawValue: method.kind.rawValue) ?? .unary,
            requestType: package + "." + field("request"), responseType: package + "." + field("response"),
            idempotent: idempotent)
    }

    /// The method's entry in its package file.
    private func declaration(of method: MethodDescriptor) -> JSONValue? {
        guard case .array(let services)? = definitions[Self.package(of: method.service)]?["services"] else { return nil }
        let serviceName = String(method.service.split(separator: ".").last ?? "")
        for service in services where service["name"] == .string(serviceName) {
            guard case .array(let methods)? = service["methods"] else { continue }
            return methods.first { $0["name"] == .string(method.method) }
        }
        return nil
    }

    static func package(of service: String) -> String {
        guard let dot = service.lastIndex(of: ".") else { return service }
        return String(service[..<dot])
    }

    static func shortName(_ qualified: String) -> String {
        String(qualified.split(separator: ".").last ?? "")
    }
}
