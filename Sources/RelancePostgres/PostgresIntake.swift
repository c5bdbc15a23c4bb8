import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

extension PostgresLedger: IntakeStore {
    /// One spool file's reminders in one transaction, idempotently on their ids, as `Ledger.ingest`.
    /// Two nodes taking in the same id at once: the second insert waits for the first transaction,
    /// then finds the row and counts a duplicate (or a conflict), never a second reminder.
    public func ingest(_ reminders: [EncodedReminder], sourceFile: String, queue: String, priority: Int, now: Date) async throws -> Ledger.IngestResult {
        try await transaction { connection in
            var result = Ledger.IngestResult()
            for encoded in reminders {
                try await insert(connection, encoded, sourceFile: sourceFile, queue: queue, priority: priority, now: now, into: &result)
            }
            return result
        }
    }

    /// One reminder and its deliveries in the open transaction, idempotently on its id (spool
    /// intake, and a committed plan in the same transaction as its run).
    func insert(
        _ connection: PostgresConnection, _ encoded: EncodedReminder, sourceFile: String, queue: String, priority: Int, now: Date,
        into result: inout Ledger.IngestResult
    ) async throws {
        let t = now.timeIntervalSince1970
        let (reminder, record) = (encoded.reminder, encoded.record)
        let (id, debtor) = (reminder.id, reminder.debtor.id)
        let invoices = Set(reminder.invoices.map(\.number)).sorted()
        let channels = reminder.channels.map(\.rawValue)
        let due = max(reminder.notBefore ?? now, Date(timeIntervalSince1970: 0)).timeIntervalSince1970
        let expires = reminder.expiresAt?.timeIntervalSince1970
        let (reason, unscored) = ("ingested from \(sourceFile)", Ledger.unscoredBand)
        // The reminder, its invoices, a delivery per channel and their events: one statement,
        // and nothing but the reminder's absence when its id is there already.
        var isNew = false
        for try await _ in try await connection.query(
            """
            WITH new AS (
              INSERT INTO reminder (id, record, source_file, queue, ingested_at, debtor_id)
              VALUES (\(id), \(record), \(sourceFile), \(queue), \(t), \(debtor)) ON CONFLICT (id) DO NOTHING RETURNING id
            ), invoices AS (
              INSERT INTO reminder_invoice (invoice, reminder_id) SELECT invoice, new.id FROM new, unnest(\(invoices)::text[]) AS invoice
            ), deliveries AS (
              INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, expires_at, updated_at, debtor_id, risk)
              SELECT new.id, channel, 'pending', \(queue), \(priority), \(due), \(expires), \(t), \(debtor),
                     COALESCE((SELECT band FROM debtor_risk WHERE debtor_id = \(debtor)), \(unscored))
              FROM new, unnest(\(channels)::text[]) AS channel
            ), events AS (
              INSERT INTO event (reminder_id, channel, at, from_status, to_status, reason)
              SELECT new.id, c.channel, \(t), NULL, 'pending', \(reason) FROM new, unnest(\(channels)::text[]) WITH ORDINALITY AS c(channel, n) ORDER BY c.n
            )
            SELECT id FROM new
            """, logger: logger)
        {
            isNew = true
        }
        guard isNew else {
            var handled = false
            for try await (stored, erasedAt) in try await connection.query(
                "SELECT record, erased_at FROM reminder WHERE id = \(id)", logger: logger
            ).decode((String, Double?).self) {
                // An erased reminder (retention) is one already handled: never sent again.
                handled = Ledger.sameRecord(stored, record) || erasedAt != nil
            }
            if handled { result.duplicates.append(id) } else { result.conflicts.append(id) }
            return
        }
        result.inserted.append(id)
    }

    public func presence(of reminder: Reminder) async throws -> Ledger.Presence {
        try await translatingErrors {
            var presence = Ledger.Presence.absent
            for try await (stored) in try await client.query("SELECT record FROM reminder WHERE id = \(reminder.id)", logger: logger).decode(String.self) {
                presence = Ledger.sameRecord(stored, reminder.canonicalJSON()) ? .same : .conflict
            }
            return presence
        }
    }

    public func sourceFile(reminderID: String) async throws -> String? {
        try await translatingErrors {
            var file: String?
            for try await (source) in try await client.query("SELECT source_file FROM reminder WHERE id = \(reminderID)", logger: logger).decode(String.self) {
                file = source
            }
            return file
        }
    }

    /// One status move of a delivery, as an event (the ledger's history).
    static func insertEvent(
        _ connection: PostgresConnection, _ key: DeliveryKey, from: DeliveryStatus?, to: DeliveryStatus, reason: String, at now: Date, logger: Logger
    ) async throws {
        let (id, channel, fromStatus, toStatus, t) = (key.reminderID, key.channel.rawValue, from?.rawValue, to.rawValue, now.timeIntervalSince1970)
        try await connection.query(
            "INSERT INTO event (reminder_id, channel, at, from_status, to_status, reason) VALUES (\(id), \(channel), \(t), \(fromStatus), \(toStatus), \(reason))",
            logger: logger)
    }
}
