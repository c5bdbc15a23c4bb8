import Foundation
import Logging
import Metrics
import RelanceConfig
import RelanceCore
import RelanceStore

/// What intake takes from the configuration, swapped whole by a reload: the record rules
/// (stages, attachments, sizes) and the spool settings.
public struct IntakeSettings: Sendable {
    public var parser: SpoolFileParser
    public var configuration: RelanceConfiguration
    public init(parser: SpoolFileParser, configuration: RelanceConfiguration) {
        self.parser = parser
        self.configuration = configuration
    }
}

/// Takes spool files in: claim by rename into `active/`, validate, ingest in one transaction, then
/// move to `done/` (or delete) or quarantine to `failed/` with `NAME.error.json`. Directory scans,
/// reads and moves run off the cooperative pool.
public struct Intake: Sendable {
    public var layout: SpoolLayout
    public var settings: @Sendable () -> IntakeSettings
    public var ledger: Ledger
    public var logger: Logger
    public var clock: @Sendable () -> Date

    public init(layout: SpoolLayout, settings: @escaping @Sendable () -> IntakeSettings, ledger: Ledger, logger: Logger, clock: @escaping @Sendable () -> Date) {
        self.layout = layout
        self.settings = settings
        self.ledger = ledger
        self.logger = logger
        self.clock = clock
    }

    /// What one pass did.
    public struct PassResult: Sendable {
        public var files = 0
        public var inserted = 0
        public var quarantined = 0
        public var cancellations = 0
    }

    /// Re-ingests files a crash left in `active/` (idempotent), then takes every waiting file.
    public func recover() async -> PassResult {
        var result = PassResult()
        let layout = self.layout
        for (queue, name) in await offPool({ layout.activeFiles() }) {
            logger.notice("re-ingesting spool file left in active/ by a previous run", metadata: ["relance.spool.file": "\(queue)/\(name)"])
            await ingest(activePath: layout.active + "/" + queue + "/" + name, queue: queue, name: name, into: &result)
        }
        return result
    }

    public func pass(shouldStop: @Sendable () -> Bool = { false }) async -> PassResult {
        var result = PassResult()
        // Cancellations first: a cancel dropped with (or before) its reminders wins.
        result.cancellations = await cancellationPass()
        // A file still in active/ is one whose ingest failed (ledger not writable): try it again.
        let layout = self.layout
        for (queue, name) in await offPool({ layout.activeFiles() }) {
            if shouldStop() { break }
            await ingest(activePath: layout.active + "/" + queue + "/" + name, queue: queue, name: name, into: &result)
        }
        for (queue, name) in await offPool({ layout.waitingFiles() }) {
            if shouldStop() { break }
            let source = layout.incoming(queue: queue) + "/" + name
            let activeDir = layout.active + "/" + queue
            let target = activeDir + "/" + name
            let claimed: Bool = await offPool {
                try? FileManager.default.createDirectory(atPath: activeDir, withIntermediateDirectories: true)
                guard !FileManager.default.fileExists(atPath: target) else { return false }
                return Glibc.rename(source, target) == 0
            }
            guard claimed else { continue }
            await ingest(activePath: target, queue: queue, name: name, into: &result)
        }
        return result
    }

    func ingest(activePath: String, queue: String, name: String, into result: inout PassResult) async {
        result.files += 1
        let settings = self.settings()
        let configuration = settings.configuration
        let parser = settings.parser
        let parsed = await offPool { parser.parse(path: activePath) }
        var errors = parsed.errors
        let metadata: Logger.Metadata = ["relance.spool.file": "\(name)", "relance.spool.queue": "\(queue)"]
        if !parsed.reminders.isEmpty {
            do {
                let outcome = try await ledger.ingest(
                    parsed.reminders.map(\.reminder), sourceFile: name, queue: queue, priority: configuration.queue(queue).priority, now: clock())
                result.inserted += outcome.inserted.count
                for id in outcome.conflicts {
                    let line = parsed.reminders.first(where: { $0.reminder.id == id })?.line ?? 0
                    errors.append(
                        LineError(
                            line: line, id: id, field: "id",
                            reason: "conflict: reminder \(id) was already ingested with different content; the ledger keeps the first version"))
                }
                if !outcome.inserted.isEmpty || !outcome.duplicates.isEmpty {
                    logger.info(
                        "ingested spool file",
                        metadata: metadata.merging([
                            "relance.spool.new": "\(outcome.inserted.count)", "relance.spool.duplicates": "\(outcome.duplicates.count)",
                        ]) { a, _ in a })
                }
            } catch {
                // The ledger refused the transaction (disk full, I/O error): leave the file in
                // active/, it is taken again at the next start or pass.
                logger.error("cannot ingest spool file, left in active/ for a retry", metadata: metadata.merging(["error": "\(error)"]) { a, _ in a })
                return
            }
        }
        errors.sort { ($0.line, $0.field) < ($1.line, $1.field) }
        let layout = self.layout
        let keepDone = configuration.spool.keepDone
        let now = clock()
        if errors.isEmpty {
            let moved: String? = await offPool {
                do {
                    if keepDone { try FileIO.rename(activePath, layout.done + "/" + SpoolLayout.freeName(name, in: layout.done)) } else { try FileIO.unlink(activePath) }
                    return nil
                } catch { return "\(error)" }
            }
            if let moved { logger.error("cannot move ingested spool file out of active/", metadata: metadata.merging(["error": "\(moved)"]) { a, _ in a }) }
        } else {
            result.quarantined += 1
            Counter(label: "relance_quarantined_files_total", dimensions: [("queue", queue)]).increment()
            let report = ErrorReport(
                file: name, queue: queue, failedAt: Timestamp.format(now),
                ingested: parsed.reminders.count - errors.filter { $0.field == "id" && $0.reason.hasPrefix("conflict") }.count,
                errors: errors)
            let failure: String? = await offPool {
                do {
                    try report.quarantine(activePath, as: name, in: layout)
                    return nil
                } catch { return "\(error)" }
            }
            for error in errors.prefix(20) {
                logger.warning(
                    "invalid spool record quarantined",
                    metadata: metadata.merging([
                        "relance.spool.line": "\(error.line)", "relance.spool.field": "\(error.field)", "relance.spool.reason": "\(error.reason)",
                    ]) { a, _ in a })
            }
            if let failure { logger.error("cannot quarantine spool file", metadata: metadata.merging(["error": "\(failure)"]) { a, _ in a }) }
        }
    }
}
