import Foundation
import RPCCore

/// A configuration file for any of our binaries: a JSON object whose keys are the long flag
/// names (`"listen"`, `"data-dir"`, `"max-frame-bytes"`, …) and whose values are strings,
/// numbers or booleans. Named by `--config FILE` or the `JFRAME_CONFIG` environment variable.
///
/// Its entries become flags placed before the command line's, so a flag given on the command
/// line wins over the file; environment variables apply only where neither sets a value.
public enum ConfigFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The command line with the config file's flags spliced in and `--config` removed.
    public static func expand(_ arguments: [String]) throws -> [String] {
        var rest = Array(arguments.dropFirst())
        var path = ServerOptions.environment("JFRAME_CONFIG")
        if let index = rest.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) {
            if rest[index] == "--config" {
                guard index + 1 < rest.count else { throw Failure(description: "--config needs a file") }
                path = rest[index + 1]
                rest.removeSubrange(index...(index + 1))
            } else {
                path = String(rest[index].dropFirst("--config=".count))
                rest.remove(at: index)
            }
        }
        guard let path else { return rest }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "cannot read the config file \(path)")
        }
        var scanner = JSONScanner(Array(data))
        guard case .object(let object)? = try? scanner.value() else {
            throw Failure(description: "\(path) is not a JSON object")
        }
        var flags: [String] = []
        for key in object.keys.sorted() {
            switch object[key]! {
            case .bool(true): flags.append("--\(key)")
            case .bool(false): break
            case .string(let text): flags += ["--\(key)", text]
            case .integer(let number): flags += ["--\(key)", String(number)]
            default: throw Failure(description: "\(path): \(key) must be a string, an integer or a boolean")
            }
        }
        // Subcommands come first on the command line; options may follow them.
        let leadingWords = rest.prefix { !$0.hasPrefix("-") }
        return Array(leadingWords) + flags + rest.dropFirst(leadingWords.count)
    }
}
