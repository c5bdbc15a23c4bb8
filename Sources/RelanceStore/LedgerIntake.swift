import Foundation
import GRDB
import RelanceCore

extension Ledger {
    // MARK: Intake

    /// What one ingest did.
    public struct IngestResult: Sendable, Equatable {
        public var inserted: [String] = []
        public var duplicates: [String] = []
        /// Ids already in the ledger with different content: never overwritten.
        public var conflicts: [String] = []
        public init() {}
    }

    /// Inserts the reminders of one spool file in one transaction, idempotently on reminder id.
    public func ingest(
        _ reminders: [EncodedReminder], sourceFile: String, queue: String, priority: Int, now: Date
    ) async throws -> IngestResult {
        try await pool.write { db in
            var result = IngestResult()
            let banded = try Self.anyRiskBand(db)
            for encoded in reminders {
                try Self.insert(db, encoded, sourceFile: sourceFile, queue: queue, priority: priority, now: now, banded: banded, into: &result)
            }
            return result
        }
    }

    /// Whether any debtor has a risk band: when none has (no model fitted, the usual case of a
    /// spool-only user), a new delivery takes the default band without looking its debtor up.
    static func anyRiskBand(_ db: Database) throws -> Bool {
        try Bool.fetchOne(db, cachedSQL: "SELECT EXISTS (SELECT 1 FROM debtor_risk)") ?? false
    }

    /// Inserts one reminder and its deliveries in the open transaction, idempotently on its id
    /// (spool intake, and a committed plan in the same transaction as its run).
    static func insert(
        _ db: Database, _ encoded: EncodedReminder, sourceFile: String, queue: String, priority: Int, now: Date, banded: Bool, into result: inout IngestResult
    ) throws {
        let (reminder, record) = (encoded.reminder, encoded.record)
        // Inserted unless the id is known (one statement for the usual case, a new reminder).
        try db.runDirect(
            sql: "INSERT INTO reminder (id, record, source_file, queue, ingested_at, debtor_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [.text(reminder.id), .text(record), .text(sourceFile), .text(queue), .real(now.timeIntervalSince1970), .text(reminder.debtor.id)])
        if db.changesCount == 0 {
            let existing = try Row.fetchOne(db, cachedSQL: "SELECT record, erased_at FROM reminder WHERE id = ?", arguments: [reminder.id])
            // An erased reminder (retention) is one already handled: never sent again.
            if let existing, Self.sameRecord(existing["record"], record) || (existing["erased_at"] as Double?) != nil {
                result.duplicates.append(reminder.id)
            } else {
                result.conflicts.append(reminder.id)
            }
            return
        }
        // Each number once (one invoice, the usual case, needs no set).
        let numbers = reminder.invoices.count == 1 ? [reminder.invoices[0].number] : Array(Set(reminder.invoices.map(\.number)))
        for invoice in numbers {
            try db.runDirect(sql: "INSERT INTO reminder_invoice (invoice, reminder_id) VALUES (?, ?)", [.text(invoice), .text(reminder.id)])
        }
        for channel in reminder.channels {
            let due = max(reminder.notBefore ?? now, Date(timeIntervalSince1970: 0))
            var values: [DirectValue] = [
                .text(reminder.id), .text(channel.rawValue), .text(queue), .integer(priority), .real(due.timeIntervalSince1970),
                .real(reminder.expiresAt?.timeIntervalSince1970), .real(now.timeIntervalSince1970), .text(reminder.debtor.id),
            ]
            if banded {
                values.append(.text(reminder.debtor.id))
                try db.runDirect(
                    sql: """
                        INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, expires_at, updated_at, debtor_id, risk)
                        VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, COALESCE((SELECT band FROM debtor_risk WHERE debtor_id = ?), 2))
                        """, values)
            } else {
                try db.runDirect(
                    sql: """
                        INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, expires_at, updated_at, debtor_id)
                        VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)
                        """, values)
            }
            try Self.insertEvent(
                db, DeliveryKey(reminderID: reminder.id, channel: channel), from: nil, to: .pending, reason: "ingested from \(sourceFile)", at: now)
        }
        result.inserted.append(reminder.id)
    }

    /// Whether the ledger already holds `reminder` (same content), a different one under its id, or nothing.
    public enum Presence: Sendable { case absent, same, conflict }

    public func presence(of reminder: Reminder) async throws -> Presence {
        try await pool.read { db in
            guard let existing = try String.fetchOne(db, cachedSQL: "SELECT record FROM reminder WHERE id = ?", arguments: [reminder.id]) else {
                return .absent
            }
            return Self.sameRecord(existing, reminder.canonicalJSON()) ? .same : .conflict
        }
    }

    /// Whether a stored record and a canonical one hold the same reminder: the same text, or the
    /// same once the stored one is rewritten in today's canonical form (an earlier version wrote
    /// its keys and escapes another way).
    public static func sameRecord(_ stored: String, _ canonical: String) -> Bool {
        stored == canonical || (try? Reminder.fromCanonicalJSON(stored).canonicalJSON()) == canonical
    }
}
