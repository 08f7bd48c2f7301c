import JSONCoding

/// Writes the Swift file of one package.
struct PackageEmitter {
    let package: Package
    let all: [String: Package]

    func emit() throws -> String {
        var out = ContractGenerator.header
        out += "\npublic import RPCCore\n\n"
        out += "/// \(package.json["description"]?.string ?? package.name)\n"
        out += "public enum \(package.namespace) {\n"
        out += "    /// The package name on the wire.\n"
        out += "    public static let package = \"\(package.name)\"\n"
        out += "}\n"
        for (name, schema) in package.messages {
            out += "\nextension \(package.namespace) {\n"
            out += try emitMessage(name, schema).indented()
            out += "}\n"
        }
        for service in package.services {
            out += "\nextension \(package.namespace) {\n"
            out += try emitService(service).indented()
            out += "}\n"
            out += try emitRegistration(service)
        }
        out += "\nextension \(package.namespace) {\n"
        out += "    /// The text of \(package.fileName), served by the reflection service.\n"
        out += "    public static let definition = #\"\"\"\n"
        out += package.text.hasSuffix("\n") ? package.text : package.text + "\n"
        out += "\"\"\"#\n}\n"
        return out
    }

    // MARK: Messages

    private func emitMessage(_ name: String, _ schema: OrderedJSON) throws -> String {
        let place = "\(package.fileName) messages.\(name)"
        var out = docComment(schema["description"]?.string)
        let type = schema["type"]?.string
        if type == "string", let cases = schema["enum"]?.array {
            out += "public enum \(name): String, Codable, Sendable, Hashable, CaseIterable, JSONMessage {\n"
            for item in cases {
                guard let raw = item.string else { throw GeneratorError("\(place): enum values must be strings") }
                out += "    case \(identifier(lowerCamel(raw))) = \"\(raw)\"\n"
            }
            out += """

                    public init(json scanner: inout JSONScanner) throws {
                        let raw = try scanner.string()
                        guard let value = Self(rawValue: raw) else { throw scanner.failure("unknown \(name) '\\(raw)'") }
                        self = value
                    }

                    public func writeJSON(to writer: inout JSONWriter) { writer.string(rawValue) }

                """
            return out + "}\n"
        }
        guard type == "object", let properties = schema["properties"]?.members else {
            throw GeneratorError(
                "\(place): a message must be an object with \"properties\" or a string with \"enum\"")
        }
        try rejectUnsupported(schema, at: place, allowing: ["properties", "required", "additionalProperties"])
        let required = Set((schema["required"]?.array ?? []).compactMap(\.string))
        for key in required where !properties.contains(where: { $0.0 == key }) {
            throw GeneratorError("\(place): required member \(key) is not among the properties")
        }
        var fields: [(name: String, type: SwiftType, optional: Bool, doc: String?)] = []
        for (property, propertySchema) in properties {
            guard property.first?.isLetter == true, property.allSatisfy({ $0.isLetter || $0.isNumber }) else {
                throw GeneratorError("\(place).\(property): member names must be lowerCamelCase letters and digits")
            }
            let swiftType = try self.swiftType(propertySchema, at: "\(place).\(property)")
            fields.append((property, swiftType, !required.contains(property), propertySchema["description"]?.string))
        }
        out += "public struct \(name): Codable, Sendable, Hashable, JSONMessage, SchemaValidated {\n"
        for field in fields {
            out += docComment(field.doc).indented()
            out += "    public var \(identifier(field.name)): \(field.type.name)\(field.optional ? "?" : "")\n"
        }
        let parameters = fields.map {
            "\($0.name): \($0.type.name)\($0.optional ? "? = nil" : "")"
        }
        out += "\n    public init(\(parameters.joined(separator: ", "))) {\n"
        for field in fields { out += "        self.\(identifier(field.name)) = \(identifier(field.name))\n" }
        out += "    }\n"
        if fields.contains(where: { $0.type.int64String || $0.type.int64StringArray }) {
            out += try emitCoding(fields.map { ($0.name, $0.type, $0.optional) })
        }
        out += emitJSON(name, fields.map { ($0.name, $0.type, $0.optional) })
        out += try emitValidation(properties: properties, required: required, fields: fields.map { ($0.name, $0.type) }, at: place)
        return out + "}\n"
    }

