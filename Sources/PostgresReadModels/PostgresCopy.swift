import JSONCoding
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
    ///
    /// Each line is made in a reused byte array and written to the buffer once, numbers written
    /// digit by digit: a value at a time through `ByteBuffer`, with each number made a String
    /// first, this was a tenth of a rebuild's work in the query-service.
    static func encode(_ rows: [[SQLiteValue]], into buffer: inout ByteBuffer) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        for row in rows {
            line.removeAll(keepingCapacity: true)
            for (index, value) in row.enumerated() {
                if index > 0 { line.append(UInt8(ascii: "\t")) }
                switch value {
                case .null: appendBackslash(then: UInt8(ascii: "N"), to: &line)
                case .integer(let number): ASCIIDecimal.append(number, to: &line)
                case .text(let text): appendEscaped(text, to: &line)
                case .blob(let bytes):
                    appendBackslash(then: UInt8(ascii: "\\"), to: &line)
                    line.append(UInt8(ascii: "x"))
                    for byte in bytes {
                        line.append(hexDigits[Int(byte >> 4)])
                        line.append(hexDigits[Int(byte & 0x0f)])
                    }
                }
            }
            line.append(UInt8(ascii: "\n"))
            buffer.writeBytes(line)
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A backslash, then `byte`.
    @inline(__always)
    private static func appendBackslash(then byte: UInt8, to line: inout [UInt8]) {
        line.append(UInt8(ascii: "\\"))
        line.append(byte)
    }

    private static func appendEscaped(_ text: String, to line: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            // Most values need no escape: one copy.
            guard bytes.contains(where: { $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else {
                line.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\\"): appendBackslash(then: UInt8(ascii: "\\"), to: &line)
                case UInt8(ascii: "\t"): appendBackslash(then: UInt8(ascii: "t"), to: &line)
                case UInt8(ascii: "\n"): appendBackslash(then: UInt8(ascii: "n"), to: &line)
                case UInt8(ascii: "\r"): appendBackslash(then: UInt8(ascii: "r"), to: &line)
                case 0x08: appendBackslash(then: UInt8(ascii: "b"), to: &line)
                case 0x0c: appendBackslash(then: UInt8(ascii: "f"), to: &line)
                case 0x0b: appendBackslash(then: UInt8(ascii: "v"), to: &line)
                default: line.append(byte)
                }
            }
        }
    }
}
