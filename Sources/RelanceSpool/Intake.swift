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
    public var ledger: any LedgerStore
    public var logger: Logger
    public var clock: @Sendable () -> Date

    public init(
        layout: SpoolLayout, settings: @escaping @Sendable () -> IntakeSettings, ledger: any LedgerStore, logger: Logger, clock: @escaping @Sendable () -> Date
    ) {
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
        /// Receivables records that changed the ledger.
        public var receivables = 0
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
        // Receivables next: a payment stops the waiting reminders of what it settles.
        result.receivables = await receivablesPass()
        // A file still in active/ is one whose ingest failed (ledger not writable): try it again.
        let layout = self.layout
        for (queue, name) in await offPool({ layout.activeFiles() }) {
            if shouldStop() { break }
            await ingest(activePath: layout.active + "/" + queue + "/" + name, queue: queue, name: name, into: &result)
        }
        // Waiting files are claimed and parsed a few ahead of the one being committed, so that
        // parsing (one core each) overlaps with the ledger's transaction; they are committed in order.
        let waiting = await offPool({ layout.waitingFiles() })
        await withTaskGroup(of: (Int, Claimed?).self) { group in
            var next = 0
            var done: [Int: Claimed?] = [:]
            // Files started and not committed yet, and the size of the last one parsed: big files
            // are parsed fewer at a time, so that the reminders held in memory stay bounded.
            var inFlight = 0
            var lastRecords = 0
            func startNext() {
                guard next < waiting.count, !shouldStop(), inFlight < Self.parseAhead,
                    inFlight == 0 || (inFlight + 1) * lastRecords <= Self.recordsAhead
                else { return }
                let (index, (queue, name)) = (next, waiting[next])
                next += 1
                inFlight += 1
                group.addTask { (index, await self.claimAndParse(queue: queue, name: name)) }
            }
            for _ in 0..<Self.parseAhead { startNext() }
            var committed = 0
            while committed < next, let (index, claimed) = await group.next() {
                done[index] = claimed
                if let claimed { lastRecords = claimed.encoded.count }
                var records = 0
                while let ready = done.removeValue(forKey: committed) {
                    committed += 1
                    inFlight -= 1
                    if let ready {
                        records += ready.encoded.count
                        await commit(ready, into: &result)
                    }
                    startNext()
                }
                // Files parsed on several threads leave free memory in as many malloc arenas: after
                // a big file it goes back to the system, so a large backlog keeps a small footprint.
                if records >= Self.trimAfter { MemoryTrim.run() }
            }
        }
        return result
    }

    /// How many spool files are claimed and parsed ahead of the one being committed.
    static let parseAhead = 3
    /// At most about this many reminders parsed ahead (two files of 5,000, three of 1,000).
    static let recordsAhead = 10_000
    /// Committed records after which free memory is handed back (`malloc_trim`).
    static let trimAfter = 2000

    /// A file moved into `active/` and parsed.
    struct Claimed: Sendable {
        var activePath: String
        var queue: String
        var name: String
        var settings: IntakeSettings
        var parsed: ParsedSpoolFile
        /// The parsed reminders with their canonical records, encoded with the parse.
        var encoded: [EncodedReminder]
    }

    /// Moves a waiting file into `active/` (nil when another process took it first) and parses it.
    func claimAndParse(queue: String, name: String) async -> Claimed? {
        let source = layout.incoming(queue: queue) + "/" + name
        let activeDir = layout.active + "/" + queue
        let target = activeDir + "/" + name
        let claimed: Bool = await offPool {
            try? FileManager.default.createDirectory(atPath: activeDir, withIntermediateDirectories: true)
            guard !FileManager.default.fileExists(atPath: target) else { return false }
            return Glibc.rename(source, target) == 0
        }
        guard claimed else { return nil }
        return await parse(activePath: target, queue: queue, name: name)
    }

    func parse(activePath: String, queue: String, name: String) async -> Claimed {
        let settings = self.settings()
        let parser = settings.parser
        let (parsed, encoded) = await offPool {
            let parsed = parser.parse(path: activePath)
            return (parsed, parsed.reminders.map { EncodedReminder($0.reminder) })
        }
        return Claimed(activePath: activePath, queue: queue, name: name, settings: settings, parsed: parsed, encoded: encoded)
    }

    func ingest(activePath: String, queue: String, name: String, into result: inout PassResult) async {
        await commit(await parse(activePath: activePath, queue: queue, name: name), into: &result)
    }

    /// Records a parsed file's reminders in the ledger (one transaction), then moves the file to
    /// `done/` (or deletes it), or quarantines it with its errors.
    func commit(_ claimed: Claimed, into result: inout PassResult) async {
        let (activePath, queue, name, parsed) = (claimed.activePath, claimed.queue, claimed.name, claimed.parsed)
        result.files += 1
        let configuration = claimed.settings.configuration
        var errors = parsed.errors
        let metadata: Logger.Metadata = ["relance.spool.file": "\(name)", "relance.spool.queue": "\(queue)"]
        if !parsed.reminders.isEmpty {
            do {
                let outcome = try await ledger.ingest(
                    claimed.encoded, sourceFile: name, queue: queue, priority: configuration.queue(queue).priority, now: clock())
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
                    if keepDone {
                        try FileIO.rename(activePath, layout.done + "/" + SpoolLayout.freeName(name, in: layout.done))
                    } else {
                        try FileIO.unlink(activePath)
                    }
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
