/// What a command expects of its aggregate's stream before it runs.
public enum StreamExpectation: Sendable {
    /// The aggregate must not exist yet (open an account, place an order).
    case new
    /// The aggregate must exist (deposit, withdraw, close).
    case existing
    /// Either.
    case any
}

/// What a decision may know besides the state: the time, injected so decisions stay pure.
public struct DecisionContext: Sendable {
    /// Milliseconds since the Unix epoch, UTC.
    public var nowMs: Int64

    public init(nowMs: Int64) { self.nowMs = nowMs }
}

/// A request to change one aggregate, decided against its current state into new events.
///
/// A command has two kinds of rules: `validate()` checks the command alone (an amount above
/// zero, a well-formed email) and reports every broken field at once; `decide` checks it against
/// the state (enough funds, not closed) and either throws a `DomainError` or returns the events.
public protocol AggregateCommand: Sendable {
    associatedtype Target: Aggregate
    /// The aggregate this command is for.
    var aggregateId: String { get }
    static var expectation: StreamExpectation { get }
    /// Every field that breaks a rule on its own; empty when the command is well-formed.
    func validate() -> [Violation]
    /// The events that record the command's effect on `state`; none when it changes nothing.
    func decide(_ state: Target, context: DecisionContext) throws(DomainError) -> [any DomainEvent]
}

extension AggregateCommand {
    public var streamId: String { Target.streamId(aggregateId) }
}

/// A field of a command that breaks a rule: its path (`amount.currency`) and why.
public struct Violation: Hashable, Sendable, CustomStringConvertible {
    public var field: String
    public var description: String

    public init(_ field: String, _ description: String) {
        self.field = field
        self.description = description
    }
}

/// A command refused by the domain.
public enum DomainError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The command is malformed; every broken field is listed.
    case invalid([Violation])
    /// A business rule forbids it in the aggregate's current state (insufficient funds, closed).
    case ruleBroken(String)

    public var description: String {
        switch self {
        case .invalid(let violations): return violations.map { "\($0.field): \($0.description)" }.joined(separator: "; ")
        case .ruleBroken(let reason): return reason
        }
    }
}

/// Rules shared by the domains' validations.
public enum Rules {
    /// Aggregate ids: 1 to 128 of letters, digits, `.`, `_`, `:` and `-`, starting with a letter or digit.
    public static func checkId(_ id: String, field: String, into violations: inout [Violation]) {
        let bytes = Array(id.utf8)
        let allowed = bytes.allSatisfy {
            isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-")
        }
        if bytes.isEmpty || bytes.count > 128 || !allowed || !isAlphanumeric(bytes[0]) {
            violations.append(Violation(field, "must be 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"))
        }
    }

    /// Free text: not blank, at most `maxLength` characters.
    public static func checkText(_ text: String, field: String, maxLength: Int, into violations: inout [Violation]) {
        if text.allSatisfy(\.isWhitespace) {
            violations.append(Violation(field, "must not be empty"))
        } else if text.count > maxLength {
            violations.append(Violation(field, "must be at most \(maxLength) characters"))
        }
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
