import Foundation
import Logging
import RelanceCore
import RelanceStore
import RelanceTransport

extension Intake {
    /// Cancellation files in `spool/cancel/` (same drop protocol as `incoming/`): each record is
    /// applied in the ledger, then the file moves to `done/` (or is deleted), or to `failed/` with
    /// `NAME.error.json` for its bad lines (its good lines are applied all the same). Applying a
    /// cancellation twice (a crash before the move) has the same effect as once.
    public func cancellationPass() async -> Int {
        let layout = self.layout
        let names: [String] = await offPool {
            ((try? FileManager.default.contentsOfDirectory(atPath: layout.cancel)) ?? [])
                .filter { !$0.hasPrefix(".") && ($0.hasSuffix(".json") || $0.hasSuffix(".jsonl")) }.sorted()
        }
        var applied = 0
        for name in names {
            let path = layout.cancel + "/" + name
            let maxBytes = configuration.spool.maxFileBytes
            let parsed: (requests: [(Int, CancellationRequest)], errors: [LineError]) = await offPool {
                Self.parseCancellations(path: path, maxBytes: maxBytes)
            }
            let metadata: Logger.Metadata = ["relance.spool.file": "cancel/\(name)"]
            do {
                for (_, request) in parsed.requests {
                    let result = try await ledger.cancel(request, source: "spool:cancel/\(name)", now: clock())
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
                        if keepDone { try FileIO.rename(path, layout.done + "/" + SpoolLayout.freeName(name, in: layout.done)) } else { unlink(path) }
                        return nil
                    }
                    let final = SpoolLayout.freeName(name, in: layout.failed)
                    let report = ErrorReport(file: name, queue: "cancel", failedAt: now, ingested: 0, errors: errors)
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    try FileIO.writeDurably(try encoder.encode(report), to: layout.failed + "/" + final + ".error.json")
                    try FileIO.rename(path, layout.failed + "/" + final)
                    return nil
                } catch { return "\(error)" }
            }
            for error in errors.prefix(20) {
                logger.warning(
                    "invalid cancellation record quarantined",
                    metadata: metadata.merging([
                        "relance.spool.line": "\(error.line)", "relance.spool.field": "\(error.field)", "relance.spool.reason": "\(error.reason)",
                    ]) {
                        a, _ in a
                    })
            }
            if let problem { logger.error("cannot move cancellation file out of cancel/", metadata: metadata.merging(["error": "\(problem)"]) { a, _ in a }) }
        }
        return applied
    }

    /// Blocking: reads and validates one cancellation file.
    static func parseCancellations(path: String, maxBytes: Int) -> (requests: [(Int, CancellationRequest)], errors: [LineError]) {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            return ([], [LineError(line: 0, id: nil, field: "", reason: "not a regular file")])
        }
        guard Int(st.st_size) <= maxBytes else { return ([], [LineError(line: 0, id: nil, field: "", reason: "file is over spool.max_file_bytes")]) }
        guard let data = FileManager.default.contents(atPath: path) else { return ([], [LineError(line: 0, id: nil, field: "", reason: "cannot be read")]) }
        var requests: [(Int, CancellationRequest)] = []
        var errors: [LineError] = []
        let bytes = [UInt8](data)
        let lines: [Data] =
            path.hasSuffix(".jsonl") ? bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { Data($0) } : [data]
        for (index, raw) in lines.enumerated() {
            var line = raw
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            switch CancellationRequest.validate(line) {
            case .success(let request): requests.append((index + 1, request))
            case .failure(let issues):
                for issue in issues.issues { errors.append(LineError(line: index + 1, id: nil, field: issue.field, reason: issue.reason)) }
            }
        }
        if requests.isEmpty && errors.isEmpty { errors.append(LineError(line: 0, id: nil, field: "", reason: "file holds no record")) }
        return (requests, errors)
    }
}