    // MARK: Validation

    /// `validate(path:into:)`: a violation for each member that breaks a constraint of its schema
    /// (minLength/maxLength in code points, pattern, minimum/maximum, minItems/maxItems), and the
    /// same for the messages it holds. Servers run it on every request before the handler.
    private func emitValidation(
        properties: [(String, OrderedJSON)], required: Set<String>, fields: [(name: String, type: SwiftType)], at place: String
    ) throws -> String {
        var patterns: [String] = []
        var body = ""
        for ((property, schema), field) in zip(properties, fields) {
            let optional = !required.contains(property)
            let value = optional ? "value" : "self.\(identifier(property))"
            let checks = try validationChecks(
                schema, type: field.type, value: value, path: "path + \"\(property)\"", depth: 0, patterns: &patterns, at: "\(place).\(property)")
            guard !checks.isEmpty else { continue }
            if optional {
                body += "if let value = self.\(identifier(property)) {\n" + checks.joined().indented() + "}\n"
            } else {
                body += checks.joined()
            }
        }
        var out = ""
        for (index, pattern) in patterns.enumerated() {
            out += "\n    private static let pattern\(index) = SchemaPattern(#\"\(pattern)\"#)\n"
        }
        out += "\n    public func validate(path: String, into violations: inout [FieldViolation]) {\n"
        out += body.isEmpty ? "" : body.indented(by: 8)
        return out + "    }\n"
    }

    /// Swift statements (each ending in a newline) checking `value` against `schema`.
    private func validationChecks(
        _ schema: OrderedJSON, type: SwiftType, value: String, path: String, depth: Int, patterns: inout [String], at place: String
    ) throws -> [String] {
        func violation(_ condition: String, _ description: String) -> String {
            "if \(condition) { violations.append(FieldViolation(field: \(path), description: \(swiftLiteral(description)))) }\n"
        }
        if let ref = schema["$ref"]?.string {
            return try isObjectMessage(ref, at: place) ? ["\(value).validate(member: \(path) + \".\", into: &violations)\n"] : []
        }
        var checks: [String] = []
        switch schema["type"]?.string {
        case "string" where !type.int64String:
            if let min = schema["minLength"]?.integer {
                checks.append(
                    violation("\(value).unicodeScalars.count < \(min)", min == 1 ? "must not be empty" : "must be at least \(min) characters"))
            }
            if let max = schema["maxLength"]?.integer {
                checks.append(violation("\(value).unicodeScalars.count > \(max)", "must be at most \(max) characters"))
            }
            if let pattern = schema["pattern"]?.string {
                guard !pattern.contains("\"#") else { throw GeneratorError("\(place): a pattern must not contain \"#") }
                patterns.append(pattern)
                checks.append(violation("!Self.pattern\(patterns.count - 1).matches(\(value))", "must match \(pattern)"))
            }
        case "string", "integer":
            if let min = schema["minimum"]?.integer { checks.append(violation("\(value) < \(min)", "must be at least \(min)")) }
            if let max = schema["maximum"]?.integer { checks.append(violation("\(value) > \(max)", "must be at most \(max)")) }
        case "array":
            if let min = schema["minItems"]?.integer {
                checks.append(violation("\(value).count < \(min)", min == 1 ? "must not be empty" : "must hold at least \(min) items"))
            }
            if let max = schema["maxItems"]?.integer { checks.append(violation("\(value).count > \(max)", "must hold at most \(max) items")) }
            if let items = schema["items"] {
                let element = SwiftType(name: String(type.name.dropFirst().dropLast()), int64String: type.int64StringArray)
                let (index, item) = ("i\(depth)", "e\(depth)")
                let inner = try validationChecks(
                    items, type: element, value: item, path: "\(path) + \"[\\(\(index))]\"", depth: depth + 1, patterns: &patterns, at: place + "[]")
                if !inner.isEmpty {
                    checks.append("for (\(index), \(item)) in \(value).enumerated() {\n" + inner.joined().indented() + "}\n")
                }
            }
        case "object":
            if let values = schema["additionalProperties"], case .object = values, values["$ref"] != nil || values["type"] != nil {
                let element = SwiftType(name: String(type.name.dropFirst("[String: ".count).dropLast()))
                let (key, item) = ("k\(depth)", "v\(depth)")
                let inner = try validationChecks(
                    values, type: element, value: item, path: "\(path) + \".\" + \(key)", depth: depth + 1, patterns: &patterns, at: place + "{}")
                if !inner.isEmpty {
                    checks.append("for (\(key), \(item)) in \(value) {\n" + inner.joined().indented() + "}\n")
                }
            }
        default:
            break
        }
        return checks
    }

