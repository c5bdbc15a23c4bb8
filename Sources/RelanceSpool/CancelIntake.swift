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
        let names = await droppedFiles(in: layout.cancel)
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
            await finishDropped(path: path, name: name, kind: "cancel", errors: parsed.errors, ingested: 0, metadata: metadata)
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
        let read = readDropped(path: path, maxBytes: maxBytes) { number, bytes in
            switch CancellationRequest.validate(bytes) {
            case .success(let request): result.requests.append((number, request))
            case .failure(let issues):
                for issue in issues.issues { result.errors.append(LineError(line: number, id: nil, field: issue.field, reason: issue.reason)) }
            }
        }
        switch read {
        case .read(let identity): result.identity = identity
        case .unreadable(let error):
            result.errors = [error]
            return result
        }
        if result.requests.isEmpty && result.errors.isEmpty { result.errors.append(LineError(line: 0, id: nil, field: "", reason: "file holds no record")) }
        return result
    }
}
