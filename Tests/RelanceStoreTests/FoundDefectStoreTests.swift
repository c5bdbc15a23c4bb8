import Foundation
import GRDB
import GRDBSQLite
import RelanceCore
import Testing

@testable import RelanceStore

/// Ledger defects; each test failed before its fix.
@Suite struct FoundDefectStoreTests {
    /// GRDB's `DatabasePool` sets `synchronous = NORMAL` on its writer after the configuration's
    /// `prepareDatabase` ran: the ledger's `FULL` was silently overridden, and a commit (a
    /// `sending` mark) could be lost to a power cut. Found with strace: 8 fsyncs for 2,000 sends.
    @Test func theWriterCommitsWithSynchronousFull() async throws {
        let ledger = try temporaryLedger()
        let level = try await ledger.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        #expect(level == 2, "PRAGMA synchronous on the writer: 2 is FULL, 1 NORMAL")
        // The same through the group commit, the path every send takes.
        let grouped = try await ledger.batcher.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        #expect(grouped == 2)
    }

    /// SQLite's default keeps memory statistics, and so locks one process-wide mutex around every
    /// allocation and free; Debian's SQLite has no lookaside memory, so that is every row and every
    /// statement. Contended by the writer and the readers: 6 % of an SMS run's CPU (`perf`:
    /// `pthread_mutex_lock` under `sqlite3Malloc` and `sqlite3_free`). Checked in a fresh process,
    /// where the ledger is the first to open SQLite: with statistics off, nothing is counted.
    @Test func sqliteKeepsNoMemoryStatistics() async {
        await #expect(processExitsWith: .success) {
            let ledger = try temporaryLedger()
            try await ledger.batcher.write { db in
                try db.run(sql: "CREATE TABLE scratch (x TEXT)")
                try db.run(sql: "INSERT INTO scratch VALUES (?)", arguments: [String(repeating: "x", count: 10_000)])
            }
            _ = try await ledger.pool.read { db in try String.fetchAll(db, sql: "SELECT x FROM scratch") }
            guard sqlite3_memory_used() == 0 else { exit(3) }
        }
    }

    /// The expiry look, once a second in the writer, read every waiting delivery through the due
    /// index to find those whose `expires_at` had passed: with a million pending, a third of a core
    /// while idle, and the writer held as long. It now reads only deliveries that can expire.
    @Test func theExpiryLookReadsOnlyDeliveriesThatCanExpire() async throws {
        let ledger = try temporaryLedger()
        let plan = try await ledger.pool.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + Ledger.overdueSQL, arguments: [0]).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("USING INDEX delivery_expiry") }, "\(plan)")
    }

    /// A queue at its share (or a channel waiting for its rate limit) was read row by row and
    /// refused, so its backlog hid the others' work of the same priority. Each (queue, channel)
    /// range is now one index range of its own, found by seeks, never by reading rows.
    @Test func theDueWalkReadsEachQueueAndChannelAsOneIndexRange() async throws {
        let ledger = try temporaryLedger()
        func plan(_ sql: String, _ arguments: StatementArguments) async throws -> [String] {
            try await ledger.pool.read { db in try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String } }
        }
        let range = try await plan(Ledger.dueRangeSQL, [0, 2, "bulk", "sms", 0])
        #expect(
            range.contains { $0.contains("USING INDEX delivery_due (status=? AND priority=? AND risk=? AND queue=? AND channel=? AND due_at<?)") }, "\(range)")
        for (sql, arguments, bound) in [
            (Ledger.firstDueRangeSQL, [0, 2] as StatementArguments, "risk=?)"), (Ledger.nextChannelOfQueueSQL, [0, 2, "bulk", "email"], "channel>?)"),
            (Ledger.nextDueQueueSQL, [0, 2, "bulk"], "queue>?)"),
        ] {
            let seek = try await plan(sql, arguments)
            #expect(seek.contains { $0.contains("USING COVERING INDEX delivery_due") && $0.hasSuffix(bound) }, "\(seek)")
        }
    }

    /// Each send changes a delivery's status twice and its attempt's outcome once; indexes keyed
    /// by them (a debtor's deliveries by status, the attempts by outcome) moved entries at every
    /// send, at scattered places, in the one writer that bounds a pass's rate. The queries they
    /// served find their rows through indexes no send changes.
    @Test func aSendMovesNoEntryOfTheDebtorAndDailyCapIndexes() async throws {
        let ledger = try temporaryLedger()
        func plan(_ sql: String, _ arguments: StatementArguments) async throws -> [String] {
            try await ledger.pool.read { db in try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String } }
        }
        let group = try await plan(Ledger.groupCandidatesSQL, ["D", "email", 0, "R", 49])
        #expect(group.contains { $0.contains("USING INDEX delivery_debtor (debtor_id=? AND channel=?)") }, "\(group)")
        let cap = try await plan(Ledger.messageCountSQL, ["sms", 0])
        #expect(cap.contains { $0.contains("USING INDEX attempt_channel_started (channel=? AND started_at>?)") }, "\(cap)")
        let keys = try await ledger.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('delivery', 'attempt') AND sql IS NOT NULL")
                .map { ($0["name"] as String, $0["sql"] as String) }
        }
        for (name, sql) in keys where name != "delivery_due" {
            #expect(!sql.contains("status") || sql.contains("WHERE"), "\(name) is keyed by the status: \(sql)")
            #expect(!sql.contains("outcome"), "\(name) is keyed by the outcome: \(sql)")
        }
    }

    /// Every callback wrote an entry in an index keyed by the provider's message id (a random key:
    /// a page of its own in each commit, per callback) and one keyed by its result, although only
    /// orphans are looked up that way. A known message's earlier callbacks are now found through
    /// its delivery, and the two indexes hold orphans only.
    @Test func callbacksAreIndexedByMessageIDOnlyWhileTheyAreOrphans() async throws {
        let ledger = try temporaryLedger()
        func plan(_ sql: String, _ arguments: StatementArguments) async throws -> [String] {
            try await ledger.pool.read { db in try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String } }
        }
        let owner = try await plan(Ledger.ownerSQL, ["delivered", "twilio", "SM1"])
        #expect(owner.contains { $0.contains("USING INDEX callback_delivery") }, "\(owner)")
        let orphans = try await plan(Ledger.orphansSQL, ["twilio", "SM1"])
        #expect(orphans.contains { $0.contains("USING INDEX callback_orphan ") }, "\(orphans)")
        let purge = try await plan(Ledger.orphanPurgeSQL, [0])
        #expect(purge.contains { $0.contains("USING INDEX callback_orphan_received") }, "\(purge)")
        let indexes = try await ledger.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'callback' AND sql IS NOT NULL")
                .map { ($0["name"] as String, $0["sql"] as String) }
        }
        for (name, sql) in indexes where name != "callback_delivery" {
            #expect(sql.contains("WHERE result = 'orphan'"), "\(name) indexes every callback: \(sql)")
        }
    }

    /// Erasure was detected by `"erased":` inside the record: a record whose `vars` held that key
    /// made a changed re-drop pass for a duplicate instead of a conflict.
    /// A ledger written by a newer Relance (a schema step this build does not know) was opened,
    /// read and written by an older one after a downgrade. It is now refused, read-only or not.
    @Test func aLedgerFromANewerRelanceIsRefused() async throws {
        let ledger = try temporaryLedger()
        #expect(try await ledger.schemaVersion() == Ledger.currentSchemaVersion)
        try await ledger.pool.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
        for readOnly in [false, true] {
            #expect {
                _ = try Ledger(path: ledger.path, readOnly: readOnly)
            } throws: { error in
                "\(error)".contains("was written by a newer Relance") && "\(error)".contains("upgrade Relance")
            }
        }
    }

    @Test func erasureIsTheErasedAtColumnNotAWordInTheRecord() async throws {
        let ledger = try temporaryLedger()
        var first = reminder("E-1")
        first.vars = ["erased": .string("no")]
        _ = try await ledger.ingest([first], sourceFile: "f1", queue: "default", priority: 0, now: t0)
        var changed = reminder("E-1", amount: "99.00")
        changed.vars = ["erased": .string("no")]
        let again = try await ledger.ingest([changed], sourceFile: "f2", queue: "default", priority: 0, now: t0)
        #expect(again.conflicts == ["E-1"], "different content under the same id is a conflict")
    }

    /// A row with a channel this version does not know used to be read as an email.
    @Test func anUnknownChannelInTheLedgerIsAnErrorNotAnEmail() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest([reminder("U-1", expiresAt: t0.addingTimeInterval(10))], sourceFile: "f", queue: "default", priority: 0, now: t0)
        try await DatabaseQueue(path: ledger.path).write { db in try db.execute(sql: "UPDATE delivery SET channel = 'fax'") }
        await #expect(throws: LedgerCorruption.self) { try await ledger.due(now: t0, limit: 10) }
        await #expect(throws: LedgerCorruption.self) { try await ledger.expireOverdue(now: t0.addingTimeInterval(1e9)) }
    }
}