    /// Whether `$ref` names an object message (which validates itself), not a string enum.
    private func isObjectMessage(_ ref: String, at place: String) throws -> Bool {
        let (file, name) = try refParts(ref, at: place)
        guard let schema = all[file]?.messages.first(where: { $0.0 == name })?.1 else { throw GeneratorError("\(place): $ref \(ref) not found") }
        return schema["type"]?.string == "object"
    }

    private func swiftLiteral(_ text: String) -> String {
        "\"" + text.map { $0 == "\\" || $0 == "\"" ? "\\\($0)" : String($0) }.joined() + "\""
    }

    /// Explicit Codable for messages with int64 members, which travel as strings (proto3 JSON).
    private func emitCoding(_ fields: [(name: String, type: SwiftType, optional: Bool)]) throws -> String {
        var out = "\n    enum CodingKeys: String, CodingKey {\n"
        out += "        case " + fields.map { identifier($0.name) }.joined(separator: ", ") + "\n    }\n"
        out += "\n    public init(from decoder: any Decoder) throws {\n"
        out += "        let container = try decoder.container(keyedBy: CodingKeys.self)\n"
        for field in fields {
            let key = identifier(field.name)
            let call: String
            if field.type.int64String {
                call = field.optional ? "decodeInt64StringIfPresent(forKey: .\(key))" : "decodeInt64String(forKey: .\(key))"
            } else if field.type.int64StringArray {
                call = field.optional ? "decodeInt64StringsIfPresent(forKey: .\(key))" : "decodeInt64Strings(forKey: .\(key))"
            } else {
                call = (field.optional ? "decodeIfPresent" : "decode") + "(\(field.type.name).self, forKey: .\(key))"
            }
            out += "        self.\(key) = try container.\(call)\n"
        }
        out += "    }\n\n    public func encode(to encoder: any Encoder) throws {\n"
        out += "        var container = encoder.container(keyedBy: CodingKeys.self)\n"
        for field in fields {
            let key = identifier(field.name)
            if field.type.int64String {
                out += "        try container.encodeInt64String\(field.optional ? "IfPresent" : "")(\(key), forKey: .\(key))\n"
            } else if field.type.int64StringArray {
                out += "        try container.encodeInt64Strings\(field.optional ? "IfPresent" : "")(\(key), forKey: .\(key))\n"
            } else {
                out += "        try container.encode\(field.optional ? "IfPresent" : "")(\(key), forKey: .\(key))\n"
            }
        }
        return out + "    }\n"
    }

