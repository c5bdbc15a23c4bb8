import Foundation
import RelanceCore
import RelanceTransport

/// The spool directory tree (DESIGN.md, "Spool protocol").
public struct SpoolLayout: Sendable {
    public var root: String
    public init(root: String) { self.root = root }

    public var tmp: String { root + "/tmp" }
    public var incoming: String { root + "/incoming" }
    public var active: String { root + "/active" }
    public var done: String { root + "/done" }
    public var failed: String { root + "/failed" }
    public var cancel: String { root + "/cancel" }

    public static let defaultQueue = "default"

    /// Creates the tree (group-writable for producers, nothing for others).
    public func create() throws {
        for dir in [tmp, incoming, active, done, failed, cancel] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o2770])
        }
    }

    /// The directory of `queue` under `incoming/` (the default queue is `incoming/` itself).
    public func incoming(queue: String) -> String {
        queue == Self.defaultQueue ? incoming : incoming + "/" + queue
    }

    /// Files waiting in `incoming/` and its queue subdirectories: (queue, file name), oldest first
    /// per directory. Hidden files are the producers' business and are left alone.
    public func waitingFiles() -> [(queue: String, name: String)] {
        var result: [(String, String)] = []
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: incoming) else { return [] }
        var queues: [String] = []
        for entry in entries.sorted() where !entry.hasPrefix(".") {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: incoming + "/" + entry, isDirectory: &isDir), isDir.boolValue {
                queues.append(entry)
            } else {
                result.append((Self.defaultQueue, entry))
            }
        }
        for queue in queues {
            for name in ((try? fm.contentsOfDirectory(atPath: incoming + "/" + queue)) ?? []).sorted() where !name.hasPrefix(".") {
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: incoming + "/" + queue + "/" + name, isDirectory: &isDir), !isDir.boolValue {
                    result.append((queue, name))
                }
            }
        }
        return result
    }

    /// Files left in `active/` by a crash: (queue, name).
    public func activeFiles() -> [(queue: String, name: String)] {
        var result: [(String, String)] = []
        let fm = FileManager.default
        for queue in ((try? fm.contentsOfDirectory(atPath: active)) ?? []).sorted() {
            for name in ((try? fm.contentsOfDirectory(atPath: active + "/" + queue)) ?? []).sorted() where !name.hasPrefix(".") {
                result.append((queue, name))
            }
        }
        return result
    }

    /// A free name for `name` in `directory` (`name`, then `name.1`, …) so nothing is overwritten.
    static func freeName(_ name: String, in directory: String) -> String {
        var candidate = name
        var n = 1
        while FileManager.default.fileExists(atPath: directory + "/" + candidate)
            || FileManager.default.fileExists(atPath: directory + "/" + candidate + ".error.json")
        {
            candidate = "\(name).\(n)"
            n += 1
        }
        return candidate
    }
}

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
        var lineNumber = 0
        var start = data.startIndex
        while start < data.endIndex {
            lineNumber += 1
            let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            var line = data[start..<end]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { take(Data(line), line: lineNumber) }
            start = end == data.endIndex ? end : data.index(after: end)
        }
        if result.reminders.isEmpty && result.errors.isEmpty {
            result.errors.append(LineError(line: 0, id: nil, field: "", reason: "file holds no record"))
        }
        return result
    }

    /// The record's id if it can be read at all, to help the operator find the line.
    static func idHint(_ bytes: Data) -> String? {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: bytes), case .object(let o) = value, case .string(let id)? = o["id"] else {
            return nil
        }
        return TextRules.problem(id, maxLength: 128) == nil ? id : id.debugQuoted
    }
}

/// The attachment checks of intake, done on the real file system.
public enum AttachmentInspector {
    public static func inspect(root: String?, maxBytes: Int) -> @Sendable (String) -> AttachmentInspection {
        { path in
            var st = stat()
            guard stat(path, &st) == 0 else { return errno == ENOENT ? .missing : .unreadable(String(cString: strerror(errno))) }
            guard (st.st_mode & S_IFMT) == S_IFREG else { return .notRegularFile }
            if let root {
                // A symbolic link must not lead outside the root.
                let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
                let realRoot = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
                guard real.hasPrefix(realRoot.hasSuffix("/") ? realRoot : realRoot + "/") else { return .outsideRoot }
            }
            guard Int(st.st_size) <= maxBytes else { return .tooLarge(Int(st.st_size)) }
            guard let handle = FileHandle(forReadingAtPath: path) else { return .unreadable("permission denied") }
            defer { try? handle.close() }
            let head = (try? handle.read(upToCount: 5)) ?? Data()
            return head == Data("%PDF-".utf8) ? .ok : .notPDF
        }
    }
}

/// Runs blocking work on a global dispatch queue and awaits it, keeping the cooperative pool free.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: work()) }
    }
}
