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
        var accumulator = Accumulator(validator: validator)
        data.withUnsafeBytes { raw in
            if !jsonLines {
                accumulator.take(raw, line: 1)
                return
            }
            for (number, range) in Self.lines(of: raw) { accumulator.take(UnsafeRawBufferPointer(rebasing: raw[range]), line: number) }
        }
        if jsonLines && accumulator.result.reminders.isEmpty && accumulator.result.errors.isEmpty {
            accumulator.result.errors.append(LineError(line: 0, id: nil, field: "", reason: "file holds no record"))
        }
        return accumulator.result
    }

    /// The records of one file as they are validated; a second record with the same id is an error.
    struct Accumulator {
        let validator: RecordValidator
        var result = ParsedSpoolFile(reminders: [], errors: [])
        var seen: [String: Int] = [:]

        mutating func take(_ bytes: UnsafeRawBufferPointer, line: Int) {
            switch validator.validate(bytes) {
            case .success(let reminder):
                if let first = seen[reminder.id] {
                    result.errors.append(LineError(line: line, id: reminder.id, field: "id", reason: "same id as line \(first) of this file"))
                } else {
                    seen[reminder.id] = line
                    result.reminders.append((line, reminder))
                }
            case .failure(let issues):
                let id = SpoolFileParser.idHint(bytes)
                for issue in issues.issues { result.errors.append(LineError(line: line, id: id, field: issue.field, reason: issue.reason)) }
            }
        }
    }

    /// The non-blank lines of a JSON-lines file, numbered from 1, as byte ranges without their
    /// `\r\n` or `\n`.
    static func lines(of bytes: UnsafeRawBufferPointer) -> [(Int, Range<Int>)] {
        var lines: [(Int, Range<Int>)] = []
        var number = 0
        var start = 0
        while start < bytes.count {
            number += 1
            var end = bytes.count
            if let base = bytes.baseAddress, let found = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start) {
                end = base.distance(to: UnsafeRawPointer(found))
            }
            var last = end
            if last > start && bytes[last - 1] == UInt8(ascii: "\r") { last -= 1 }
            if bytes[start..<last].contains(where: { $0 != 0x20 && $0 != 0x09 }) { lines.append((number, start..<last)) }
            start = end + 1
        }
        return lines
    }

    /// The record's id if it can be read at all, to help the operator find the line.
    static func idHint(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard let value = try? JSONParser.parse(bytes), case .object(let o) = value, case .string(let id)? = o["id"] else {
            return nil
        }
        return TextRules.problem(id, maxLength: 128) == nil ? id : id.debugQuoted
    }
}
