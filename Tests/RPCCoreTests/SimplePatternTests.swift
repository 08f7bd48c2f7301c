import Foundation
import Testing

@testable import RPCCore

/// Schema patterns of character classes and quantifiers, matched without `Regex`: they must
/// agree with `Regex` on every pattern in `Protocols/` they read.
@Suite struct SimplePatternTests {
    /// Every `pattern` in the protocol files.
    static let protocolPatterns: [String] = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Protocols")
        var found = Set<String>()
        func collect(_ value: Any) {
            if let object = value as? [String: Any] {
                if let pattern = object["pattern"] as? String { found.insert(pattern) }
                object.values.forEach(collect)
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        for case let url as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
        where url.pathExtension == "json" {
            if let data = try? Data(contentsOf: url), let json = try? JSONSerialization.jsonObject(with: data) { collect(json) }
        }
        return found.sorted()
    }()

    static let samples: [String] = [
        "", "0", "-0", "-", "--1", "12345678901234567890", "1.5", " 1", "+1", "a", "A", "Z9", "ab_c-d.e", "acct-1", "x:y", ":x",
        "-abc", ".abc", "EUR", "EU", "EURO", "eur", "Order", "BankAccount", "cqrs.commands.v1", "cqrs.commands.v1.BankAccounts/Deposit",
        "ünï", "a\u{301}", "a b", "a\tb", String(repeating: "a", count: 128), String(repeating: "a", count: 129),
        String(repeating: "b", count: 249), String(repeating: "b", count: 250), "a" + String(repeating: ".", count: 127), "é1",
    ]

    @Test func nearlyEveryProtocolPatternIsReadWithoutRegex() {
        let read = Self.protocolPatterns.filter { SimplePattern($0) != nil }
        #expect(Self.protocolPatterns.count >= 5)
        #expect(read.count >= Self.protocolPatterns.count - 2, "not read: \(Self.protocolPatterns.filter { SimplePattern($0) == nil })")
        #expect(SimplePattern("^-?[0-9]+$") != nil && SimplePattern("^[A-Za-z0-9][A-Za-z0-9._-]{0,248}$") != nil)
    }

    @Test(arguments: protocolPatterns + ["^[A-Z]{3}$", "^a*ab$", "^[a-c]{2,}x?\\.[0-9]{1,3}$", "^x-y$"])
    func agreesWithRegex(_ pattern: String) throws {
        guard let simple = SimplePattern(pattern) else { return }
        let regex = try Regex(pattern)
        for sample in Self.samples + ["aab", "ab", "b", "cc.1", "abcx.123", "ac.1234", "x-y", "xy"] {
            #expect(simple.matches(sample) == ((try? regex.firstMatch(in: sample)) != nil), "\(pattern) on \(sample.debugDescription)")
        }
    }

    @Test func dollarIsTheEndOfTheTextAsInECMA262() {
        #expect(SimplePattern("^[0-9]+$")?.matches("12\n") == false)
        #expect(SimplePattern("^[0-9]+$")?.matches("12") == true)
    }

    @Test(arguments: ["[0-9]+$", "^[0-9]+", "^(ab)+$", "^a|b$", "^.+$", "^\\d+$", "^[^a]$", "^a+?$", "^a{2,1}$", "^a\\$", "^ü$", "^[a-$"])
    func otherShapesAreLeftToRegex(_ pattern: String) {
        #expect(SimplePattern(pattern) == nil)
    }
}
