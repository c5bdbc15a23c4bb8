import Foundation
import RelanceCore
import Yams

/// An error in the configuration: names the file (or the variable, or the credential), the line
/// and the key, and never echoes the value of a secret.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reads configuration the way DESIGN.md says: YAML file, then `RELANCE_*` environment overrides,
/// then secrets from `$CREDENTIALS_DIRECTORY`.
public enum ConfigurationLoader {
    /// Where the values came from, for a one-line log (never the values themselves).
    public struct Provenance: Sendable {
        public var file: String?
        public var environment: [String] = []
        public var credentials: [String] = []
    }

    public static func load(
        file: String?, yaml: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (RelanceConfiguration, Provenance) {
        var provenance = Provenance(file: file)
        let label = file ?? "embedded default"
        var text = yaml ?? ""
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw ConfigurationError("\(file): cannot be read") }
            guard let t = String(validating: data, as: UTF8.self) else { throw ConfigurationError("\(file): not valid UTF-8") }
            text = t
        }
        var node: Node = .mapping(.init([]))
        do {
            if let parsed = try Yams.compose(yaml: text) { node = parsed }
        } catch let error as YamlError {
            throw ConfigurationError("\(label): " + YAMLProblem.describe(error, in: text))
        } catch {
            throw ConfigurationError("\(label): invalid YAML")
        }
        if case .scalar(let s) = node, s.string.isEmpty { node = .mapping(.init([])) }
        guard node.mapping != nil else { throw ConfigurationError("\(label): the top level must be a mapping of keys") }

        let overrides = try Overrides.collect(environment: environment, node: node)
        for item in overrides {
            node = Overrides.setting(node, path: item.path[...], value: item.value)
            switch item.origin {
            case .environment(let name): provenance.environment.append(name)
            case .credential(let name): provenance.credentials.append(name)
            }
        }
        do {
            return (try YAMLDecoder().decode(RelanceConfiguration.self, from: node), provenance)
        } catch let error as DecodingError {
            throw ConfigurationError(Overrides.scrub(describe(error, file: label, overrides: overrides), node: node))
        } catch {
            throw ConfigurationError(Overrides.scrub("\(label): \(error)", node: node))
        }
    }

    /// A decoding error as `where: key.path: reason`, where is the variable or credential that set
    /// the key, else the file. The reason of a secret key never carries its value.
    static func describe(_ error: DecodingError, file: String, overrides: [Overrides.Item]) -> String {
        let (codingPath, reason): ([any CodingKey], String)
        switch error {
        case .dataCorrupted(let c): (codingPath, reason) = (c.codingPath, c.debugDescription)
        case .keyNotFound(let key, let c): (codingPath, reason) = (c.codingPath + [key], "is required")
        case .typeMismatch(let type, let c): (codingPath, reason) = (c.codingPath, "expected \(typeName(type))")
        case .valueNotFound(let type, let c): (codingPath, reason) = (c.codingPath, "expected \(typeName(type)), found nothing")
        @unknown default: (codingPath, reason) = ([], "\(error)")
        }
        let path = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
        let shownReason = ConfigurationKeys.isSecret(path) && !reason.hasPrefix("unknown key") ? "invalid value (a secret: not shown)" : reason
        // The deepest override that set this key or one of its parents.
        let origin = overrides.filter { path == $0.dotted || path.hasPrefix($0.dotted + ".") }.max { $0.dotted.count < $1.dotted.count }
        let place = origin.map { "\($0.origin)" } ?? file
        return path.isEmpty ? "\(place): \(shownReason)" : "\(place): \(path): \(shownReason)"
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type: return "a whole number"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        default: return "\(type)".contains("Dictionary") || "\(type)".contains("Mapping") ? "a mapping of keys" : "\(type)"
        }
    }
}

/// A YAML syntax error told by file, line and column and the key on that line, never quoting the
/// line itself (it may be `password: …`).
enum YAMLProblem {
    static func describe(_ error: YamlError, in text: String) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "line \(mark.line), column \(mark.column): invalid YAML: \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line)\(key(onLine: context.mark.line, of: text).map { ", key '\($0)'" } ?? ""))"
            } else if let key = key(onLine: mark.line, of: text) {
                message += " (key '\(key)')"
            }
            return message
        case .duplicatedKeysInMapping(let duplicates, let context):
            return "line \(context.mark.line): invalid YAML: the key \(duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")) appears twice"
        case .reader(let problem, _, _, _):
            return "invalid YAML: \(problem)"
        default:
            return "invalid YAML"
        }
    }

    /// The mapping key written at the start of line `number` (1-based), if the line has one.
    static func key(onLine number: Int, of text: String) -> String? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard number >= 1, number <= lines.count else { return nil }
        let line = lines[number - 1].drop { $0 == " " || $0 == "\t" || $0 == "-" || $0 == "{" }
        guard let colon = line.firstIndex(of: ":") else { return nil }
        let key = line[..<colon].trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty, key.count <= 64, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            return nil
        }
        return key
    }
}
