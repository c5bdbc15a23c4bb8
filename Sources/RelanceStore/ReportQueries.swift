import Foundation
import GRDB
import RelanceCore

extension Ledger {
    // MARK: Reports

    /// Every debtor's snapshot with the reminders sent to it, in debtor id order, one at a time,
    /// in one read transaction (one consistent state of both ledgers).
    public func forEachReportSnapshot(_ body: @escaping @Sendable (DebtorSnapshot, [SentReminder]) throws -> Void) async throws {
        try await pool.read { db in
            try Self.forEachSnapshot(db) { snapshot in
                try body(snapshot, try Self.sentReminders(db, debtor: snapshot.debtor.debtor.id))
            }
        }
    }

    /// The debtor's reminders that reached a transport (an attempt sent, or in doubt), each with
    /// its first such attempt. Erased reminders (retention) are no longer tied to a debtor.
    static func sentReminders(_ db: Database, debtor: String) throws -> [SentReminder] {
        try Row.fetchAll(
            db,
            cachedSQL: """
                SELECT r.id, r.record, MIN(a.started_at) AS sent_at FROM reminder r JOIN attempt a ON a.reminder_id = r.id
                WHERE r.debtor_id = ? AND a.outcome IN ('sent', 'unknown') GROUP BY r.id ORDER BY r.id
                """, arguments: [debtor]
        ).compactMap { row in
            let id: String = row["id"]
            guard let reminder = try? Reminder.stored(row["record"], id: id) else { return nil }
            return SentReminder(
                id: id, stage: reminder.stage, sentAt: Date(timeIntervalSince1970: row["sent_at"]), invoices: reminder.invoices.map(\.number))
        }
    }

    /// Deliveries per channel and status as they stood at `asOf`: each one's status is the last
    /// event recorded at or before it (a delivery whose first event is later did not exist yet).
    /// Counted here while the rows stream by: grouped in SQL, the lookup ran once per use of its
    /// column (three times a delivery), and a materialized table of 2,000,000 rows took 130 MiB.
    public func deliveryCounts(asOf: Date) async throws -> [(channel: String, stage: String, status: String, count: Int)] {
        try await pool.read { db in
            var counts: [String: Int] = [:]
            let rows = try Row.fetchCursor(
                db,
                cachedSQL: """
                    SELECT d.channel, json_extract(r.record, '$.stage'),
                      (SELECT e.to_status FROM event e WHERE e.reminder_id = d.reminder_id AND e.channel = d.channel AND e.at <= ?
                       ORDER BY e.id DESC LIMIT 1)
                    FROM delivery d JOIN reminder r ON r.id = d.reminder_id
                    """, arguments: [asOf.timeIntervalSince1970])
            while let row = try rows.next() {
                guard let status: String = row[2] else { continue }
                let stage: String = row[1] ?? ""
                counts[[row[0] as String, stage, status].joined(separator: "\u{0}"), default: 0] += 1
            }
            return counts.keys.sorted().map { key in
                let parts = key.components(separatedBy: "\u{0}")
                return (channel: parts[0], stage: parts[1], status: parts[2], count: counts[key] ?? 0)
            }
        }
    }
}
