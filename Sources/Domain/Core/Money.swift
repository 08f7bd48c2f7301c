/// An amount of money in integer minor units (cents for EUR) with its ISO 4217 currency code.
///
/// Never floating point: 0.1 + 0.2 is not 0.3 in binary, and balances must add up exactly.
public struct Money: Codable, Hashable, Sendable, CustomStringConvertible {
    public var amountMinor: Int64
    public var currency: String

    public init(amountMinor: Int64, currency: String) {
        self.amountMinor = amountMinor
        self.currency = currency
    }

    public static func zero(_ currency: String) -> Money { Money(amountMinor: 0, currency: currency) }

    public var description: String { "\(amountMinor) \(currency) (minor units)" }

    /// Three upper-case letters, as ISO 4217 codes are.
    public static func isCurrencyCode(_ code: String) -> Bool {
        code.utf8.count == 3 && code.utf8.allSatisfy { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
    }

    /// Checks the currency code and that the amount is above zero (`positive`) or not below it.
    public func check(field: String, positive: Bool, into violations: inout [Violation]) {
        if !Money.isCurrencyCode(currency) {
            violations.append(Violation("\(field).currency", "must be a three-letter ISO 4217 code such as EUR"))
        }
        if positive && amountMinor <= 0 {
            violations.append(Violation("\(field).amountMinor", "must be greater than 0"))
        } else if !positive && amountMinor < 0 {
            violations.append(Violation("\(field).amountMinor", "must not be negative"))
        }
    }
}
