import Foundation
import Logging
import RelanceCore

/// What `cancel/` and `receivables/` share: files of records dropped with the spool's protocol,
/// read whole (they are small), each record with its line, then moved to `done/` or quarantined.
extension Intake {
    /// The record files waiting in `directory` (`.json`: one record; `.jsonl`: one a line), by name.
    func droppedFiles(in directory: String) async -> [String] {
        await offPool {
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { !$0.hasPrefix(".") && ($0.hasSuffix(".json") || $0.hasSuffix(".jsonl")) }.sorted()
        }
    }

    /// Blocking: calls `record` with each record of a dropped file and its line number; returns
    /// the file's identity (device, inode, modification time, which a re-dropped file does not
    /// share), or why it cannot be read at all.
    enum DroppedRead {
        case read(identity: String)
        case unreadable(LineError)
    }

    static func readDropped(path: String, maxBytes: Int, _ record: (Int, UnsafeRawBufferPointer) -> Void) -> DroppedRead {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            return .unreadable(LineError(line: 0, id: nil, field: "", reason: "not a regular file"))
        }
        guard Int(st.st_size) <= maxBytes else { return .unreadable(LineError(line: 0, id: nil, field: "", reason: "file is over spool.max_file_bytes")) }
        guard let data = FileManager.default.contents(atPath: path) else {
            return .unreadable(LineError(line: 0, id: nil, field: "", reason: "cannot be read"))
        }
        data.withUnsafeBytes { raw in
            // A .json file is one record however it is laid out.
            let lines = path.hasSuffix(".jsonl") ? SpoolFileParser.lines(of: raw) : SpoolFileParser.lines(of: raw).isEmpty ? [] : [(1, 0..<raw.count)]
            for (number, range) in lines { record(number, UnsafeRawBufferPointer(rebasing: raw[range])) }
        }
        return .read(identity: "\(st.st_dev):\(st.st_ino):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)")
    }

    /// Moves a dropped file whose records were applied to `done/` (or deletes it), or quarantines
    /// it in `failed/` with `NAME.error.json` when some of its lines were bad; logs the bad lines.
    func finishDropped(path: String, name: String, kind: String, errors: [LineError], ingested: Int, metadata: Logger.Metadata) async {
        let (layout, keepDone, now) = (self.layout, settings().configuration.spool.keepDone, Timestamp.format(clock()))
        let problem: String? = await offPool {
            do {
                if errors.isEmpty {
                    if keepDone {
                        try FileIO.rename(path, layout.done + "/" + SpoolLayout.freeName(name, in: layout.done))
                    } else {
                        try FileIO.unlink(path)
                    }
                    return nil
                }
                try ErrorReport(file: name, queue: kind, failedAt: now, ingested: ingested, errors: errors).quarantine(path, as: name, in: layout)
                return nil
            } catch { return "\(error)" }
        }
        for error in errors.prefix(20) {
            logger.warning(
                "invalid \(kind) record quarantined",
                metadata: metadata.merging([
                    "relance.spool.line": "\(error.line)", "relance.spool.field": "\(error.field)", "relance.spool.reason": "\(error.reason)",
                ]) { a, _ in a })
        }
        if let problem { logger.error("cannot move \(kind) file out of \(kind)/", metadata: metadata.merging(["error": "\(problem)"]) { a, _ in a }) }
    }
}
