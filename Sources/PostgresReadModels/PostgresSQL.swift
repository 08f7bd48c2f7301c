import Foundation

/// The read models' SQL, written once with SQLite's `?` parameters, as PostgreSQL takes it.
enum PostgresSQL {
    /// `?` becomes `$1`, `$2`, … in order, and `?N` becomes `$N` (SQLite's rule: a bare `?`
    /// takes the number after the largest used so far). Quoted text and identifiers are copied
    /// as they are.
    static func numbered(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var largest = 0
        var quote: Character?
        var characters = sql.makeIterator()
        var pending = characters.next()
        while let character = pending {
            pending = characters.next()
            if let open = quote {
                out.append(character)
                if character == open { quote = nil }
                continue
            }
            switch character {
            case "'", "\"":
                quote = character
                out.append(character)
            case "?":
                var digits = ""
                while let next = pending, next.isASCII, next.isNumber {
                    digits.append(next)
                    pending = characters.next()
                }
                let number = Int(digits) ?? (largest + 1)
                largest = max(largest, number)
                out += "$\(number)"
            default:
                out.append(character)
            }
        }
        return out
    }

    /// `INSERT … VALUES(?, …, ?) [ON CONFLICT …]` as one statement inserting `rows` rows,
    /// parameters numbered row after row; nil when the text is not a single-row VALUES insert of
    /// plain `?`s (with nothing after them but an `ON CONFLICT` clause without parameters).
    static func multiRowInsert(_ sql: String, rows: Int) -> String? {
        guard let values = sql.range(of: "VALUES(", options: .backwards) ?? sql.range(of: "VALUES (", options: .backwards),
            let close = sql[values.upperBound...].firstIndex(of: ")")
        else { return nil }
        let tuple = sql[values.upperBound..<close]
        let parameters = tuple.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parameters.isEmpty, parameters.allSatisfy({ $0 == "?" }) else { return nil }
        let tail = sql[sql.index(after: close)...].trimmingCharacters(in: .whitespacesAndNewlines)
        guard tail.isEmpty || (tail.hasPrefix("ON CONFLICT") && !tail.contains("?")) else { return nil }
        var text = sql[..<values.lowerBound] + "VALUES "
        var number = 0
        for row in 0..<rows {
            if row > 0 { text += ", " }
            text +=
                "("
                + parameters.indices.map { _ in
                    number += 1
                    return "$\(number)"
                }.joined(separator: ", ") + ")"
        }
        return tail.isEmpty ? String(text) : text + " " + tail
    }

    /// Splits a script into its statements at semicolons outside quotes (PostgreSQL's extended
    /// protocol takes one statement at a time). Empty statements are dropped.
    static func statements(_ script: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var quote: Character?
        for character in script {
            if let open = quote {
                current.append(character)
                if character == open { quote = nil }
                continue
            }
            switch character {
            case "'", "\"":
                quote = character
                current.append(character)
            case ";":
                statements.append(current)
                current = ""
            default:
                current.append(character)
            }
        }
        statements.append(current)
        return statements.map { $0.trimmingWhitespace }.filter { !$0.isEmpty }
    }

    /// A schema name safe to put in SQL unquoted-looking and quoted: lower-case letters, digits
    /// and underscores, starting with a letter, at most 40 characters (room for `_rebuild`).
    static func isValidSchema(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.unicodeScalars.count <= 40 else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
