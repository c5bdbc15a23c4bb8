import Foundation
import RelanceCore

extension Decoder {
    /// The keyed container of a configuration section, after refusing any key `Keys` does not list.
    func section<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws -> KeyedDecodingContainer<Keys> {
        try rejectUnknownKeys(keys)
        return try container(keyedBy: keys)
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or `fallback` when the key is absent: the one "decode or keep the default".
    func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }

    /// The value at `key`, or nil when the key is absent.
    func value<T: Decodable>(_ key: Key) throws -> T? {
        try decodeIfPresent(T.self, forKey: key)
    }

    /// A schedule (`daily 07:30`, `weekly mon 07:00`, `every 1h`, `off`) at `key`, or `fallback`.
    func schedule(_ key: Key, or fallback: Schedule) throws -> Schedule {
        guard let text: String = try value(key) else { return fallback }
        guard let parsed = Schedule(text) else {
            throw invalid(key, "'\(text.debugQuoted)' is not a schedule such as \"daily 07:30\", \"weekly mon 07:00\", \"every 1h\" or \"off\"")
        }
        return parsed
    }

    /// A refusal of the value at `key`, with the reason an operator can act on.
    func invalid(_ key: Key, _ reason: String) -> DecodingError {
        DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: reason)
    }
}

/// An enumerated configuration value: a bad one is refused with the list of the valid ones.
public protocol ConfigChoice: RawRepresentable<String>, CaseIterable, Sendable, Decodable {}

extension ConfigChoice {
    /// The first choice: a placeholder value when the configuration keys are probed.
    static var firstChoice: Any? { allCases.first }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let value = Self(rawValue: text) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "'\(text.debugQuoted)' is not one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = value
    }
}

/// A duration in configuration: `500ms`, `30s`, `5m`, `1h`, `2d`, `1y`, or a number of seconds.
public struct ConfigDuration: Sendable, Hashable, Decodable, CustomStringConvertible {
    public var value: Duration
    public init(_ value: Duration) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let d = Duration(text: text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "'\(text.debugQuoted)' is not a duration (e.g. 500ms, 30s, 5m, 1h, 2d)")
        }
        value = d
    }

    public var description: String { "\(Int(value.seconds))s" }
}
