import Foundation
import RelanceCore
import Synchronization

/// Every key the configuration declares, found by running the configuration's own decoding code
/// against a decoder that records what it is asked for. The list of keys the environment and the
/// credentials may set is therefore derived from the declarations and cannot drift from them.
public struct ConfigurationKeys: Sendable {
    public enum Kind: Sendable, Hashable {
        /// One value (a string, a number, a duration, a choice): the environment may set it.
        case scalar
        /// A map of user-named scalars (`sms.generic.headers`, `policy.max_per_day`): each entry may be set.
        case scalarMap
        /// A map of sections or a list (`queues`, `stages`): only the file sets it.
        case fileOnly
    }

    /// Dotted path (`email.smtp.password`) → kind.
    public let kinds: [String: Kind]

    /// The catalogue of `RelanceConfiguration`.
    public static let relance = ConfigurationKeys(RelanceConfiguration.self)

    init<T: Decodable>(_ type: T.Type) {
        let recorder = Recorder()
        _ = try? T(from: KeyProbe(recorder: recorder, codingPath: []))
        kinds = recorder.kinds.withLock { $0 }
    }

    /// Top-level section names (`spool`, `email`, …).
    public var sections: Set<String> { Set(kinds.keys.compactMap { $0.split(separator: ".").first.map(String.init) }) }

    /// Whether the value at `path` is a secret: never logged, never echoed in an error.
    public static func isSecret(_ path: String) -> Bool {
        let last = path.split(separator: ".").last.map(String.init) ?? path
        return secretNames.contains(last) || path.hasPrefix("sms.generic.headers.")
    }

    /// Last components of the keys that hold secrets.
    public static let secretNames: Set<String> = [
        "password", "auth_token", "api_key", "api_secret", "signature_secret", "secret", "brevo_token", "api_token",
    ]

    /// The environment variable of `path`: `RELANCE_` and the path in upper snake case.
    public static func environmentName(_ path: String) -> String {
        "RELANCE_" + path.replacingOccurrences(of: ".", with: "_").replacingOccurrences(of: "-", with: "_").uppercased()
    }

    /// The credential file name of `path`: the path joined by dashes.
    public static func credentialName(_ path: String) -> String { path.replacingOccurrences(of: ".", with: "-") }
}

/// What the probe found, shared by the nested probes of one walk.
final class Recorder: Sendable {
    let kinds = Mutex<[String: ConfigurationKeys.Kind]>([:])
    func record(_ path: [any CodingKey], _ kind: ConfigurationKeys.Kind) {
        let key = path.map(\.stringValue).joined(separator: ".")
        kinds.withLock { kinds in
            // A section asked for as a whole and then key by key keeps its keys only.
            if kinds[key] == nil { kinds[key] = kind }
        }
    }
    func forget(_ path: [any CodingKey]) {
        let key = path.map(\.stringValue).joined(separator: ".")
        kinds.withLock { _ = $0.removeValue(forKey: key) }
    }
}

/// Values a type can be asked for without a decoder: the probe answers with them.
protocol ProbePlaceholder { static var placeholder: Self { get } }
extension String: ProbePlaceholder { static var placeholder: String { "" } }
extension Int: ProbePlaceholder { static var placeholder: Int { 0 } }
extension Double: ProbePlaceholder { static var placeholder: Double { 0 } }
extension Bool: ProbePlaceholder { static var placeholder: Bool { false } }

/// Marks the containers the probe must not walk into.
protocol ProbeMap { static var holdsScalars: Bool { get } }
extension Dictionary: ProbeMap where Key == String {
    static var holdsScalars: Bool { Value.self is any ProbePlaceholder.Type }
}
protocol ProbeList {}
extension Array: ProbeList {}

struct KeyProbe: Decoder {
    let recorder: Recorder
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        recorder.forget(codingPath)
        return KeyedDecodingContainer(KeyedProbe<Key>(recorder: recorder, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        recorder.record(codingPath, .fileOnly)
        throw ProbeStop()
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        recorder.record(codingPath, .scalar)
        return SingleProbe(codingPath: codingPath)
    }

    /// Records what `type` at `path` is, walking into sections.
    static func walk<T: Decodable>(_ type: T.Type, at path: [any CodingKey], recorder: Recorder) -> T? {
        if let placeholder = type as? any ProbePlaceholder.Type {
            recorder.record(path, .scalar)
            return placeholder.placeholder as? T
        }
        if let map = type as? any ProbeMap.Type {
            recorder.record(path, map.holdsScalars ? .scalarMap : .fileOnly)
            return nil
        }
        if type is any ProbeList.Type {
            recorder.record(path, .fileOnly)
            return nil
        }
        if let choice = type as? any ConfigChoice.Type {
            recorder.record(path, .scalar)
            return choice.firstChoice as? T
        }
        // A section or a single-value type: its own decoding code says which.
        return try? T(from: KeyProbe(recorder: recorder, codingPath: path))
    }
}

struct ProbeStop: Error {}

struct KeyedProbe<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let recorder: Recorder
    var codingPath: [any CodingKey]
    var allKeys: [Key] { [] }
    // Every key "is there", so the standard library's concrete `decodeIfPresent(String.self…)`
    // reaches `decode` below and the key is recorded.
    func contains(_ key: Key) -> Bool { true }
    func decodeNil(forKey key: Key) throws -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let value = KeyProbe.walk(type, at: codingPath + [key], recorder: recorder) else { throw ProbeStop() }
        return value
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        _ = KeyProbe.walk(type, at: codingPath + [key], recorder: recorder)
        return nil
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        KeyedDecodingContainer(KeyedProbe<NestedKey>(recorder: recorder, codingPath: codingPath + [key]))
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { throw ProbeStop() }
    func superDecoder() throws -> any Decoder { KeyProbe(recorder: recorder, codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { KeyProbe(recorder: recorder, codingPath: codingPath + [key]) }
}

struct SingleProbe: SingleValueDecodingContainer {
    var codingPath: [any CodingKey]
    func decodeNil() -> Bool { false }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard let placeholder = (type as? any ProbePlaceholder.Type)?.placeholder as? T else { throw ProbeStop() }
        return placeholder
    }
}
