/// The bearer tokens a server accepts, each with its scope.
///
/// Written as lines `<scope> <token> [name]` (a file) or `<scope>:<token>[:name],…` (one
/// environment variable), where scope is `read`, `write` (includes read) or `publish` (includes
/// write, and may also write the topics a broker protects: its event topics, which only the
/// command side's relay should write) and the name, if given, is what logs say instead of the
/// token. `#` starts a comment line in a file.
public struct AccessTokens: Sendable {
    /// What a token allows.
    public enum Scope: String, Sendable, CaseIterable {
        case read
        case write
        /// Write, plus the topics a broker protects (`broker --protected-topics`).
        case publish

        /// Whether a token with this scope may call a method with `access`.
        public func allows(_ access: MethodAccess) -> Bool {
            switch access {
            case .public, .read: return true
            case .write: return self != .read
            }
        }
    }

    public struct Grant: Sendable {
        public var scope: Scope
        /// The token's name for logs; never the token itself.
        public var name: String
    }

    /// Tokens shorter than this are refused when loaded: a bearer token is a secret, and a short
    /// one can be guessed.
    public static let minimumLength = 16

    private var entries: [(token: [UInt8], grant: Grant)] = []

    public var count: Int { entries.count }

    public init() {}

    /// Parses a token file's text; `source` names it in errors.
    public init(fileText text: String, source: String) throws {
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count == 2 || fields.count == 3 else {
                throw RPCError(
                    code: .invalidArgument,
                    message: "\(source) line \(number + 1): expected '<read|write|publish> <token> [name]'")
            }
            try add(
                scope: fields[0], token: fields[1], name: fields.count == 3 ? fields[2] : "\(source):\(number + 1)",
                at: "\(source) line \(number + 1)")
        }
    }

    /// Parses `<scope>:<token>[:name],…`, as an environment variable carries tokens.
    public init(list: String, source: String) throws {
        for (index, item) in list.split(separator: ",").enumerated() {
            let fields = item.trimmingWhitespace().split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 2 || fields.count == 3 else {
                throw RPCError(code: .invalidArgument, message: "\(source) item \(index + 1): expected '<read|write|publish>:<token>[:name]'")
            }
            try add(
                scope: fields[0], token: fields[1], name: fields.count == 3 ? fields[2] : "\(source)#\(index + 1)", at: "\(source) item \(index + 1)")
        }
    }

    private mutating func add(scope text: String, token: String, name: String, at place: String) throws {
        guard let scope = Scope(rawValue: text) else {
            throw RPCError(code: .invalidArgument, message: "\(place): scope must be read, write or publish, not '\(text)'")
        }
        guard token.utf8.count >= Self.minimumLength else {
            throw RPCError(code: .invalidArgument, message: "\(place): a token needs at least \(Self.minimumLength) characters")
        }
        entries.append((Array(token.utf8), Grant(scope: scope, name: name)))
    }

    /// Adds every token of `other`.
    public mutating func merge(_ other: AccessTokens) { entries += other.entries }

    /// The grant for a presented token, or nil. Compares against every token in full whatever
    /// matches, so the time taken does not tell an attacker how much of a guess was right.
    public func grant(for presented: some StringProtocol) -> Grant? {
        let bytes = Array(presented.utf8)
        var found: Grant?
        for entry in entries where constantTimeEqual(entry.token, bytes) && found == nil {
            found = entry.grant
        }
        return found
    }
}

private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
    for i in 0..<max(a.count, b.count) {
        difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return difference == 0
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
