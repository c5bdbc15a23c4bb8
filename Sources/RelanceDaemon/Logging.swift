import Foundation
import Logging
import RelanceCore
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
        var line: String
        if journal {
            line = "<\(Self.priority(event.level))>\(event.message)"
        } else {
            line = "\(Timestamp.formatMilliseconds(Date())) \(event.level) \(label): \(event.message)"
        }
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            line += " "
            line += key
            line += "="
            line += Self.quote("\(value)")
        }
        // One line per event: a newline inside (a message, a value) is written as \n.
        if line.utf8.contains(UInt8(ascii: "\n")) { line = line.replacingOccurrences(of: "\n", with: "\\n") }
        line += "\n"
        Self.writeToStandardError(line)
    }

    /// One `write(2)` for the whole line (FileHandle wrapped it in `Data` first), again after a
    /// partial write or an interruption; a closed or broken stderr loses the line, as before.
    static func writeToStandardError(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(STDERR_FILENO, base + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    static func quote(_ value: String) -> String {
        value.utf8.contains(where: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") })
            ? "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : value
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
}
