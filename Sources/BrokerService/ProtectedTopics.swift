import RPCCore

/// The topics only `publish` tokens may write (Produce, CreateTopic, DeleteTopic): the event
/// topics, which only the command side's relay should write, so that no other holder of a write
/// token can produce a record claiming an event's identity. Kafka grants the same with a Write
/// ACL on a literal or prefixed topic name.
///
/// Enforced only when the server checks tokens: without tokens every caller is trusted alike
/// (WIRE.md §14).
public struct ProtectedTopics: Sendable, Equatable {
    /// Exact names, and prefixes (given with a trailing `*`).
    public private(set) var names: Set<String> = []
    public private(set) var prefixes: [String] = []

    public init() {}

    /// Parses `name,prefix*,…`; blanks around items are ignored.
    public init(list: String) {
        for item in list.split(separator: ",") {
            let pattern = item.trimmingCharacters(in: " \t")
            if pattern.isEmpty { continue }
            if pattern.hasSuffix("*") { prefixes.append(String(pattern.dropLast())) } else { names.insert(pattern) }
        }
    }

    public var isEmpty: Bool { names.isEmpty && prefixes.isEmpty }

    public func covers(_ topic: String) -> Bool {
        names.contains(topic) || prefixes.contains { topic.hasPrefix($0) }
    }

    /// Throws PERMISSION_DENIED when `context`'s caller may not write `topic`.
    func checkWrite(_ topic: String, _ context: ServerContext) throws {
        guard let scope = context.scope, scope != .publish, covers(topic) else { return }
        throw RPCError(
            code: .permissionDenied,
            message:
                "topic '\(topic)' is protected: writing it needs a publish token ('\(context.principal ?? "this token")' is \(scope.rawValue)); only the command side writes event topics"
        )
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in blanks: String) -> String {
        let isBlank: (Character) -> Bool = { blanks.contains($0) }
        return String(drop(while: isBlank).reversed().drop(while: isBlank).reversed())
    }
}
