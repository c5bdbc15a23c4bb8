import Foundation
import RelanceCore

/// One bad line of a spool file.
public struct LineError: Sendable, Codable, Hashable {
    public var line: Int
    public var id: String?
    public var field: String
    public var reason: String
}

/// The parsed content of one spool file.
public struct ParsedSpoolFile: Sendable {
    public var reminders: [(line: Int, reminder: Reminder)]
    public var errors: [LineError]
}

/// Reads and validates a spool file: `.json` holds one record, `.jsonl` one per line.
public struct SpoolFileParser: Sendable {
    public var validator: RecordValidator
    public var maxFileBytes: Int

    public init(validator: RecordValidator, maxFileBytes: Int) {
        self.validator = validator
        self.maxFileBytes = maxFileBytes
    }

    /// Blocking file I/O: call from a dispatch queue, not the cooperative pool.
    public func parse(path: String) -> ParsedSpoolFile {
        let name = (path as NSString).lastPathComponent
        let lower = name.lowercased()
        guard lower.hasSuffix(".json") || lower.hasSuffix(".jsonl") else {
            return ParsedSpoolFile(reminders: [], errors: [LineError(line: 0, id: nil, field: "", reason: "file name must end in .json or .jsonl")])
        }
        var st = stat()
        guard lstat(path, &st) == 0 else {
            return ParsedSpoolFile(reminders: [], errors: [LineError(line: 0, id: nil, field: "", reason: "cannot stat: \(String(cString: strerror(errno)))")])
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            return ParsedSpoolFile(reminders: [], errors: [LineError(line: 0, id: nil, field: "", reason: "not a regular file")])
        }
        guard Int(st.st_size) <= maxFileBytes else {
            return ParsedSpoolFile(
                reminders: [],
                errors: [LineError(line: 0, id: nil, field: "", reason: "file is \(st.st_size) bytes, over spool.max_file_bytes (\(maxFileBytes))")])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return ParsedSpoolFile(reminders: [], errors: [LineError(line: 0, id: nil, field: "", reason: "cannot be read")])
        }
        return parse(data: data, jsonLines: lower.hasSuffix(".jsonl"))
    }

    public func parse(data: Data, jsonLines: Bool) -> ParsedSpoolFile {
        var result = ParsedSpoolFile(reminders: [], errors: [])
        var seen: [String: Int] = [:]
        func take(_ bytes: Data, line: Int) {
            switch validator.validate(bytes) {
            case .success(let reminder):
                if let first = seen[reminder.id] {
                    result.errors.append(LineError(line: line, id: reminder.id, field: "id", reason: "same id as line \(first) of this file"))
                } else {
                    seen[reminder.id] = line
                    result.reminders.append((line, reminder))
                }
            case .failure(let issues):
                let id = Self.idHint(bytes)
                for issue in issues.issues { result.errors.append(LineError(line: line, id: id, field: issue.field, reason: issue.reason)) }
            }
        }
        if !jsonLines {
            take(data, line: 1)
            return result
        }
        Self.forEachLine(of: data) { number, line in take(line, line: number) }
        if result.reminders.isEmpty && result.errors.isEmpty {
            result.errors.append(LineError(line: 0, id: nil, field: "", reason: "file holds no record"))
        }
        return result
    }

    /// Each non-blank line of a JSON-lines file, numbered from 1, without its `\r\n` or `\n`.
    static func forEachLine(of data: Data, _ body: (Int, Data) -> Void) {
        var lineNumber = 0
        var start = data.startIndex
        while start < data.endIndex {
            lineNumber += 1
            let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            var line = data[start..<end]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { body(lineNumber, Data(line)) }
            start = end == data.endIndex ? end : data.index(after: end)
        }
    }

    /// The record's id if it can be read at all, to help the operator find the line.
    static func idHint(_ bytes: Data) -> String? {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: bytes), case .object(let o) = value, case .string(let id)? = o["id"] else {
            return nil
        }
        return TextRules.problem(id, maxLength: 128) == nil ? id : id.debugQuoted
    }
}
