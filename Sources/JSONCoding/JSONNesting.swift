import Synchronization

/// The process's bound on JSON nesting: how many objects and arrays may be open inside one
/// another in any document a `JSONScanner` reads (messages, envelopes, record values).
///
/// One setting for the whole process, not one per call site: every reader of peer bytes shares
/// the same danger (a stack overflow) and the same answer, and servers set it once at start from
/// `--max-json-depth`. 128 is serde_json's recursion limit; every message of our protocols nests
/// fewer than ten levels, which leaves record values and event payloads more than a hundred.
public enum JSONNesting {
    public static let defaultMaximumDepth = 128
    /// What a server accepts as `--max-json-depth`. A debug build reads the default within 512 KiB
    /// of stack and the top within 4 MiB (JSONNestingTests); an event loop thread has 8 MiB.
    public static let allowedMaximumDepths = 16...1024

    private static let current = Atomic<Int>(defaultMaximumDepth)

    /// The bound new scanners take.
    public static var maximumDepth: Int {
        get { current.load(ordering: .relaxed) }
        set {
            precondition(allowedMaximumDepths.contains(newValue), "JSON nesting bound \(newValue) is outside \(allowedMaximumDepths)")
            current.store(newValue, ordering: .relaxed)
        }
    }
}
