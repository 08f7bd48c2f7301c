import NIOCore
import SQLite

/// Held inserts of many rows sent as `COPY … FROM STDIN` instead of one multi-row `INSERT`.
///
/// Why: a rebuild sends its transaction rows a few thousand at a time. As an `INSERT` each row's
/// values are parameters (bound, encoded, then parsed and planned by the server with thousands of
/// others); as `COPY` they are lines of text the server reads straight into the table, which
/// costs both sides about half as much. `COPY` takes two round trips to an `INSERT`'s one, so
/// only batches of `minimumRows` or more go this way.
struct PostgresCopy: Equatable {
    /// The table, unqualified (found through `search_path`, as the `INSERT` found it).
    var table: String
    var columns: [String]

    /// Fewer rows than this go as one multi-row `INSERT`.
    static let minimumRows = 64

    /// The copy that does what `sql` does for each row, or nil when it cannot: only a plain
    /// `INSERT INTO table(columns) VALUES(?, …)` with a parameter per column and nothing after
    /// (an `ON CONFLICT` clause has no `COPY` equivalent).
    init?(insert sql: String) {
        var text = Substring(sql)
        func skipSpace() { text = text.drop(while: \.isWhitespace) }
        func take(_ word: String) -> Bool {
            skipSpace()
            guard text.uppercased().hasPrefix(word) else { return false }
            text = text.dropFirst(word.count)
            return true
        }
        func identifier() -> String? {
            skipSpace()
            if text.first == "\"" {
                let name = text.dropFirst().prefix(while: { $0 != "\"" })
                guard !name.isEmpty, text.dropFirst(name.count + 1).first == "\"" else { return nil }
                text = text.dropFirst(name.count + 2)
                return String(name)
            }
            let name = text.prefix(while: { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
            guard let first = name.first, first.isLetter || first == "_" else { return nil }
            text = text.dropFirst(name.count)
            return name.lowercased()
        }
        func list<T>(_ item: () -> T?) -> [T]? {
            guard take("(") else { return nil }
            var items: [T] = []
            repeat {
                guard let next = item() else { return nil }
                items.append(next)
            } while take(",")
            return take(")") ? items : nil
        }
        guard take("INSERT"), take("INTO"), let table = identifier(), let columns = list(identifier), take("VALUES"),
            let parameters = list({ take("?") ? true : nil }), parameters.count == columns.count
        else { return nil }
        skipSpace()
        guard text.isEmpty else { return nil }
        self.table = table
        self.columns = columns
    }

    /// The rows in `COPY`'s text format: values separated by tabs, a line per row, `\N` for NULL,
    /// backslash escapes for the characters the format gives meaning to, `bytea` as `\x` hex.
    static func encode(_ rows: [[SQLiteValue]], into buffer: inout ByteBuffer) {
        for row in rows {
            for (index, value) in row.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
                switch value {
                case .null: buffer.writeStaticString("\\N")
                case .integer(let number): buffer.writeString(String(number))
                case .text(let text): writeEscaped(text, into: &buffer)
                case .blob(let bytes):
                    buffer.writeStaticString("\\\\x")
                    for byte in bytes {
                        buffer.writeInteger(hexDigits[Int(byte >> 4)])
                        buffer.writeInteger(hexDigits[Int(byte & 0x0f)])
                    }
                }
            }
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func writeEscaped(_ text: String, into buffer: inout ByteBuffer) {
        var text = text
        text.withUTF8 { bytes in
            // Most values need no escape: one copy.
            guard bytes.contains(where: { $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else {
                buffer.writeBytes(bytes)
                return
            }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                case 0x08: buffer.writeStaticString("\\b")
                case 0x0c: buffer.writeStaticString("\\f")
                case 0x0b: buffer.writeStaticString("\\v")
                default: buffer.writeInteger(byte)
                }
            }
        }
    }
}
