import Foundation
import Logging
import Synchronization

/// A log level shared by handlers and changed by a reload.
public final class LogLevelBox: Sendable {
    private let value: Mutex<Logger.Level>
    public init(_ level: Logger.Level) { value = Mutex(level) }
    public var level: Logger.Level {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
    /// The process-wide level of `relance serve`.
    public static let shared = LogLevelBox(.info)
}

/// Plain log lines on standard error; with journald priority prefixes (`<3>`…`<7>`) when started by
/// systemd with its journal on stderr (`JOURNAL_STREAM` set). Metadata as `key=value`, sorted.
public struct RelanceLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    /// The level of every handler sharing `levelBox`: a reload changes them all at once.
    public var logLevel: Logger.Level {
        get { levelBox.level }
        set { levelBox.level = newValue }
    }
    let levelBox: LogLevelBox
    let label: String
    let journal: Bool

    public init(label: String, level: Logger.Level, journal: Bool = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil) {
        self.init(label: label, levelBox: LogLevelBox(level), journal: journal)
    }

    public init(label: String, levelBox: LogLevelBox, journal: Bool = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil) {
        self.label = label
        self.levelBox = levelBox
        self.journal = journal
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quote("\($0.value)"))" }.joined(separator: " ")
        var line: String
        if journal {
            line = "<\(Self.priority(event.level))>\(event.message)"
        } else {
            line = "\(Self.timestamp()) \(event.level) \(label): \(event.message)"
        }
        if !fields.isEmpty { line += " " + fields }
        line = line.replacingOccurrences(of: "\n", with: "\\n") + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func quote(_ value: String) -> String {
        value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) ? "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : value
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    static func timestamp() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }
}
