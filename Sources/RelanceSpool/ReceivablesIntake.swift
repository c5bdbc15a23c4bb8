import Foundation
import Logging
import RelanceConfig
import RelanceCore
import RelanceStore

extension Intake {
    /// Receivables files in `spool/receivables/` (JSON lines, same drop protocol as `incoming/`):
    /// each file is imported in one transaction, which also stops the waiting reminders of what it
    /// settles, disputes, holds or promises; then the file moves to `done/` (or is deleted), or to
    /// `failed/` with `NAME.error.json` for its bad lines (its good lines are imported all the
    /// same). Importing a file again changes nothing, so one that cannot be moved away is harmless.
    /// Returns the records that changed the ledger.
    public func receivablesPass() async -> Int {
        let layout = self.layout
        let names = await droppedFiles(in: layout.receivables)
        guard !names.isEmpty else { return 0 }
        let current = settings()
        let configuration = current.configuration
        let validator = ReceivableValidator(rules: current.parser.validator.rules)
        let defaults = ReceivablesImport.Defaults(
            country: configuration.defaults.country, locale: configuration.defaults.locale, timezone: configuration.defaults.timezone,
            terms: configuration.receivables.defaultTerms)
        var applied = 0
        for name in names {
            let path = layout.receivables + "/" + name
            let maxBytes = configuration.spool.maxFileBytes
            let parsed = await offPool { Self.parseReceivables(path: path, maxBytes: maxBytes, validator: validator) }
            let metadata: Logger.Metadata = ["relance.spool.file": "receivables/\(name)"]
            var errors = parsed.errors
            do {
                let result = try await ledger.importReceivables(parsed.lines, source: "spool:receivables/\(name)", defaults: defaults, now: clock())
                errors += result.rejected.map { LineError(line: $0.line, id: nil, field: $0.issue.field, reason: $0.issue.reason) }
                applied += result.applied
                logger.notice(
                    "receivables imported",
                    metadata: metadata.merging([
                        "relance.applied": "\(result.applied)", "relance.unchanged": "\(result.unchanged)", "relance.rejected": "\(errors.count)",
                    ]) { a, _ in a })
            } catch {
                logger.error(
                    "cannot import receivables file; it stays in receivables/ for a retry", metadata: metadata.merging(["error": "\(error)"]) { a, _ in a })
                continue
            }
            await finishDropped(
                path: path, name: name, kind: "receivables", errors: errors.sorted { $0.line < $1.line }, ingested: parsed.lines.count, metadata: metadata)
        }
        return applied
    }

    struct ParsedReceivables: Sendable {
        var lines: [ReceivablesImport.Line] = []
        var errors: [LineError] = []
    }

    /// Blocking: reads and validates one receivables file.
    static func parseReceivables(path: String, maxBytes: Int, validator: ReceivableValidator) -> ParsedReceivables {
        var result = ParsedReceivables()
        let read = readDropped(path: path, maxBytes: maxBytes) { number, bytes in
            switch validator.validate(bytes) {
            case .success(let record): result.lines.append(ReceivablesImport.Line(line: number, record: record))
            case .failure(let issues):
                for issue in issues.issues { result.errors.append(LineError(line: number, id: nil, field: issue.field, reason: issue.reason)) }
            }
        }
        if case .unreadable(let error) = read {
            result.errors = [error]
            return result
        }
        if result.lines.isEmpty && result.errors.isEmpty { result.errors.append(LineError(line: 0, id: nil, field: "", reason: "file holds no record")) }
        return result
    }
}
