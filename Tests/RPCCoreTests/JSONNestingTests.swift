import Contracts
import Foundation
import RPCCore
import Testing

/// A peer must not choose how deep a reader recurses: nesting past the bound is an error on every
/// path that descends (typed decoding, skipping unknown members, raw values, any value), and the
/// bound's top still fits a small thread stack.
@Suite("JSON nesting bound")
struct JSONNestingTests {
    static func arrays(_ depth: Int) -> [UInt8] {
        Array(String(repeating: "[", count: depth).utf8) + Array(String(repeating: "]", count: depth).utf8)
    }
    static func objects(_ depth: Int) -> [UInt8] {
        Array((String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)).utf8)
    }
    /// `inner` as the value of a member no message defines: the reader skips it.
    static func unknownMember(_ inner: [UInt8]) -> [UInt8] { Array(#"{"service":"x","future":"#.utf8) + inner + [UInt8(ascii: "}")] }

    static let readers: [(String, @Sendable (inout JSONScanner) throws -> Void)] = [
        ("value", { _ = try $0.value() }),
        ("skipValue", { try $0.skipValue() }),
        ("rawValue", { _ = try $0.rawValue() }),
    ]

    @Test(arguments: [16, 128, 1024])
    func nestingUpToTheBoundIsReadAndOneMoreIsRefused(bound: Int) throws {
        for document in [Self.arrays, Self.objects] {
            for (name, read) in Self.readers {
                var atBound = JSONScanner(document(bound), maximumDepth: bound)
                try read(&atBound)
                try atBound.end()
                var over = JSONScanner(document(bound + 1), maximumDepth: bound)
                #expect(throws: JSONScanner.Failure.self, "\(name) at \(bound + 1)") { try read(&over) }
            }
        }
    }

    @Test func theFailureSaysWhatTheBoundIs() {
        var scanner = JSONScanner(Self.arrays(20), maximumDepth: 16)
        #expect { _ = try scanner.value() } throws: { "\($0)".contains("nested deeper than 16 levels") }
    }

    @Test func depthIsCountedPerLevelNotPerValue() throws {
        // Many siblings at one level are not nesting: a wide document within the bound reads.
        let wide = "[" + Array(repeating: #"{"a":[1,2,{"b":[]}]}"#, count: 10_000).joined(separator: ",") + "]"
        var scanner = JSONScanner(Array(wide.utf8), maximumDepth: 16)
        _ = try scanner.value()
        try scanner.end()
    }

    /// What crashed every server: ~90 KB of `[` inside a member the message does not know,
    /// and the same through a raw record value and through an envelope Foundation decodes.
    @Test func hostileDepthIsInvalidArgumentEverywhere() throws {
        let deep = Self.arrays(200_000)
        #expect { _ = try MessageCoding.decode(JframeHealthV1.HealthCheckRequest.self, from: Self.unknownMember(deep)) } throws: {
            ($0 as? RPCError)?.code == .invalidArgument && "\($0)".contains("nested deeper")
        }
        let record = Array(#"{"topic":"t","records":[{"value":"#.utf8) + deep + Array("}]}".utf8)
        #expect { _ = try MessageCoding.decode(CqrsBrokerV1.ProduceRequest.self, from: record) } throws: {
            ($0 as? RPCError)?.code == .invalidArgument
        }
        #expect(throws: (any Error).self) { _ = try RawJSON(validating: Self.objects(200_000)) }
        let hello = Array(#"{"versions":[1],"maxFrameBytes":4096,"initialCredit":1,"x":"#.utf8) + deep + [UInt8(ascii: "}")]
        #expect(throws: (any Error).self) { _ = try MessageCoding.decode(Hello.self, from: hello) }
    }

    /// In this (debug) build, whose frames are several times a release build's: the default
    /// bound read on a 512 KiB stack, and the top of the allowed range on 4 MiB, half of what an
    /// event loop thread has. The bound, not the stack, is what stops a reader.
    @Test(arguments: [
        (JSONNesting.defaultMaximumDepth, 512 * 1024), (JSONNesting.allowedMaximumDepths.upperBound, 4 * 1024 * 1024),
    ])
    func theBoundFitsTheStack(bound: Int, stackBytes: Int) async throws {
        let outcome: Result<Void, any Error> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(
                    returning: Result {
                        for document in [Self.arrays, Self.objects] {
                            for (_, read) in Self.readers {
                                var scanner = JSONScanner(document(bound), maximumDepth: bound)
                                try read(&scanner)
                            }
                            // The message's own object is the first level.
                            var scanner = JSONScanner(Self.unknownMember(document(bound - 1)), maximumDepth: bound)
                            _ = try JframeHealthV1.HealthCheckRequest(json: &scanner)
                        }
                    })
            }
            thread.stackSize = stackBytes
            thread.start()
        }
        try outcome.get()
    }
}
