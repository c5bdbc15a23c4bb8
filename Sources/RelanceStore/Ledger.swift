import Foundation
import GRDB
import RelanceCore
import Synchronization

/// The ledger: reminders, deliveries (the queue), attempts (receipts) and status events, in SQLite.
///
/// Writes that sit on the send path (marking `sending`, recording outcomes) go through a group
/// commit: concurrent callers share one transaction and one fsync. SQLite calls run on GRDB's own
/// dispatch queues, never on the cooperative thread pool.
public final class Ledger: Sendable {
    public let path: String
    let pool: DatabasePool
    let batcher: GroupCommit
    /// When expired replay ids and orphan callbacks were last purged (seconds since 1970).
    let purgedAt = Mutex<Double>(-.infinity)

    /// Opens (creating if needed) the ledger at `path` and migrates it.
    public init(path: String, readOnly: Bool = false) throws {
        _ = SQLiteProcess.applied
        self.path = path
        var config = Configuration()
        config.readonly = readOnly
        config.busyMode = .timeout(10)
        config.label = "relance.ledger"
        config.prepareDatabase { db in
            // Savepoint and statement journals, sorts and groupings stay in memory: the group
            // commit's savepoints spilled their journals to files in /var/tmp (about 8 writes a send).
            try db.run(sql: "PRAGMA temp_store = MEMORY")
            if !db.configuration.readonly {
                // Checkpoints every 8,192 WAL pages (32 MiB) rather than SQLite's 1,000: the same hot
                // pages (the queue's indexes) are copied back once per checkpoint, and a checkpoint
                // runs inside the commit that triggers it, on the one writer.
                try db.run(sql: "PRAGMA wal_autocheckpoint = 8192")
            }
            // Erased personal data (retention, forget) is overwritten where that costs no extra I/O.
            try db.run(sql: "PRAGMA secure_delete = FAST")
        }
        if !readOnly {
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        }
        self.pool = try DatabasePool(path: path, configuration: config)
        if !readOnly {
            // Durable commits: a `sending` mark lost to a power cut could mean a resend. Set here,
            // not in `prepareDatabase`: the pool sets `synchronous = NORMAL` on its writer after it.
            try pool.barrierWriteWithoutTransaction { db in try db.run(sql: "PRAGMA synchronous = FULL") }
        }
        self.batcher = GroupCommit(pool: pool)
        // A ledger a newer Relance wrote has steps this one does not know: never use it (a
        // downgrade would read and write columns with meanings it ignores).
        if try pool.read({ db in try Self.migrator.hasBeenSuperseded(db) }) {
            throw LedgerCorruption(
                description: "the ledger at \(path) was written by a newer Relance (its schema has steps this one does not know): upgrade Relance")
        }
        if !readOnly { try Self.migrator.migrate(pool) }
    }

    /// The last step of the schema applied to this ledger (`v14-risk-order`…).
    public func schemaVersion() async throws -> String {
        try await pool.read { db in try Self.migrator.appliedMigrations(db).last ?? "none" }
    }

    /// The last step of the schema this build knows.
    public static var currentSchemaVersion: String { migrator.migrations.last ?? "none" }

    // MARK: Status machine

    static func move(_ db: Database, _ key: DeliveryKey, from: DeliveryStatus, to: DeliveryStatus, reason: String, at now: Date) throws {
        guard from.canMove(to: to) else { throw StatusTransitionError(from: from, to: to) }
        try db.runDirect(
            sql: "UPDATE delivery SET status = ?, updated_at = ?, poll_at = NULL WHERE reminder_id = ? AND channel = ? AND status = ?",
            [.text(to.rawValue), .real(now.timeIntervalSince1970), .text(key.reminderID), .text(key.channel.rawValue), .text(from.rawValue)])
        guard db.changesCount == 1 else { throw StatusTransitionError(from: from, to: to) }
        try insertEvent(db, key, from: from, to: to, reason: reason, at: now)
    }

    static func insertEvent(_ db: Database, _ key: DeliveryKey, from: DeliveryStatus?, to: DeliveryStatus, reason: String, at now: Date) throws {
        try db.runDirect(
            sql: "INSERT INTO event (reminder_id, channel, at, from_status, to_status, reason) VALUES (?, ?, ?, ?, ?, ?)",
            [.text(key.reminderID), .text(key.channel.rawValue), .real(now.timeIntervalSince1970), .text(from?.rawValue), .text(to.rawValue), .text(reason)])
    }
}

extension Ledger {
    /// The SQLite library the ledger runs on, for `relance --version`.
    public static var sqliteVersion: String {
        _ = SQLiteProcess.applied
        return (try? DatabaseQueue().read { db in try String.fetchOne(db, sql: "SELECT sqlite_version()") }) ?? "unknown"
    }
}
