/// An anchored pattern made only of ASCII character classes and literals, each with a
/// quantifier (`^[A-Za-z0-9][A-Za-z0-9._-]{0,248}$`, `^-?[0-9]+$`), matched over the text's UTF-8
/// bytes without `Regex`.
///
/// Why: every request's ids and decimal numbers are checked against such patterns before the
/// handler runs, and `Regex.firstMatch` (with the lock a shared `Regex` needs) cost a deposit
/// about 12,000 of its 342,000 instructions in the command-service. Nearly every pattern in `Protocols/` has this shape; the
/// others (groups, alternation, `.`, escapes such as `\d`) are not read here and stay with
/// `Regex` (`SchemaPattern`).
///
/// Semantics are ECMA-262's, as JSON Schema's: `$` is the end of the text (a trailing newline
/// does not match it), and a class of ASCII characters never matches anything else.
struct SimplePattern: Sendable, Equatable {
    struct Atom: Sendable, Equatable {
        /// Bit c of the 128 set when ASCII character c is allowed.
        var low: UInt64 = 0
        var high: UInt64 = 0
        var min: Int
        var max: Int

        func allows(_ byte: UInt8) -> Bool {
            byte < 64 ? low & (1 << UInt64(byte)) != 0 : byte < 128 ? high & (1 << UInt64(byte - 64)) != 0 : false
        }

        mutating func allow(_ byte: UInt8) {
            if byte < 64 { low |= 1 << UInt64(byte) } else { high |= 1 << UInt64(byte - 64) }
        }
    }

    let atoms: [Atom]

    /// Nil when `source` is not of this shape.
    init?(_ source: String) {
        var scalars = Array(source.unicodeScalars)
        guard scalars.allSatisfy(\.isASCII), scalars.first == "^", scalars.last == "$", scalars.count >= 2 else { return nil }
        scalars = Array(scalars.dropFirst().dropLast())
        // A final `\$` was an escaped dollar, not the anchor.
        if scalars.last == "\\" { return nil }
        var atoms: [Atom] = []
        var index = 0
        func byte(_ scalar: Unicode.Scalar) -> UInt8 { UInt8(scalar.value) }
        /// A character escaped with `\`: only punctuation stands for itself.
        func escaped(_ scalar: Unicode.Scalar) -> UInt8? {
            let value = byte(scalar)
            return (0x21...0x7e).contains(value) && !(scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)) ? value : nil
        }
        while index < scalars.count {
            var atom = Atom(min: 1, max: 1)
            switch scalars[index] {
            case "[":
                index += 1
                guard index < scalars.count, scalars[index] != "^" else { return nil }
                var members: [UInt8] = []
                while index < scalars.count, scalars[index] != "]" {
                    var member: UInt8
                    if scalars[index] == "\\" {
                        guard index + 1 < scalars.count, let literal = escaped(scalars[index + 1]) else { return nil }
                        member = literal
                        index += 2
                    } else {
                        member = byte(scalars[index])
                        index += 1
                    }
                    // A range, unless the `-` is the class's last character.
                    if index + 1 < scalars.count, scalars[index] == "-", scalars[index + 1] != "]" {
                        let end = scalars[index + 1]
                        guard end != "\\", byte(end) >= member else { return nil }
                        members += Array(member...byte(end))
                        index += 2
                        continue
                    }
                    members.append(member)
                }
                guard index < scalars.count, !members.isEmpty else { return nil }
                index += 1
                for member in members { atom.allow(member) }
            case "\\":
                guard index + 1 < scalars.count, let literal = escaped(scalars[index + 1]) else { return nil }
                atom.allow(literal)
                index += 2
            case ".", "(", ")", "|", "?", "*", "+", "{", "}", "^", "$", "]":
                return nil
            default:
                atom.allow(byte(scalars[index]))
                index += 1
            }
            if index < scalars.count {
                switch scalars[index] {
                case "?": (atom.min, atom.max, index) = (0, 1, index + 1)
                case "*": (atom.min, atom.max, index) = (0, Int.max, index + 1)
                case "+": (atom.min, atom.max, index) = (1, Int.max, index + 1)
                case "{":
                    guard let close = scalars[index...].firstIndex(of: "}") else { return nil }
                    let bounds = String(String.UnicodeScalarView(scalars[(index + 1)..<close])).split(
                        separator: ",", omittingEmptySubsequences: false)
                    guard (1...2).contains(bounds.count), let low = Int(bounds[0]) else { return nil }
                    let high = bounds.count == 1 ? low : bounds[1].isEmpty ? Int.max : Int(bounds[1])
                    guard let high, low <= high else { return nil }
                    (atom.min, atom.max, index) = (low, high, close + 1)
                default: break
                }
                // A lazy or possessive quantifier, or a quantifier on a quantifier.
                if index < scalars.count, ["?", "*", "+", "{"].contains(scalars[index]) { return nil }
            }
            atoms.append(atom)
        }
        self.atoms = atoms
    }

    func matches(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { match(0, 0, $0) }
    }

    /// Greedy, giving back one character at a time when what follows fails.
    private func match(_ atomIndex: Int, _ position: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard atomIndex < atoms.count else { return position == bytes.count }
        let atom = atoms[atomIndex]
        var count = 0
        while count < atom.max, position + count < bytes.count, atom.allows(bytes[position + count]) { count += 1 }
        guard count >= atom.min else { return false }
        while true {
            if match(atomIndex + 1, position + count, bytes) { return true }
            if count == atom.min { return false }
            count -= 1
        }
    }
}
