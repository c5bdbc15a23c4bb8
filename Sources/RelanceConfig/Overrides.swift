import Foundation
import RelanceCore
import Yams

/// The environment variables and credential files that set configuration keys, derived from the
/// declared keys (`ConfigurationKeys`). A variable that starts like a section but names no key, or
/// a credential file that names no key, is refused with the closest key as a suggestion.
enum Overrides {
    enum Origin: CustomStringConvertible, Sendable {
        case environment(String)
        case credential(String)
        var description: String {
            switch self {
            case .environment(let name): return name
            case .credential(let name): return "credential \(name)"
            }
        }
    }

    struct Item: Sendable {
        var path: [String]
        var value: String
        var origin: Origin
        var dotted: String { path.joined(separator: ".") }
    }

    /// Variables outside the configuration that start like a section: the benchmark harness's knob.
    static let notKeys: Set<String> = ["RELANCE_POLICY_YAML"]

    static func collect(environment: [String: String], node: Node, keys: ConfigurationKeys = .relance) throws -> [Item] {
        var items: [Item] = []
        var problems: [String] = []
        let scalars = keys.kinds.filter { $0.value == .scalar }.map(\.key)
        let maps = keys.kinds.filter { $0.value == .scalarMap }.map(\.key)
        let byEnvironmentName = Dictionary(scalars.map { (ConfigurationKeys.environmentName($0), $0) }, uniquingKeysWith: { a, _ in a })
        let sectionPrefixes = keys.sections.map { ConfigurationKeys.environmentName($0) + "_" }
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("RELANCE_") {
            if let path = byEnvironmentName[name] {
                items.append(Item(path: path.split(separator: ".").map(String.init), value: value, origin: .environment(name)))
            } else if let map = maps.first(where: { name.hasPrefix(ConfigurationKeys.environmentName($0) + "_") }) {
                let entry = String(name.dropFirst(ConfigurationKeys.environmentName(map).count + 1))
                let declared = declaredEntry(entry, in: node, map: map)
                let path = map.split(separator: ".").map(String.init) + [declared ?? newEntryName(entry, map: map)]
                items.append(Item(path: path, value: value, origin: .environment(name)))
            } else if !notKeys.contains(name) && sectionPrefixes.contains(where: name.hasPrefix) {
                let candidates = Array(byEnvironmentName.keys) + maps.map { ConfigurationKeys.environmentName($0) + "_<NAME>" }
                problems.append("\(name) names no configuration key\(Suggestion.closest(to: name, in: candidates).map { " (did you mean \($0)?)" } ?? "")")
            }
        }
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty {
            let byCredentialName = Dictionary(scalars.map { (ConfigurationKeys.credentialName($0), $0) }, uniquingKeysWith: { a, _ in a })
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            for name in names {
                let path: [String]
                if let key = byCredentialName[name] {
                    path = key.split(separator: ".").map(String.init)
                } else if let map = maps.first(where: { name.hasPrefix(ConfigurationKeys.credentialName($0) + "-") }) {
                    path = map.split(separator: ".").map(String.init) + [String(name.dropFirst(ConfigurationKeys.credentialName(map).count + 1))]
                } else {
                    let candidates = Array(byCredentialName.keys)
                    problems.append(
                        "credential \(name) names no configuration key\(Suggestion.closest(to: name, in: candidates).map { " (did you mean \($0)?)" } ?? "")")
                    continue
                }
                guard let data = FileManager.default.contents(atPath: directory + "/" + name) else {
                    problems.append("credential \(name): cannot be read")
                    continue
                }
                guard let value = String(validating: data, as: UTF8.self) else {
                    problems.append("credential \(name): not valid UTF-8")
                    continue
                }
                items.append(Item(path: path, value: value.trimmingCharacters(in: .newlines), origin: .credential(name)))
            }
        }
        if !problems.isEmpty { throw ConfigurationError(problems.joined(separator: "\n")) }
        return items
    }

    /// The spelling the file uses for a map entry the environment names in upper snake case.
    static func declaredEntry(_ entry: String, in node: Node, map: String) -> String? {
        var current: Node? = node
        for key in map.split(separator: ".") { current = current?.mapping?[String(key)] }
        let wanted = entry.uppercased().replacingOccurrences(of: "-", with: "_")
        return current?.mapping?.keys.compactMap(\.string).first { $0.uppercased().replacingOccurrences(of: "-", with: "_") == wanted }
    }

    /// A map entry the file does not declare: lower case, and `-` between the words of a header name.
    static func newEntryName(_ entry: String, map: String) -> String {
        map == "sms.generic.headers" ? entry.lowercased().replacingOccurrences(of: "_", with: "-") : entry.lowercased()
    }

    static func setting(_ node: Node, path: ArraySlice<String>, value: String) -> Node {
        guard let key = path.first else { return Node(value) }
        var mapping = node.mapping ?? Node.Mapping([])
        mapping[key] = setting(mapping[key] ?? .mapping(.init([])), path: path.dropFirst(), value: value)
        return .mapping(mapping)
    }

    /// Replaces the value of every secret key of `node` found in `message` (a last guard: the
    /// messages are written not to carry them in the first place).
    static func scrub(_ message: String, node: Node) -> String {
        var secrets: [String] = []
        func walk(_ node: Node, _ path: String) {
            if let mapping = node.mapping {
                for (key, value) in mapping {
                    let name = key.string ?? ""
                    walk(value, path.isEmpty ? name : path + "." + name)
                }
            } else if let scalar = node.scalar, ConfigurationKeys.isSecret(path), scalar.string.count >= 4 {
                secrets.append(scalar.string)
            }
        }
        walk(node, "")
        return secrets.sorted { $0.count > $1.count }.reduce(message) { $0.replacingOccurrences(of: $1, with: "***") }
    }
}
