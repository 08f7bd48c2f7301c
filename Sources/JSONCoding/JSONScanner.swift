/// A strict, allocation-light JSON reader: the runtime of the JSON code jframe-gen writes for
/// every message, and of the hand-written envelopes.
///
/// Why not Foundation's JSONDecoder: it builds a tree, then walks it through Codable's
/// existential containers; for a 200-byte message that is ~10x the cost of reading the bytes
/// once, straight into the fields. Strictness matches RFC 8259: malformed JSON, a value of the
/// wrong type, or trailing data is an error that says where; unknown members are skipped.
///
/// Nesting is bounded (`maximumDepth`): objects and arrays are read by recursion, so without a
/// bound a peer chooses how deep the stack goes, and ~45k nested `[` (90 KB) overflow it. Every
/// path that descends (decoding, skipping unknown members, checking raw values) passes through
/// `object` or `array`, which count the depth.
public struct JSONScanner {
    /// What went wrong, with the path of the member (`message.amount`) and the byte offset.
    public struct Failure: Error, CustomStringConvertible {
        public var path: [String]
        public var reason: String
        public var offset: Int

        public var description: String {
            (path.isEmpty ? "" : "field '\(path.joined(separator: "."))': ") + "\(reason) at byte \(offset)"
        }
    }

    // Internal to the module but visible to its inlinable code: the generic readers below are
    // `@inlinable` so that each message type's decoder gets them specialized to its fields'
    // types (unspecialized, an array's append alone cost about 900 instructions per element).
    @usableFromInline let bytes: [UInt8]
    @usableFromInline var index = 0
    /// Objects and arrays open around the current position.
    @usableFromInline var depth = 0
    /// The deepest nesting read; one more is a failure. RFC 8259 section 9 lets a parser set it.
    public let maximumDepth: Int

    /// A scanner of `bytes` that accepts nesting up to `maximumDepth` (the process's
    /// `JSONNesting.maximumDepth` unless given).
    public init(_ bytes: [UInt8], maximumDepth: Int = JSONNesting.maximumDepth) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    public func failure(_ reason: String) -> Failure { Failure(path: [], reason: reason, offset: index) }

    /// A failure about one member of the object being read (a required member that is missing).
    public func failure(_ reason: String, member: String) -> Failure { Failure(path: [member], reason: reason, offset: index) }

    @usableFromInline mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    @usableFromInline mutating func expect(_ byte: UInt8, _ what: String) throws {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { throw failure("expected \(what)") }
        index += 1
    }

    @usableFromInline mutating func peek() -> UInt8? {
        skipSpace()
        return index < bytes.count ? bytes[index] : nil
    }

    // MARK: Structure

