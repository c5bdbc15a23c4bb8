import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

/// Retention and the right to erasure on PostgreSQL, as `Ledger`'s (Retention.swift): personal
/// data leaves the records, attempts, events, errors, callbacks and bounces; ids, statuses,
/// timestamps and counts stay.
extension PostgresLedger: RetentionStore {
    public func retentionCandidates(before cutoff: Date, limit: Int) async throws -> [String] {
        let t = cutoff.timeIntervalSince1970
        return try await translatingErrors {
            var ids: [String] = []
            for try await (id) in try await client.query(
                """
                SELECT r.id FROM reminder r
                WHERE r.erased_at IS NULL AND r.ingested_at < \(t)
                  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.reminder_id = r.id
                                  AND (d.status IN ('pending', 'paused', 'sending', 'unknown') OR d.updated_at >= \(t)))
                  AND NOT EXISTS (SELECT 1 FROM callback c WHERE c.reminder_id = r.id AND c.received_at >= \(t))
                ORDER BY r.id LIMIT \(limit)
                """, logger: logger
            ).decode(String.self) {
                ids.append(id)
            }
            return ids
        }
    }

    public func reminderIDs(debtorID: String) async throws -> [String] {
        try await translatingErrors {
            var ids: [String] = []
            for try await (id) in try await client.query("SELECT id FROM reminder WHERE debtor_id = \(debtorID) ORDER BY id", logger: logger).decode(String.self) {
                ids.append(id)
            }
            return ids
        }
    }

    public func erase(reminderIDs: [String], reason: String, now: Date) async throws -> Ledger.Erasure {
        let t = now.timeIntervalSince1970
        return try await transaction { connection in
            var erasure = Ledger.Erasure()
            for id in reminderIDs {
                var stored: String?
                for try await (record, erasedAt) in try await connection.query(
                    "SELECT record, erased_at FROM reminder WHERE id = \(id) FOR UPDATE", logger: logger
                ).decode((String, Double?).self) where erasedAt == nil {
                    stored = record
                }
                guard let stored else { continue }
                var secrets: Set<String> = []
                if let reminder = try? Reminder.fromCanonicalJSON(stored) {
                    // The address as written and as the ledger keeps it (lower-cased).
                    let values = [reminder.debtor.name, reminder.debtor.email, reminder.debtor.email?.lowercased(), reminder.debtor.phone]
                    secrets = Set(values.compactMap { $0 }.filter { $0.count >= 3 })
                    let stub = JSONText.object(["id": id, "stage": reminder.stage, "erased": reason])
                    try await connection.query("UPDATE reminder SET record = \(stub), debtor_id = '', erased_at = \(t) WHERE id = \(id)", logger: logger)
                } else {
                    try await connection.query("UPDATE reminder SET debtor_id = '', erased_at = \(t) WHERE id = \(id)", logger: logger)
                }
                for try await (file) in try await connection.query(
                    "SELECT substr(detail, 12) FROM attempt WHERE reminder_id = \(id) AND detail LIKE 'written to %' ORDER BY number", logger: logger
                ).decode(String.self) {
                    erasure.outboxFiles.append(file)
                }
                try await connection.query("UPDATE attempt SET recipient = '' WHERE reminder_id = \(id)", logger: logger)
                try await connection.query("UPDATE delivery SET debtor_id = '' WHERE reminder_id = \(id)", logger: logger)
                for secret in secrets.sorted() {
                    try await connection.query(
                        "UPDATE attempt SET detail = replace(detail, \(secret), '[erased]') WHERE reminder_id = \(id) AND strpos(detail, \(secret)) > 0",
                        logger: logger)
                    try await connection.query(
                        "UPDATE event SET reason = replace(reason, \(secret), '[erased]') WHERE reminder_id = \(id) AND strpos(reason, \(secret)) > 0",
                        logger: logger)
                    try await connection.query(
                        "UPDATE delivery SET last_error = replace(last_error, \(secret), '[erased]') WHERE reminder_id = \(id) AND strpos(last_error, \(secret)) > 0",
                        logger: logger)
                }
                try await connection.query("UPDATE callback SET raw = '{}' WHERE reminder_id = \(id)", logger: logger)
                try await connection.query("UPDATE bounce SET address = '', diagnostic = NULL WHERE reminder_id = \(id)", logger: logger)
                var deliveries: [(DeliveryKey, DeliveryStatus)] = []
                for try await (channel, status) in try await connection.query(
                    "SELECT channel, status FROM delivery WHERE reminder_id = \(id) ORDER BY channel", logger: logger
                ).decode((String, String).self) {
                    deliveries.append((try Self.key(id, channel), try Self.deliveryStatus(status, of: id)))
                }
                for (key, status) in deliveries {
                    try await Self.insertEvent(connection, key, from: status, to: status, reason: "personal data erased (\(reason))", at: now, logger: logger)
                }
                erasure.reminders.append(id)
            }
            return erasure
        }
    }

    /// Erases a receivables debtor's contact details and its risk band (`relance forget`).
    public func eraseReceivablesDebtor(_ id: String, now: Date) async throws -> Bool {
        let (t, unscored) = (now.timeIntervalSince1970, Ledger.unscoredBand)
        return try await transaction { connection in
            try await connection.query("DELETE FROM debtor_risk WHERE debtor_id = \(id)", logger: logger)
            try await connection.query("UPDATE delivery SET risk = \(unscored) WHERE debtor_id = \(id) AND risk != \(unscored)", logger: logger)
            var erased = false
            for try await _ in try await connection.query(
                "UPDATE rec_debtor SET name = '[erased]', email = NULL, phone = NULL, updated_at = \(t) WHERE id = \(id) RETURNING 1", logger: logger)
            {
                erased = true
            }
            guard erased else { return false }
            try await connection.query(
                """
                INSERT INTO rec_event (debtor_id, subject, kind, detail, source, at)
                VALUES (\(id), \(id), 'erased', 'contact details erased (forget)', 'forget', \(t))
                """, logger: logger)
            return true
        }
    }
}
