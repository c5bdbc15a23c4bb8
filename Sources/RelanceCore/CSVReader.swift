/// RFC 4180 CSV: fields separated by a delimiter, optionally in double quotes (a quote inside is
/// doubled), records ending in LF or CRLF; a quoted field may hold delimiters and line breaks.
/// Rows come with the line they start on, for error messages.
public struct CSVReader: Sendable {
    public struct Row: Sendable, Equatable {
        public var line: Int
        public var fields: [String]
    }

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case unterminatedQuote(line: Int)
        case textAfterQuote(line: Int)
        case invalidUTF8(line: Int)

        public var description: String {
            switch self {
            case .unterminatedQuote(let line): "line \(line): a quoted field is never closed"
            case .textAfterQuote(let line): "line \(line): text after a closing quote (a quote inside a quoted field is written twice)"
            case .invalidUTF8(let line): "line \(line): invalid UTF-8"
            }
        }
    }

    public var delimiter: UInt8

    public init(delimiter: UInt8 = UInt8(ascii: ",")) { self.delimiter = delimiter }

    /// Every row of `bytes` (a leading UTF-8 byte order mark is skipped; blank lines are skipped).
    public func rows(_ bytes: [UInt8]) throws(Problem) -> [Row] {
        var rows: [Row] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        var rowLine = 1
        var quoted = false
        var wasQuoted = false

        func endField() throws(Problem) {
            guard let text = String(validating: field, as: UTF8.self) else { throw .invalidUTF8(line: line) }
            fields.append(text)
            field.removeAll(keepingCapacity: true)
            wasQuoted = false
        }
        func endRow() {
            if !(fields.count == 1 && fields[0].isEmpty && !wasQuoted) { rows.append(Row(line: rowLine, fields: fields)) }
            fields.removeAll(keepingCapacity: true)
        }

        while i < bytes.count {
            let b = bytes[i]
            if quoted {
                if b == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") {
                        field.append(b)
                        i += 2
                        continue
                    }
                    quoted = false
                    wasQuoted = true
                    i += 1
                    if i < bytes.count, bytes[i] != delimiter, bytes[i] != UInt8(ascii: "\n"), bytes[i] != UInt8(ascii: "\r") {
                        throw .textAfterQuote(line: line)
                    }
                    continue
                }
                if b == UInt8(ascii: "\n") { line += 1 }
                field.append(b)
                i += 1
                continue
            }
            switch b {
            case UInt8(ascii: "\"") where field.isEmpty && !wasQuoted:
                quoted = true
            case delimiter:
                try endField()
            case UInt8(ascii: "\r") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\n"):
                break
            case UInt8(ascii: "\n"):
                let quotedLast = wasQuoted
                try endField()
                wasQuoted = quotedLast
                endRow()
                wasQuoted = false
                line += 1
                rowLine = line
            default:
                field.append(b)
            }
            i += 1
        }
        if quoted { throw .unterminatedQuote(line: rowLine) }
        if !field.isEmpty || !fields.isEmpty || wasQuoted {
            let quotedLast = wasQuoted
            try endField()
            wasQuoted = quotedLast
            endRow()
        }
        return rows
    }
}

extension CSVReader {
    /// Records of the receivables feed from CSV rows: the first row names the columns (the JSON
    /// keys), every other row is one record of `type`; an empty cell is an absent key.
    public static func receivableRecords(_ rows: [Row], type: String) -> [(line: Int, value: Result<JSONValue, RecordIssues>)] {
        guard let header = rows.first else { return [] }
        let names = header.fields.map { $0.trimmingWhitespace() }
        var seen: Set<String> = []
        for name in names where !seen.insert(name).inserted || name.isEmpty {
            return [(header.line, .failure(RecordIssues([FieldIssue(field: name, reason: name.isEmpty ? "an empty column name" : "column named twice")])))]
        }
        return rows.dropFirst().map { row in
            guard row.fields.count == names.count else {
                return (row.line, .failure(RecordIssues([FieldIssue(field: "", reason: "\(row.fields.count) fields, the header has \(names.count)")])))
            }
            var object: [String: JSONValue] = ["type": .string(type)]
            for (name, value) in zip(names, row.fields) where !value.isEmpty { object[name] = .string(value) }
            return (row.line, .success(.object(object)))
        }
    }
}