    /// The direct JSON reader and writer of a struct (``JSONMessage``): every member read once,
    /// straight into its field; required members checked; unknown ones skipped; null is absent.
    private func emitJSON(_ name: String, _ fields: [(name: String, type: SwiftType, optional: Bool)]) -> String {
        var out = "\n    public init(json scanner: inout JSONScanner) throws {\n"
        for field in fields { out += "        var \(local(field.name)): \(field.type.name)? = nil\n" }
        // Members are told apart by `JSONKey.dispatchCode` first (integer compares), so a key is
        // compared byte for byte only with the name (rarely two) of its code.
        let body = fields.map { field in
            let code = JSONKey.dispatchCode(of: Array(field.name.utf8))
            return
                "            case \(code) where key == \"\(field.name)\": \(local(field.name)) = try scanner.member(\"\(field.name)\") { s0 in s0.null() ? nil : \(read(field.type, depth: 0)) }\n"
        }.joined()
        out += "        try scanner.fields { scanner, key in\n"
        out += "            switch key.dispatchCode {\n" + body
        out += "            default: try scanner.skipValue()\n            }\n        }\n"
        for field in fields where !field.optional {
            out +=
                "        guard let \(local(field.name)) else { throw scanner.failure(\"missing required field '\(field.name)'\", member: \"\(field.name)\") }\n"
        }
        let arguments = fields.map { "\($0.name): \(local($0.name))" }.joined(separator: ", ")
        out += "        self.init(\(arguments))\n    }\n"
        out += "\n    public func writeJSON(to writer: inout JSONWriter) {\n        writer.beginObject()\n"
        for field in fields {
            let value = identifier(field.name)
            if field.optional {
                out += "        if let \(value) { writer.key(\"\(field.name)\"); \(write(field.type, value, depth: 0)); writer.comma() }\n"
            } else {
                out += "        writer.key(\"\(field.name)\"); \(write(field.type, "self." + value, depth: 0)); writer.comma()\n"
            }
        }
        return out + "        writer.endObject()\n    }\n"
    }

    private func local(_ name: String) -> String { "_" + name }

    /// An expression reading `type` from the scanner named `s<depth>`.
    private func read(_ type: SwiftType, depth: Int) -> String {
        let s = "s\(depth)"
        if type.int64String { return "try \(s).int64String()" }
        if type.int64StringArray { return "try \(s).array { s\(depth + 1) in try s\(depth + 1).int64String() }" }
        switch type.name {
        case "String": return "try \(s).string()"
        case "Int": return "try \(s).int()"
        case "Int32": return "try \(s).int32()"
        case "Double": return "try \(s).double()"
        case "Bool": return "try \(s).bool()"
        case "JSONValue": return "try \(s).value()"
        default: break
        }
        if type.name.hasPrefix("[String: ") {
            let element = SwiftType(name: String(type.name.dropFirst(9).dropLast()))
            return "try \(s).map { s\(depth + 1) in \(read(element, depth: depth + 1)) }"
        }
        if type.name.hasPrefix("[") {
            let element = SwiftType(name: String(type.name.dropFirst().dropLast()))
            return "try \(s).array { s\(depth + 1) in \(read(element, depth: depth + 1)) }"
        }
        return "try \(type.name)(json: &\(s))"
    }

    /// A statement writing `value` of `type` to `writer` (inside closures, `w<depth>`).
    private func write(_ type: SwiftType, _ value: String, depth: Int) -> String {
        let w = depth == 0 ? "writer" : "w\(depth)"
        if type.int64String { return "\(w).int64String(\(value))" }
        if type.int64StringArray { return "\(w).array(\(value)) { w\(depth + 1), e\(depth + 1) in w\(depth + 1).int64String(e\(depth + 1)) }" }
        switch type.name {
        case "String": return "\(w).string(\(value))"
        case "Int": return "\(w).int(\(value))"
        case "Int32": return "\(w).int32(\(value))"
        case "Double": return "\(w).double(\(value))"
        case "Bool": return "\(w).bool(\(value))"
        case "JSONValue": return "\(w).value(\(value))"
        default: break
        }
        if type.name.hasPrefix("[String: ") {
            let element = SwiftType(name: String(type.name.dropFirst(9).dropLast()))
            return "\(w).map(\(value)) { w\(depth + 1), e\(depth + 1) in \(write(element, "e\(depth + 1)", depth: depth + 1)) }"
        }
        if type.name.hasPrefix("[") {
            let element = SwiftType(name: String(type.name.dropFirst().dropLast()))
            return "\(w).array(\(value)) { w\(depth + 1), e\(depth + 1) in \(write(element, "e\(depth + 1)", depth: depth + 1)) }"
        }
        return "\(value).writeJSON(to: &\(w))"
    }

