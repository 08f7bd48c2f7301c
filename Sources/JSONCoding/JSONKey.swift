/// A member's name as a decoder reads it: its UTF-8 bytes (unescaped), matched against the names
/// the decoder knows (`switch key { case "eventId": … }`, or `key == "n"`) without making a String.
///
/// Why: decoders switch on every member's name. Made into a String and compared as one, the
/// names cost about a third of decoding a stored event (a rebuild reads hundreds of thousands),
/// and a good share of every request's and reply's decoding; most of them are read only to be
/// matched. `string` makes the String where one is needed (an error's path, a map's key).
public struct JSONKey: CustomStringConvertible, Sendable {
    /// The name's bytes, escapes resolved.
    public let utf8: ArraySlice<UInt8>

    public init(utf8: ArraySlice<UInt8>) { self.utf8 = utf8 }

    public var string: String { String(decoding: utf8, as: UTF8.self) }

    public var description: String { string }

    /// Whether the name is `name`, byte for byte (JSON member names are compared as code points,
    /// not canonically: "é" as one scalar and as two are different members, as in JSONDecoder).
    /// Inlined into the decoders: a `switch` tries its cases one by one, and most fail on the length.
    @inlinable
    public static func == (key: JSONKey, name: StaticString) -> Bool {
        guard name.hasPointerRepresentation else {
            // A one-scalar literal ("n") may be stored as its scalar rather than as bytes.
            return name.withUTF8Buffer { key.utf8.elementsEqual($0) }
        }
        let count = name.utf8CodeUnitCount
        guard count == key.utf8.count else { return false }
        let expected = name.utf8Start
        return key.utf8.withUnsafeBufferPointer { actual in
            var i = 0
            while i < count {
                if actual[i] != expected[i] { return false }
                i += 1
            }
            return true
        }
    }

    /// A number made of the name's length and its first and last bytes, for a decoder to
    /// `switch` on before comparing bytes with the one or two names it can be (jframe-gen writes
    /// the constants, from `dispatchCode(of:)`). A `switch` of string cases compares the key with
    /// each case in turn: about five failed compares per member of an eight-member message, a
    /// tenth of reading a stored event.
    @inlinable
    public var dispatchCode: Int { Self.dispatchCode(of: utf8) }

    /// `dispatchCode` of the name whose UTF-8 bytes are `utf8` (0 for the empty name).
    @inlinable
    public static func dispatchCode<Bytes: BidirectionalCollection<UInt8>>(of utf8: Bytes) -> Int {
        guard let first = utf8.first, let last = utf8.last else { return 0 }
        return utf8.count << 16 | Int(first) << 8 | Int(last)
    }

    /// Lets a `switch` over a key match string literals.
    @inlinable
    public static func ~= (name: StaticString, key: JSONKey) -> Bool { key == name }
}