    /// Counts one more level open around `body`; past `maximumDepth` it fails before descending.
    @inlinable mutating func nested<T>(_ body: (inout JSONScanner) throws -> T) throws -> T {
        guard depth < maximumDepth else {
            throw failure("JSON nested deeper than \(maximumDepth) levels (objects and arrays)")
        }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    /// Calls `member` with each member name; it must consume the value.
    public mutating func object(_ member: (inout JSONScanner, String) throws -> Void) throws {
        try fields { scanner, key in try member(&scanner, key.string) }
    }

    /// Calls `member` with each member's name as a `JSONKey`, which a `switch` matches against
    /// string literals without making a String; it must consume the value. What decoders of
    /// known members use (a map's keys, which are data, go through `object` or `map`).
    public mutating func fields(_ member: (inout JSONScanner, JSONKey) throws -> Void) throws {
        try expect(UInt8(ascii: "{"), "an object")
        try nested { try $0.members(member) }
    }

    private mutating func members(_ member: (inout JSONScanner, JSONKey) throws -> Void) throws {
        if peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw failure("expected a member name") }
            let name: JSONKey
            if let plain = printableASCIIName() {
                name = JSONKey(utf8: plain)
            } else {
                switch try stringContent() {
                case .plain(let utf8): name = JSONKey(utf8: utf8)
                case .unescaped(let text): name = JSONKey(utf8: ArraySlice(text.utf8))
                }
            }
            try expect(UInt8(ascii: ":"), "':'")
            try member(&self, name)
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return
            default: throw failure("expected ',' or '}'")
            }
        }
    }

    /// A member name of printable ASCII with no escape, read with a byte loop from the opening
    /// quote it is at; nil, with nothing consumed, for any other name (`stringContent` reads
    /// those, with every check). Names are short, and most are such: `stringContent`'s general
    /// path (its own `expect`, the sixteen-byte scan set up for long values, the UTF-8 check)
    /// cost about 210 instructions a name, a fifth of reading a consumed record.
    private mutating func printableASCIIName() -> ArraySlice<UInt8>? {
        let start = index + 1
        let end: Int? = bytes.withUnsafeBufferPointer { buffer in
            var i = start
            while i < buffer.count {
                let byte = buffer[i]
                if byte == UInt8(ascii: "\"") { return i }
                guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
                i += 1
            }
            return nil
        }
        guard let end else { return nil }
        index = end + 1
        return bytes[start..<end]
    }

    /// Reads the value of member `name` with `read`, adding the name to the path of any failure.
    @inlinable public mutating func member<T>(_ name: String, _ read: (inout JSONScanner) throws -> T) throws -> T {
        try member(named: name, read)
    }

    /// `member(_:_:)` for a member read with `fields`: the name becomes a String only for a failure.
    @inlinable public mutating func member<T>(_ name: JSONKey, _ read: (inout JSONScanner) throws -> T) throws -> T {
        try member(named: name.string, read)
    }

    @inlinable mutating func member<T>(named name: @autoclosure () -> String, _ read: (inout JSONScanner) throws -> T) throws -> T {
        do {
            return try read(&self)
        } catch var failure as Failure {
            failure.path.insert(name(), at: 0)
            throw failure
        }
    }

    /// An array, each element read by `element`.
    @inlinable public mutating func array<T>(_ element: (inout JSONScanner) throws -> T) throws -> [T] {
        try expect(UInt8(ascii: "["), "an array")
        return try nested { try $0.elements(element) }
    }

    @inlinable mutating func elements<T>(_ element: (inout JSONScanner) throws -> T) throws -> [T] {
        var items: [T] = []
        if peek() == UInt8(ascii: "]") {
            index += 1
            return items
        }
        while true {
            let position = items.count
            do {
                items.append(try element(&self))
            } catch var failure as Failure {
                failure.path.insert("[\(position)]", at: 0)
                throw failure
            }
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return items
            default: throw failure("expected ',' or ']'")
            }
        }
    }

    /// An object used as a map from string keys to values read by `value`.
    @inlinable public mutating func map<T>(_ value: (inout JSONScanner) throws -> T) throws -> [String: T] {
        var result: [String: T] = [:]
        try object { scanner, key in result[key] = try scanner.member(key, value) }
        return result
    }

    /// Consumes `null` if it is next: an optional member that is null is absent (proto3 JSON).
    public mutating func null() -> Bool {
        guard peek() == UInt8(ascii: "n"), index + 4 <= bytes.count, bytes[index + 1] == UInt8(ascii: "u"),
            bytes[index + 2] == UInt8(ascii: "l"), bytes[index + 3] == UInt8(ascii: "l")
        else { return false }
        index += 4
        return true
    }

    /// The whole input must have been consumed.
    public mutating func end() throws {
        skipSpace()
        guard index == bytes.count else { throw failure("unexpected data after the JSON value") }
    }

    // MARK: Scalars

    /// A string member's text. Text that is not valid UTF-8 is a failure, never repaired with
    /// U+FFFD: a key or name stored altered would no longer be the one the client sent.
    public mutating func string() throws -> String {
        switch try stringContent() {
        case .plain(let utf8): return String(decoding: utf8, as: UTF8.self)
        case .unescaped(let text): return text
        }
    }

    /// A string member's UTF-8 (checked as `string()` checks it), without making a String: the
    /// input's own bytes when it has no escape. For a value read only to be parsed further (a
    /// timestamp), where the String would be made and dropped.
    public mutating func stringUTF8() throws -> ArraySlice<UInt8> {
        switch try stringContent() {
        case .plain(let utf8): return utf8
        case .unescaped(let text): return ArraySlice(text.utf8)
        }
    }

    /// A string's content: its bytes in the input when it has no escape (checked UTF-8), else
    /// the text its escapes make.
    private enum StringContent {
        case plain(ArraySlice<UInt8>)
        case unescaped(String)
    }

    private mutating func stringContent() throws -> StringContent {
        try expect(UInt8(ascii: "\""), "a string")
        let start = index
        let (end, ascii) = bytes.withUnsafeBufferPointer { Self.plainRun($0, from: start) }
        index = end
        guard index < bytes.count else { throw failure("unterminated string") }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            let slice = bytes[start..<index]
            guard ascii || String(validating: slice, as: UTF8.self) != nil else { throw failure("invalid UTF-8 in a string") }
            index += 1
            return .plain(slice)
        case UInt8(ascii: "\\"): return .unescaped(try escapedString(from: start))
        default: throw failure("control character in a string")
        }
    }

    private mutating func escapedString(from start: Int) throws -> String {
        var utf8 = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else { throw failure("invalid UTF-8 in a string") }
                return text
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw failure("unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        else { throw failure("unpaired surrogate") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw failure("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let value = Unicode.Scalar(scalar) else { throw failure("invalid \\u escape") }
                    utf8.append(contentsOf: String(Character(value)).utf8)
                default: throw failure("invalid escape")
                }
            default:
                guard byte >= 0x20 else { throw failure("control character in a string") }
                utf8.append(byte)
            }
        }
        throw failure("unterminated string")
    }

    private mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw failure("short \\u escape") }
        var value: UInt32 = 0
        for byte in bytes[index..<index + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        index += 4
        return value
    }

    /// An integer written without fraction or exponent (as proto3 JSON writes them).
    public mutating func integer() throws -> Int64 {
        skipSpace()
        let number = decimal()
        guard number.hasDigits else { throw failure("expected an integer") }
        guard !number.overflow else { throw failure("integer out of range") }
        if index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): throw failure("expected an integer, not a fraction")
            default: break
            }
        }
        return number.value
    }

    /// Reads `-?[0-9]*` from `index` to its last digit: the value, whether there was a digit, and
    /// whether the value left the int64 range (what that means is the caller's to say).
    private mutating func decimal() -> (value: Int64, hasDigits: Bool, overflow: Bool) {
        let negative = index < bytes.count && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        let start = index
        // Eighteen digits cannot leave the int64 range: those are read without the overflow checks
        // (a timestamp's 13 digits were about 150 instructions with them).
        var magnitude: UInt64 = 0
        index = bytes.withUnsafeBufferPointer { buffer in
            var i = start
            let fastEnd = min(buffer.count, start + 18)
            while i < fastEnd {
                let digit = buffer[i] &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                magnitude = magnitude &* 10 &+ UInt64(digit)
                i += 1
            }
            return i
        }
        var value = negative ? -Int64(magnitude) : Int64(magnitude)
        var overflow = false
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { break }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) =
                negative ? times10.subtractingReportingOverflow(Int64(digit)) : times10.addingReportingOverflow(Int64(digit))
            overflow = overflow || overflow1 || overflow2
            value = sum
            index += 1
        }
        return (value, index > start, overflow)
    }

    public mutating func int() throws -> Int {
        let value = try integer()
        guard let result = Int(exactly: value) else { throw failure("integer out of range") }
        return result
    }

    public mutating func int32() throws -> Int32 {
        let value = try integer()
        guard let result = Int32(exactly: value) else { throw failure("integer out of the int32 range") }
        return result
    }

    /// An int64 as a decimal string (proto3 JSON), or as a plain number.
    /// A well-formed value's digits are read where they lie: making a String of them and parsing
    /// that cost ~860 instructions, two per stored event in a history page.
    public mutating func int64String() throws -> Int64 {
        guard peek() == UInt8(ascii: "\"") else { return try integer() }
        let open = index
        index += 1
        let number = decimal()
        if number.hasDigits, !number.overflow, index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
            index += 1
            return number.value
        }
        // Anything else (an escape, a stray character, out of range) is read as the string it
        // is, which says what was wrong or resolves the escapes.
        index = open
        let text = try string()
        guard let value = Self.decimalInt64(text) else { throw failure(Self.notDecimalInt64(text)) }
        return value
    }

    /// `text` as an int64 if it is `-?[0-9]+` (the schemas' pattern for int64 strings) and in
    /// range. Swift's `Int64(_:)` alone would also take "+5", which the schemas forbid.
    public static func decimalInt64(_ text: String) -> Int64? {
        let digits = text.utf8.first == UInt8(ascii: "-") ? text.utf8.dropFirst() : text.utf8[...]
        guard !digits.isEmpty, digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return Int64(text)
    }

    public static func notDecimalInt64(_ text: String) -> String {
        "'\(text)' is not a decimal int64 (-?[0-9]+, within the int64 range)"
    }

    /// A number; also "NaN", "Infinity" and "-Infinity" as strings, as proto3 JSON writes them.
    public mutating func double() throws -> Double {
        if peek() == UInt8(ascii: "\"") {
            switch try string() {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            case let text: throw failure("'\(text)' is not a number")
            }
        }
        let start = index
        while index < bytes.count, "+-.eE0123456789".utf8.contains(bytes[index]) { index += 1 }
        guard index > start, let value = Double(String(decoding: bytes[start..<index], as: UTF8.self)) else {
            throw failure("expected a number")
        }
        // A literal past Double's range would become an infinity that JSON cannot write back.
        guard value.isFinite else { throw failure("number out of range") }
        return value
    }

    public mutating func bool() throws -> Bool {
        switch peek() {
        case UInt8(ascii: "t"):
            try literal("true")
            return true
        case UInt8(ascii: "f"):
            try literal("false")
            return false
        default: throw failure("expected a boolean")
        }
    }

    /// Any JSON value.
    public mutating func value() throws -> JSONValue {
        switch peek() {
        case UInt8(ascii: "{"):
            var members: [String: JSONValue] = [:]
            try object { scanner, key in members[key] = try scanner.member(key) { try $0.value() } }
            return .object(members)
        case UInt8(ascii: "["): return .array(try array { try $0.value() })
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool(try bool())
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case .some:
            let start = index
            while index < bytes.count, "+-.eE0123456789".utf8.contains(bytes[index]) { index += 1 }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            if let integer = Int64(text) { return .integer(integer) }
            guard let number = Double(text) else {
                index = start
                throw failure("expected a value")
            }
            guard number.isFinite else {
                index = start
                throw failure("number out of range")
            }
            return .number(number)
        case nil: throw failure("unexpected end")
        }
    }

    /// The exact bytes of the next value, checked to be well-formed JSON in valid UTF-8: for
    /// payloads a server stores and forwards without needing their structure.
    public mutating func rawValue() throws -> RawJSON {
        let first = peek()
        let start = index
        // A string's scan already tells whether it is all ASCII; other values are looked at again.
        var ascii = false
        if first == UInt8(ascii: "\"") { ascii = try skipString() } else { try skipValue() }
        let slice = bytes[start..<index]
        // Most payloads are ASCII, which is valid UTF-8: only the rest pays for a full check.
        guard ascii || Self.isASCII(slice) || String(validating: slice, as: UTF8.self) != nil else { throw failure("invalid UTF-8") }
        return RawJSON(unchecked: Array(slice))
    }

    /// Skips any JSON value (for members this version does not know).
    public mutating func skipValue() throws {
        switch peek() {
        // Through `fields`: a skipped member's name is checked but never made a String.
        case UInt8(ascii: "{"): try fields { scanner, _ in try scanner.skipValue() }
        case UInt8(ascii: "["): _ = try array { try $0.skipValue() }
        case UInt8(ascii: "\""): _ = try skipString()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try bool()
        case UInt8(ascii: "n"): try literal("null")
        case .some: try skipNumber()
        case nil: throw failure("unexpected end")
        }
    }

    /// Skips a string with the same checks as `string()` but without building it: values a
    /// reader skips or forwards raw (record values) are scanned once, not copied into a String.
    /// Returns whether the string, quotes included, is all ASCII (false when it has escapes: the
    /// caller checks those bytes itself).
    private mutating func skipString() throws -> Bool {
        try expect(UInt8(ascii: "\""), "a string")
        let start = index
        let (end, ascii) = bytes.withUnsafeBufferPointer { Self.plainRun($0, from: start) }
        index = end
        guard index < bytes.count else { throw failure("unterminated string") }
        if bytes[index] == UInt8(ascii: "\"") {
            index += 1
            return ascii
        }
        if bytes[index] < 0x20 { throw failure("control character in a string") }
        // An escape: the rare path checks it exactly as `string()` does.
        _ = try escapedString(from: start)
        return false
    }

    /// Where the run of a string's bytes that need no attention ends (the first `"`, `\` or
    /// control character, or the end), and whether the run is all ASCII. A word, then sixteen
    /// bytes at a time: string bytes are most of what a message holds (record values, ids, names),
    /// and a byte at a time with three comparisons each was the scanner's largest cost on a
    /// produce of long values.
    static func plainRun(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int) -> (end: Int, ascii: Bool) {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        // The high bit of each byte of `word` below `bound` (≤ 0x80) is set. The borrow of a low
        // byte may mark bytes above it too, but the lowest mark is always a byte that is below:
        // in memory order (little-endian) the first marked byte is the first one that stops the run.
        @inline(__always) func below(_ word: UInt64, _ bound: UInt64) -> UInt64 { (word &- ones &* bound) & ~word & highs }
        /// How many of the word's bytes come before its first `"`, `\` or control character.
        @inline(__always) func run(_ word: UInt64) -> Int? {
            let stops = below(word ^ (ones &* 0x22), 1) | below(word ^ (ones &* 0x5C), 1) | below(word, 0x20)
            return stops == 0 ? nil : stops.trailingZeroBitCount / 8
        }
        /// The word's first `count` bytes (in memory order), the others zero.
        @inline(__always) func first(_ count: Int, of word: UInt64) -> UInt64 { word & ((1 &<< UInt64(count * 8)) &- 1) }
        var i = start
        guard let base = UnsafeRawPointer(buffer.baseAddress) else { return (start, true) }
        var seen: UInt64 = 0
        // The first word alone: most strings are member names and ids that end within it.
        if i + 8 <= buffer.count {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            if let before = run(word) { return (i + before, first(before, of: word) & highs == 0) }
            seen = word
            i += 8
        }
        // Then sixteen bytes at a time (SSE2's or NEON's compares): about 22 instructions a block
        // against 40 for its two words, so a 200-byte value takes about 290 instead of 500. The
        // marks are 0xFF at each byte that stops the run, read through two words (`any(_:)` is
        // not inlined: a call per block), whose lowest marked byte is where the run ends.
        let quotes = SIMD16<UInt8>(repeating: UInt8(ascii: "\""))
        let backslashes = SIMD16<UInt8>(repeating: UInt8(ascii: "\\"))
        let spaces = SIMD16<UInt8>(repeating: 0x20)
        var seenBlocks = SIMD16<UInt8>(repeating: 0)
        while i + 16 <= buffer.count {
            let block = base.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self)
            let stopping = (block .== quotes) .| (block .== backslashes) .| (block .< spaces)
            let marks = unsafeBitCast(SIMD16<UInt8>(repeating: 0).replacing(with: 0xFF, where: stopping), to: SIMD2<UInt64>.self)
            if marks[0] | marks[1] != 0 {
                let words = unsafeBitCast(block, to: SIMD2<UInt64>.self)
                let (low, high) = (UInt64(littleEndian: words[0]), UInt64(littleEndian: words[1]))
                let (lowMarks, highMarks) = (UInt64(littleEndian: marks[0]), UInt64(littleEndian: marks[1]))
                let blocks = unsafeBitCast(seenBlocks, to: SIMD2<UInt64>.self)
                seen |= blocks[0] | blocks[1]
                if lowMarks != 0 {
                    let before = lowMarks.trailingZeroBitCount / 8
                    seen |= first(before, of: low)
                    return (i + before, seen & highs == 0)
                }
                let before = highMarks.trailingZeroBitCount / 8
                seen |= low | first(before, of: high)
                return (i + 8 + before, seen & highs == 0)
            }
            seenBlocks |= block
            i += 16
        }
        let seenHalves = unsafeBitCast(seenBlocks, to: SIMD2<UInt64>.self)
        seen |= seenHalves[0] | seenHalves[1]
        while i + 8 <= buffer.count {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            if let before = run(word) {
                // The bytes before the first stop belong to the run; no byte-at-a-time tail.
                return (i + before, (seen | first(before, of: word)) & highs == 0)
            }
            seen |= word
            i += 8
        }
        while i < buffer.count {
            let byte = buffer[i]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            seen |= UInt64(byte)
            i += 1
        }
        return (i, seen & highs == 0)
    }

    /// Whether every byte is below 0x80, eight at a time.
    static func isASCII(_ slice: ArraySlice<UInt8>) -> Bool {
        slice.withUnsafeBytes { raw in
            var i = 0
            var seen: UInt64 = 0
            while i + 8 <= raw.count {
                seen |= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < raw.count {
                seen |= UInt64(raw[i])
                i += 1
            }
            return seen & 0x8080_8080_8080_8080 == 0
        }
    }

    /// A number by JSON's grammar: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`.
    private mutating func skipNumber() throws {
        func digits(_ scanner: inout JSONScanner) -> Int {
            let start = scanner.index
            while scanner.index < scanner.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(scanner.bytes[scanner.index]) {
                scanner.index += 1
            }
            return scanner.index - start
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        let first = index < bytes.count ? bytes[index] : 0
        let integer = digits(&self)
        guard integer > 0, first != UInt8(ascii: "0") || integer == 1 else { throw failure("invalid number") }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw failure("invalid number") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw failure("invalid number") }
        }
    }

    private mutating func literal(_ text: String) throws {
        for byte in text.utf8 {
            guard index < bytes.count, bytes[index] == byte else { throw failure("invalid literal") }
            index += 1
        }
    }
}