    private func swiftType(_ schema: OrderedJSON, at place: String) throws -> SwiftType {
        if let ref = schema["$ref"]?.string { return SwiftType(name: try resolve(ref, at: place)) }
        for keyword in ["oneOf", "anyOf", "allOf", "not", "if", "const", "nullable", "prefixItems"] where schema[keyword] != nil {
            throw GeneratorError("\(place): \(keyword) is not supported")
        }
        if case .array? = schema["type"] { throw GeneratorError("\(place): a list of types is not supported") }
        if schema["enum"] != nil {
            throw GeneratorError("\(place): an inline enum is not supported; declare it as a message and $ref it")
        }
        switch schema["type"]?.string {
        case nil:
            return SwiftType(name: schema["x-jframe-raw"]?.bool == true ? "RawJSON" : "JSONValue")
        case "string":
            switch schema["format"]?.string {
            case "int64": return SwiftType(name: "Int64", int64String: true)
            case "uint64": throw GeneratorError("\(place): format uint64 is not supported; use int64")
            default: return SwiftType(name: "String")
            }
        case "integer":
            return SwiftType(name: schema["format"]?.string == "int32" ? "Int32" : "Int")
        case "number":
            return SwiftType(name: "Double")
        case "boolean":
            return SwiftType(name: "Bool")
        case "array":
            guard let items = schema["items"] else { throw GeneratorError("\(place): an array needs \"items\"") }
            let item = try swiftType(items, at: place + "[]")
            if item.int64StringArray { throw GeneratorError("\(place): arrays of arrays of int64 are not supported") }
            return SwiftType(name: "[\(item.name)]", int64StringArray: item.int64String)
        case "object":
            if schema["properties"] != nil {
                throw GeneratorError("\(place): an inline object is not supported; declare it as a message and $ref it")
            }
            if let values = schema["additionalProperties"], case .object = values {
                let value = try swiftType(values, at: place + "{}")
                if value.int64String || value.int64StringArray {
                    throw GeneratorError("\(place): maps of int64 are not supported")
                }
                return SwiftType(name: "[String: \(value.name)]")
            }
            return SwiftType(name: "JSONValue")
        case let other?:
            throw GeneratorError("\(place): type \(other) is not supported")
        }
    }

    private func resolve(_ ref: String, at place: String) throws -> String {
        let (file, name) = try refParts(ref, at: place)
        guard let target = all[file] else { throw GeneratorError("\(place): $ref \(ref) names a file that is not in Protocols/") }
        guard target.hasMessage(name) else { throw GeneratorError("\(place): $ref \(ref): \(file) has no message \(name)") }
        if ContractGenerator.wireLevelPackages.contains(target.name) {
            throw GeneratorError("\(place): $ref \(ref): messages of \(target.name) belong to the RPC core")
        }
        return target.name == package.name ? name : "\(target.namespace).\(name)"
    }

