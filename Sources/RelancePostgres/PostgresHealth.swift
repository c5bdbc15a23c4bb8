import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

extension PostgresLedger: HealthStore {
    /// A write that shows the database takes them, and this node's heartbeat (`relance_node`).
    public func writeProblem(now: Date) async -> String? {
        do {
            let (id, t) = (node, now.timeIntervalSince1970)
            let version = "schema \(PostgresSchema.current)"
            _ = try await translatingErrors {
                try await client.query(
                    """
                    INSERT INTO relance_node (id, version, started_at, seen_at) VALUES (\(id), \(version), \(t), \(t))
                    ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at, version = EXCLUDED.version
                    """, logger: logger)
            }
            return nil
        } catch {
            return "the ledger is not writable: \(error)"
        }
    }

    public func statusCounts() async throws -> [(channel: String, status: String, count: Int)] {
        try await translatingErrors {
            var counts: [(channel: String, status: String, count: Int)] = []
            for try await (channel, status, count) in try await client.query(
                "SELECT channel, status, COUNT(*) FROM delivery GROUP BY channel, status ORDER BY channel, status", logger: logger
            ).decode((String, String, Int).self) {
                counts.append((channel: channel, status: status, count: count))
            }
            return counts
        }
    }

    public func deliveries(reminderID: String?, status: DeliveryStatus?) async throws -> [DeliverySummary] {
        // NULL parameters match everything: one statement for the four filters.
        let (id, wanted) = (reminderID, status?.rawValue)
        return try await translatingErrors {
            var result: [DeliverySummary] = []
            for try await (reminder, channel, current, attempts, dueAt, lastError) in try await client.query(
                """
                SELECT reminder_id, channel, status, attempts, due_at, last_error FROM delivery
                WHERE (\(id)::text IS NULL OR reminder_id = \(id)) AND (\(wanted)::text IS NULL OR status = \(wanted))
                ORDER BY reminder_id, channel
                """, logger: logger
            ).decode((String, String, String, Int, Double, String?).self) {
                result.append(
                    DeliverySummary(
                        reminderID: reminder, channel: channel, status: current, attempts: attempts, dueAt: Date(timeIntervalSince1970: dueAt), lastError: lastError
                    ))
            }
            return result
        }
    }
}
