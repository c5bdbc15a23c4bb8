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
            var start = 0
            while start < reminders.count {
                let batch = Array(reminders[start..<min(reminders.count, start + Self.ingestBatch)])
                try await insertBatch(connection, batch, sourceFile: sourceFile, queue: queue, priority: priority, now: now, into: &result)
                start += batch.count
            }
            return result
        }
    }

    /// Reminders per statement of an intake.
    static let ingestBatch = 500

    /// Reminders in one statement (`SendPath.IngestBatch`): the new ones, their invoices, their
    /// deliveries and events, in id order (two nodes taking in the same ids lock them in the same
    /// order, never each waiting for the other); then those already there are told apart,
    /// duplicates or conflicts, as one by one. A batch that names an id twice goes one by one.
    func insertBatch(
        _ connection: PostgresConnection, _ batch: [EncodedReminder], sourceFile: String, queue: String, priority: Int, now: Date,
        into result: inout Ledger.IngestResult
    ) async throws {
        let ids = batch.map(\.reminder.id)
        guard Set(ids).count == ids.count else {
            for encoded in batch { try await insert(connection, encoded, sourceFile: sourceFile, queue: queue, priority: priority, now: now, into: &result) }
            return
        }
        var (invoiceOwners, invoices, channelOwners, channels) = ([String](), [String](), [String](), [String]())
        for encoded in batch {
            for invoice in Set(encoded.reminder.invoices.map(\.number)).sorted() {
                invoiceOwners.append(encoded.reminder.id)
                invoices.append(invoice)
            }
            for channel in encoded.reminder.channels {
                channelOwners.append(encoded.reminder.id)
                channels.append(channel.rawValue)
            }
        }
        var binds = PostgresBindings(capacity: 15)
        binds.append(ids)
        binds.append(batch.map(\.record))
        binds.append(batch.map(\.reminder.debtor.id))
        binds.append(batch.map { max($0.reminder.notBefore ?? now, Date(timeIntervalSince1970: 0)).timeIntervalSince1970 })
        // No expiry: the end of time, made NULL again in the statement (arrays of nullable doubles do not bind).
        binds.append(batch.map { $0.reminder.expiresAt?.timeIntervalSince1970 ?? .infinity })
        binds.append(sourceFile)
        binds.append(queue)
        binds.append(now.timeIntervalSince1970)
        binds.append(invoiceOwners)
        binds.append(invoices)
        binds.append(channelOwners)
        binds.append(channels)
        binds.append(priority)
        binds.append(Ledger.unscoredBand)
        binds.append("ingested from \(sourceFile)")
        var inserted: Set<String> = []
        for try await row in try await connection.execute(SendPath.IngestBatch(bindings: binds), logger: logger) {
            inserted.insert(try row.decode(String.self))
        }
        let existing = ids.filter { !inserted.contains($0) }
        var stored: [String: (record: String, erased: Bool)] = [:]
        if !existing.isEmpty {
            for try await (id, record, erasedAt) in try await connection.query(
                "SELECT id, record, erased_at FROM reminder WHERE id = ANY(\(existing))", logger: logger
            ).decode((String, String, Double?).self) {
                stored[id] = (record, erasedAt != nil)
            }
        }
        for encoded in batch {
            let id = encoded.reminder.id
            if inserted.contains(id) {
                result.inserted.append(id)
            } else if let known = stored[id], known.erased || Ledger.sameRecord(known.record, encoded.record) {
                // An erased reminder (retention) is one already handled: never sent again.
                result.duplicates.append(id)
            } else {
                result.conflicts.append(id)
            }
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
        var binds = PostgresBindings(capacity: 13)
        binds.append(id)
        binds.append(record)
        binds.append(sourceFile)
        binds.append(queue)
        binds.append(t)
        binds.append(debtor)
        binds.append(invoices)
        binds.append(channels)
        binds.append(priority)
        binds.append(due)
        binds.append(expires)
        binds.append(unscored)
        binds.append(reason)
        for try await _ in try await connection.execute(SendPath.Ingest(bindings: binds), logger: logger) {
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