    /// The file and message name a `$ref` points at.
    private func refParts(_ ref: String, at place: String) throws -> (file: String, name: String) {
        let parts = ref.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].hasPrefix("/messages/") else {
            throw GeneratorError("\(place): $ref \(ref) must be #/messages/Name or file.json#/messages/Name")
        }
        let file = parts[0].isEmpty ? package.fileName : String(parts[0].hasPrefix("./") ? parts[0].dropFirst(2) : parts[0])
        return (file, String(parts[1].dropFirst("/messages/".count)))
    }

    private func rejectUnsupported(_ schema: OrderedJSON, at place: String, allowing: Set<String>) throws {
        for keyword in ["oneOf", "anyOf", "allOf", "patternProperties", "dependentSchemas", "unevaluatedProperties"]
        where schema[keyword] != nil {
            throw GeneratorError("\(place): \(keyword) is not supported")
        }
    }

    // MARK: Services

    private struct Method {
        let name: String
        let function: String
        let kind: String
        let access: String
        let request: String
        let response: String
        let description: String?
    }

    private func methods(of service: OrderedJSON, _ serviceName: String) throws -> [Method] {
        try (service["methods"]?.array ?? []).map { method in
            guard let name = method["name"]?.string, let kind = method["kind"]?.string,
                let request = method["request"]?.string, let response = method["response"]?.string
            else { throw GeneratorError("\(package.fileName) \(serviceName): a method needs name, kind, request, response") }
            guard ["unary", "server_streaming", "client_streaming", "bidi_streaming"].contains(kind) else {
                throw GeneratorError("\(package.fileName) \(serviceName)/\(name): unknown kind \(kind)")
            }
            guard let access = method["access"]?.string, ["public", "read", "write"].contains(access) else {
                throw GeneratorError("\(package.fileName) \(serviceName)/\(name): access must be public, read or write")
            }
            for message in [request, response] where !package.hasMessage(message) {
                throw GeneratorError("\(package.fileName) \(serviceName)/\(name): no message \(message) in this package")
            }
            return Method(
                name: name, function: identifier(lowerCamel(name)), kind: lowerCamel(kind), access: access, request: request,
                response: response, description: method["description"]?.string)
        }
    }

    private func emitService(_ service: OrderedJSON) throws -> String {
        guard let name = service["name"]?.string else { throw GeneratorError("\(package.fileName): a service needs a name") }
        let methods = try self.methods(of: service, name)
        let full = "\(package.name).\(name)"
        var out = docComment(service["description"]?.string)
        out += "public enum \(name) {\n"
        out += "    /// The fully qualified service name.\n"
        out += "    public static let name = \"\(full)\"\n\n"
        out += "    /// The method descriptors of \(full).\n"
        out += "    public enum Method {\n"
        for method in methods {
            out +=
                "        public static let \(method.function) = MethodDescriptor(service: \"\(full)\", method: \"\(method.name)\", kind: .\(method.kind), access: .\(method.access == "public" ? "`public`" : method.access))\n"
        }
        out += "        public static let all: [MethodDescriptor] = [" + methods.map(\.function).joined(separator: ", ") + "]\n"
        out += "    }\n\n"
        out += "    /// The server side of \(full): implement it and pass it to an RPCServer.\n"
        out += "    public protocol ServiceProtocol: RPCService {\n"
        for method in methods {
            out += docComment(method.description).indented(by: 8)
            out += "        func \(method.function)(\(serverParameters(method))) async throws\(serverResult(method))\n"
        }
        out += "    }\n\n"
        out += "    /// A typed client of \(full).\n"
        out += "    public struct Client: Sendable {\n"
        out += "        public let client: RPCClient\n\n"
        out += "        public init(_ client: RPCClient) { self.client = client }\n"
        for method in methods {
            out += "\n" + docComment(method.description).indented(by: 8)
            out += clientMethod(method)
        }
        out += "    }\n}\n"
        return out
    }

    private func serverParameters(_ method: Method) -> String {
        switch method.kind {
        case "unary": return "_ request: \(method.request), context: ServerContext"
        case "serverStreaming":
            return "_ request: \(method.request), responses: MessageWriter<\(method.response)>, context: ServerContext"
        case "clientStreaming": return "_ requests: MessageStream<\(method.request)>, context: ServerContext"
        default:
            return
                "_ requests: MessageStream<\(method.request)>, responses: MessageWriter<\(method.response)>, context: ServerContext"
        }
    }

    private func serverResult(_ method: Method) -> String {
        method.kind == "unary" || method.kind == "clientStreaming" ? " -> \(method.response)" : ""
    }

    private func clientMethod(_ method: Method) -> String {
        let descriptor = "Method.\(method.function)"
        switch method.kind {
        case "unary":
            return """
                        public func \(method.function)(_ request: \(method.request), options: CallOptions = .defaults) async throws -> \(method.response) {
                            try await client.unary(request, method: \(descriptor), responseType: \(method.response).self, options: options)
                        }

                """
        case "serverStreaming":
            return """
                        public func \(method.function)<Result: Sendable>(
                            _ request: \(method.request), options: CallOptions = .defaults,
                            _ handle: @escaping @Sendable (MessageStream<\(method.response)>) async throws -> Result
                        ) async throws -> Result {
                            try await client.serverStreaming(request, method: \(descriptor), options: options, handle)
                        }

                """
        case "clientStreaming":
            return """
                        public func \(method.function)(
                            options: CallOptions = .defaults,
                            _ requests: @escaping @Sendable (MessageWriter<\(method.request)>) async throws -> Void
                        ) async throws -> \(method.response) {
                            try await client.clientStreaming(method: \(descriptor), options: options, requests)
                        }

                """
        default:
            return """
                        public func \(method.function)<Result: Sendable>(
                            options: CallOptions = .defaults,
                            requests: @escaping @Sendable (MessageWriter<\(method.request)>) async throws -> Void,
                            responses: @escaping @Sendable (MessageStream<\(method.response)>) async throws -> Result
                        ) async throws -> Result {
                            try await client.bidiStreaming(method: \(descriptor), options: options, requests: requests, responses: responses)
                        }

                """
        }
    }

    private func emitRegistration(_ service: OrderedJSON) throws -> String {
        let name = service["name"]?.string ?? ""
        let type = "\(package.namespace).\(name)"
        var out = "\nextension \(type).ServiceProtocol {\n"
        out += "    public func register(with router: inout RPCRouter) {\n"
        for method in try methods(of: service, name) {
            let descriptor = "\(type).Method.\(method.function)"
            switch method.kind {
            case "unary":
                out += "        router.registerUnary(\(descriptor)) { (request: \(package.namespace).\(method.request), context) in\n"
                out += "            try await self.\(method.function)(request, context: context)\n        }\n"
            case "serverStreaming":
                out +=
                    "        router.registerServerStreaming(\(descriptor)) { (request: \(package.namespace).\(method.request), responses: MessageWriter<\(package.namespace).\(method.response)>, context) in\n"
                out += "            try await self.\(method.function)(request, responses: responses, context: context)\n        }\n"
            case "clientStreaming":
                out +=
                    "        router.registerClientStreaming(\(descriptor)) { (requests: MessageStream<\(package.namespace).\(method.request)>, context) -> \(package.namespace).\(method.response) in\n"
                out += "            try await self.\(method.function)(requests, context: context)\n        }\n"
            default:
                out +=
                    "        router.registerBidiStreaming(\(descriptor)) { (requests: MessageStream<\(package.namespace).\(method.request)>, responses: MessageWriter<\(package.namespace).\(method.response)>, context) in\n"
                out += "            try await self.\(method.function)(requests, responses: responses, context: context)\n        }\n"
            }
        }
        return out + "    }\n}\n"
    }

    // MARK: Spelling

    private func docComment(_ text: String?) -> String {
        guard let text, !text.isEmpty else { return "" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { "/// \($0)\n" }.joined()
    }
}

