import Foundation
import GRDB
import RelanceCore

/// Retention (GDPR art. 5(1)(e), art. 17): erasing personal data from the ledger while ids,
/// statuses and timestamps stay for statistics.
extension Ledger {
    /// What an erasure touched.
    public struct Erasure: Sendable, Equatable {
        public var reminders: [String] = []
        /// Outbox files written for them (Maildir messages), to delete.
        public var outboxFiles: [String] = []
        public init() {}
    }

    /// Reminders whose personal data is past retention: not erased yet, nothing left to send or
    /// decide (no pending, paused, sending or unknown delivery), and no activity since `cutoff`.
    public func retentionCandidates(before cutoff: Date, limit: Int) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT r.id FROM reminder r
                    WHERE r.erased_at IS NULL AND r.ingested_at < :cutoff
                      AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.reminder_id = r.id
                                      AND (d.status IN ('pending', 'paused', 'sending', 'unknown') OR d.updated_at >= :cutoff))
                      AND NOT EXISTS (SELECT 1 FROM callback c WHERE c.reminder_id = r.id AND c.received_at >= :cutoff)
                    LIMIT :limit
                    """, arguments: ["cutoff": cutoff.timeIntervalSince1970, "limit": limit])
        }
    }

    /// The reminders of one debtor, erased or not.
    public func reminderIDs(debtorID: String) async throws -> [String] {
        try await pool.read { db in try String.fetchAll(db, sql: "SELECT id FROM reminder WHERE debtor_id = ?", arguments: [debtorID]) }
    }

    /// Erases the personal data of these reminders in one transaction: the record keeps only its
    /// id and stage; names, addresses and numbers leave attempts, events, errors and callbacks.
    /// Ids, statuses, timestamps and counts stay. Idempotent.
    public func erase(reminderIDs: [String], reason: String, now: Date) async throws -> Erasure {
        try await pool.write { db in
            var erasure = Erasure()
            for id in reminderIDs {
                guard let row = try Row.fetchOne(db, sql: "SELECT record, erased_at FROM reminder WHERE id = ?", arguments: [id]) else { continue }
                if (row["erased_at"] as Double?) != nil { continue }
                var secrets: Set<String> = []
                if let reminder = try? Reminder.fromCanonicalJSON(row["record"]) {
                    // The address as written and as the ledger keeps it (lower-cased).
                    let values = [reminder.debtor.name, reminder.debtor.email, reminder.debtor.email?.lowercased(), reminder.debtor.phone]
                    secrets = Set(values.compactMap { $0 }.filter { $0.count >= 3 })
                    let stub = try JSONSerialization.data(withJSONObject: ["id": id, "stage": reminder.stage, "erased": reason], options: [.sortedKeys])
                    try db.execute(
                        sql: "UPDATE reminder SET record = ?, debtor_id = '', erased_at = ? WHERE id = ?",
                        arguments: [String(decoding: stub, as: UTF8.self), now.timeIntervalSince1970, id])
                } else {
                    try db.execute(sql: "UPDATE reminder SET debtor_id = '', erased_at = ? WHERE id = ?", arguments: [now.timeIntervalSince1970, id])
                }
                erasure.outboxFiles += try String.fetchAll(
                    db, sql: "SELECT substr(detail, 12) FROM attempt WHERE reminder_id = ? AND detail LIKE 'written to %'", arguments: [id])
                try db.execute(sql: "UPDATE attempt SET recipient = '' WHERE reminder_id = ?", arguments: [id])
                try db.execute(sql: "UPDATE delivery SET debtor_id = '' WHERE reminder_id = ?", arguments: [id])
                for secret in secrets {
                    for (table, column) in [("attempt", "detail"), ("event", "reason"), ("delivery", "last_error")] {
                        try db.execute(
                            sql: "UPDATE \(table) SET \(column) = replace(\(column), ?, '[erased]') WHERE reminder_id = ? AND instr(\(column), ?) > 0",
                            arguments: [secret, id, secret])
                    }
                }
                try db.execute(sql: "UPDATE callback SET raw = '{}' WHERE reminder_id = ?", arguments: [id])
                try db.execute(sql: "UPDATE bounce SET address = '', diagnostic = NULL WHERE reminder_id = ?", arguments: [id])
                for row in try Row.fetchAll(db, sql: "SELECT channel, status FROM delivery WHERE reminder_id = ?", arguments: [id]) {
                    let status = try row.deliveryStatus()
                    try Self.insertEvent(
                        db, DeliveryKey(reminderID: id, channel: try row.channel()), from: status, to: status,
                        reason: "personal data erased (\(reason))", at: now)
                }
                erasure.reminders.append(id)
            }
            return erasure
        }
    }

    /// Erases the contact details of a receivables debtor (`relance forget`): name, email and phone.
    /// Its invoices and payments stay: they are the creditor's accounting record, which the law
    /// keeps for longer, and hold no contact detail. The plan then finds no channel to reach it
    /// (`no_contact`). Its risk band goes too. False when the receivables ledger does not know the debtor.
    public func eraseReceivablesDebtor(_ id: String, now: Date) async throws -> Bool {
        try await pool.write { db in
            // The risk band is a score, personal data: gone with the rest (a later refit gives the
            // debtor one again only while it has open items, as `relance score` would show).
            try db.execute(sql: "DELETE FROM debtor_risk WHERE debtor_id = ?", arguments: [id])
            try db.execute(sql: "UPDATE delivery SET risk = \(Self.unscoredBand) WHERE debtor_id = ? AND risk != \(Self.unscoredBand)", arguments: [id])
            try db.execute(
                sql: "UPDATE rec_debtor SET name = '[erased]', email = NULL, phone = NULL, updated_at = ? WHERE id = ?",
                arguments: [now.timeIntervalSince1970, id])
            guard db.changesCount == 1 else { return false }
            try Self.event(db, debtor: id, subject: id, kind: "erased", detail: "contact details erased (forget)", source: "forget", at: now.timeIntervalSince1970)
            return true
        }
    }

    /// Counts that survive erasure: reminders erased, and deliveries by status.
    public func erasedCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reminder WHERE erased_at IS NOT NULL") ?? 0 }
    }
}
