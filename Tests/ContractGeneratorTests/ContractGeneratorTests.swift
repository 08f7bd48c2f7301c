import Foundation
import Testing

@testable import ContractGenerator

@Suite("ContractGenerator")
struct ContractGeneratorTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func protocolFiles() throws -> [(name: String, text: String)] {
        let folder = root.appendingPathComponent("Protocols")
        return try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".json") && $0 != "package.schema.json" }.sorted()
            .map { ($0, try String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8)) }
    }

    static func package(_ messages: String, services: String = "[]", name: String = "t.v1") -> (name: String, text: String) {
        (
            "\(name).json",
            """
            {"package":"\(name)","description":"d","jsonSchemaDialect":"https://json-schema.org/draft/2020-12/schema",
             "services":\(services),"messages":\(messages)}
            """
        )
    }

    @Test func committedContractsMatchWhatProtocolsGenerate() throws {
        let generated = try ContractGenerator.generate(files: Self.protocolFiles())
        let folder = Self.root.appendingPathComponent("Sources/Contracts")
        for (name, text) in generated {
            let committed = try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            #expect(committed == text, "Sources/Contracts/\(name) is stale: run Scripts/generate")
        }
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".swift") }
        #expect(Set(onDisk) == Set(generated.keys))
    }

    @Test func mapsSchemaTypesToSwiftTypes() throws {
        let output = try ContractGenerator.generate(files: [
            Self.package(
                #"""
                {"Kind":{"description":"k","type":"string","enum":["FIRST_ONE","second"],"examples":["second"]},
                 "M":{"description":"m","type":"object","properties":{
                   "s":{"type":"string"},"big":{"type":"string","format":"int64"},"n":{"type":"integer"},
                   "i":{"type":"integer","format":"int32"},"d":{"type":"number"},"b":{"type":"boolean"},
                   "list":{"type":"array","items":{"type":"string"}},"bigs":{"type":"array","items":{"type":"string","format":"int64"}},
                   "map":{"type":"object","additionalProperties":{"type":"integer"}},"any":{},"kind":{"$ref":"#/messages/Kind"}},
                  "required":["s","big"],"examples":[{}]}}
                """#)
        ])
        let swift = try #require(output["t.v1.swift"])
        for line in [
            "public var s: String\n", "public var big: Int64\n", "public var n: Int?", "public var i: Int32?",
            "public var d: Double?", "public var b: Bool?", "public var list: [String]?", "public var bigs: [Int64]?",
            "public var map: [String: Int]?", "public var `any`: JSONValue?", "public var kind: Kind?",
            "case firstOne = \"FIRST_ONE\"", "case second = \"second\"", "decodeInt64String(forKey: .big)",
            "decodeInt64StringsIfPresent(forKey: .bigs)",
        ] {
            #expect(swift.contains(line), "missing: \(line)")
        }
    }

    @Test(arguments: [
        (#"{"type":"object","properties":{"x":{"oneOf":[{"type":"string"}]}}}"#, "messages.M.x: oneOf is not supported"),
        (#"{"type":"object","properties":{"x":{"type":"object","properties":{}}}}"#, "messages.M.x: an inline object"),
        (#"{"type":"object","properties":{"x":{"type":"string","enum":["a"]}}}"#, "messages.M.x: an inline enum"),
        (#"{"type":"object","properties":{"x":{"type":["string","null"]}}}"#, "messages.M.x: a list of types"),
        (##"{"type":"object","properties":{"x":{"$ref":"#/messages/Nope"}}}"##, "has no message Nope"),
        (#"{"type":"object","properties":{"x":{"type":"array"}}}"#, "messages.M.x: an array needs"),
        (#"{"type":"object","properties":{},"required":["y"]}"#, "required member y"),
        (#"{"type":"array","items":{"type":"string"}}"#, "a message must be an object"),
    ])
    func unsupportedConstructsAreClearErrors(schema: String, expected: String) {
        let file = Self.package(#"{"M":"# + schema.dropLast() + #","description":"m","examples":[{}]}}"#)
        #expect {
            _ = try ContractGenerator.generate(files: [file])
        } throws: { error in
            let text = "\(error)"
            return text.contains(expected) && text.contains("t.v1.json")
        }
    }

    @Test func methodsMustNameMessagesOfTheirPackage() {
        let file = Self.package(
            #"{"M":{"description":"m","type":"object","properties":{},"examples":[{}]}}"#,
            services:
                #"[{"name":"S","description":"s","methods":[{"name":"Do","kind":"unary","access":"read","request":"M","response":"Gone","description":"d"}]}]"#
        )
        #expect {
            _ = try ContractGenerator.generate(files: [file])
        } throws: { "\($0)".contains("S/Do: no message Gone") }
    }

    @Test(arguments: [#""#, #""access":"admin","#])
    func methodsMustDeclareTheirAccess(access: String) {
        let file = Self.package(
            #"{"M":{"description":"m","type":"object","properties":{},"examples":[{}]}}"#,
            services: #"[{"name":"S","description":"s","methods":[{"name":"Do","kind":"unary","# + access
                + #""request":"M","response":"M","description":"d"}]}]"#)
        #expect {
            _ = try ContractGenerator.generate(files: [file])
        } throws: { "\($0)".contains("S/Do: access must be public, read or write") }
    }

    @Test func orderedJSONKeepsMemberOrderAndRejectsDuplicates() throws {
        let value = try OrderedJSON.parse(#"{"z":1,"a":[true,null,"\u00e9\n"],"m":{}}"#)
        #expect(value.members?.map(\.0) == ["z", "a", "m"])
        #expect(value["a"] == .array([.bool(true), .null, .string("é\n")]))
        #expect(throws: GeneratorError.self) { try OrderedJSON.parse(#"{"a":1,"a":2}"#) }
        #expect(throws: GeneratorError.self) { try OrderedJSON.parse(#"{"a":1} x"#) }
    }
}