/// `server_streaming` -> `serverStreaming`, `NOT_SERVING` -> `notServing`, `ListServices` -> `listServices`.
func lowerCamel(_ text: String) -> String {
    if text.contains("_") || text == text.uppercased() {
        let words = text.lowercased().split(separator: "_")
        guard let first = words.first else { return text }
        return String(first) + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }
    return text.prefix(1).lowercased() + text.dropFirst()
}

private let swiftKeywords: Set<String> = [
    "associatedtype", "class", "deinit", "enum", "extension", "func", "import", "init", "inout", "internal", "let",
    "operator", "private", "protocol", "public", "static", "struct", "subscript", "typealias", "var", "break", "case",
    "continue", "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return",
    "switch", "where", "while", "as", "catch", "false", "is", "nil", "rethrows", "super", "self", "Self", "throw",
    "throws", "true", "try", "Type", "Protocol", "any", "some",
]

/// A Swift identifier for `name`, in backticks when it is a keyword.
func identifier(_ name: String) -> String { swiftKeywords.contains(name) ? "`\(name)`" : name }

extension String {
    func indented(by spaces: Int = 4) -> String {
        let pad = String(repeating: " ", count: spaces)
        return split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.isEmpty ? "" : pad + $0 }
            .joined(separator: "\n")
    }
}
