import Foundation
import RelanceCore

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
    /// Receivables records (JSON lines, DESIGN.md "Receivables and the dunning plan").
    public var receivables: String { root + "/receivables" }

    public static let defaultQueue = "default"

    /// Creates the tree (group-writable for producers, nothing for others).
    public func create() throws {
        for dir in [tmp, incoming, active, done, failed, cancel, receivables] {
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
