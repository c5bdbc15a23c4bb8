import Foundation
import Logging
import RelanceConfig
import RelanceCore
import RelanceStore

extension Intake {
    /// Cancellation files in `spool/cancel/` (same drop protocol as `incoming/`): each record is
    /// applied in the ledger, then the file moves to `done/` (or is deleted), or to `failed/` with
    /// `NAME.error.json` for its bad lines (its good lines are applied all the same). Each record
    /// is applied once: a file that cannot be moved away is seen again at every pass, and its
    /// records, known by the file's identity and line, change nothing the second time.
    public func cancellationPass() async -> Int {
        let layout = self.layout
        let names: [String] = await offPool {
            ((try? FileManager.default.contentsOfDirectory(atPath: layout.cancel)) ?? [])
                .filter { !$0.hasPrefix(".") && ($0.hasSuffix(".json") || $0.hasSuffix(".jsonl")) }.sorted()
        }
        var applied = 0
        let configuration = settings().configuration
        for name in names {
            let path = layout.cancel + "/" + name
            let maxBytes = configuration.spool.maxFileBytes
            let parsed = await offPool { Self.parseCancellations(path: path, maxBytes: maxBytes) }
            let metadata: Logger.Metadata = ["relance.spool.file": "cancel/\(name)"]
            do {
                for (line, request) in parsed.requests {
                    let origin = parsed.identity.map { "cancel/\(name)@\($0)#\(line)" }
                    let result = try await ledger.cancel(request, source: "spool:cancel/\(name)", origin: origin, now: clock())
                    guard !result.alreadyApplied else { continue }
                    applied += 1
                    logger.notice(
                        "cancellation applied",
                        metadata: metadata.merging([
                            "relance.cancel": "\(request.summary)", "relance.cancelled": "\(result.cancelled)", "relance.paused": "\(result.paused)",
                        ]) { a, _ in a })
                }
            } catch {
                logger.error("cannot apply cancellation file; it stays in cancel/ for a retry", metadata: metadata.merging(["error": "\(error)"]) { a, _ in a })
                continue
            }
            let keepDone = configuration.spool.keepDone
            let errors = parsed.errors
            let now = Timestamp.format(clock())
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
                    try ErrorReport(file: name, queue: "cancel", failedAt: now, ingested: 0, errors: errors).quarantine(path, as: name, in: layout)
                    return nil
                } catch { return "\(error)" }
            }
            for error in errors.prefix(20) {
                logger.warning(
                    "invalid cancellation record quarantined",
                    metadata: metadata.merging([
                        "relance.spool.line": "\(error.line)", "relance.spool.field": "\(error.field)", "relance.spool.reason": "\(error.reason)",
                    ]) { a, _ in a })
            }
            if let problem { logger.error("cannot move cancellation file out of cancel/", metadata: metadata.merging(["error": "\(problem)"]) { a, _ in a }) }
        }
        return applied
    }

    /// A parsed cancellation file: its records by line, its bad lines, and the identity of the
    /// file itself (device, inode, modification time), which a re-dropped file does not share.
    struct ParsedCancellations: Sendable {
        var requests: [(line: Int, request: CancellationRequest)] = []
        var errors: [LineError] = []
        var identity: String?
    }

    /// Blocking: reads and validates one cancellation file.
    static func parseCancellations(path: String, maxBytes: Int) -> ParsedCancellations {
        var result = ParsedCancellations()
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            result.errors = [LineError(line: 0, id: nil, field: "", reason: "not a regular file")]
            return result
        }
        guard Int(st.st_size) <= maxBytes else {
            result.errors = [LineError(line: 0, id: nil, field: "", reason: "file is over spool.max_file_bytes")]
            return result
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            result.errors = [LineError(line: 0, id: nil, field: "", reason: "cannot be read")]
            return result
        }
        result.identity = "\(st.st_dev):\(st.st_ino):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        data.withUnsafeBytes { raw in
            // A .json file is one line however it is laid out.
            let lines = path.hasSuffix(".jsonl") ? SpoolFileParser.lines(of: raw) : SpoolFileParser.lines(of: raw).isEmpty ? [] : [(1, 0..<raw.count)]
            for (number, range) in lines {
                switch CancellationRequest.validate(UnsafeRawBufferPointer(rebasing: raw[range])) {
                case .success(let request): result.requests.append((number, request))
                case .failure(let issues):
                    for issue in issues.issues { result.errors.append(LineError(line: number, id: nil, field: issue.field, reason: issue.reason)) }
                }
            }
        }
        if result.requests.isEmpty && result.errors.isEmpty { result.errors.append(LineError(line: 0, id: nil, field: "", reason: "file holds no record")) }
        return result
    }
}
