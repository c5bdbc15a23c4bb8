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
        var isNew = false
        for try await _ in try await connection.query(
            """
            INSERT INTO reminder (id, record, source_file, queue, ingested_at, debtor_id)
            VALUES (\(id), \(record), \(sourceFile), \(queue), \(t), \(debtor)) ON CONFLICT (id) DO NOTHING RETURNING id
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
        for invoice in Set(reminder.invoices.map(\.number)).sorted() {
            try await connection.query("INSERT INTO reminder_invoice (invoice, reminder_id) VALUES (\(invoice), \(id))", logger: logger)
        }
        for channel in reminder.channels {
            let due = max(reminder.notBefore ?? now, Date(timeIntervalSince1970: 0)).timeIntervalSince1970
            let expires = reminder.expiresAt?.timeIntervalSince1970
            let name = channel.rawValue
            try await connection.query(
                """
                INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, expires_at, updated_at, debtor_id, risk)
                VALUES (\(id), \(name), 'pending', \(queue), \(priority), \(due), \(expires), \(t), \(debtor),
                        COALESCE((SELECT band FROM debtor_risk WHERE debtor_id = \(debtor)), \(Ledger.unscoredBand)))
                """, logger: logger)
            try await Self.insertEvent(
                connection, DeliveryKey(reminderID: id, channel: channel), from: nil, to: .pending, reason: "ingested from \(sourceFile)", at: now, logger: logger)
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
