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

    public func lastProblems(limit: Int) async throws -> [Ledger.Problem] {
        try await translatingErrors {
            var problems: [Ledger.Problem] = []
            for try await (id, channel, status, at, reason) in try await client.query(
                """
                SELECT d.reminder_id, d.channel, d.status, d.updated_at,
                  COALESCE(d.last_error, (SELECT e.reason FROM event e WHERE e.reminder_id = d.reminder_id AND e.channel = d.channel ORDER BY e.id DESC LIMIT 1), '')
                FROM delivery d
                WHERE d.status IN ('failed', 'unknown', 'expired', 'suppressed', 'undelivered', 'bounced')
                   OR (d.status = 'pending' AND d.last_error IS NOT NULL)
                ORDER BY d.updated_at DESC, d.reminder_id LIMIT \(limit)
                """, logger: logger
            ).decode((String, String, String, Double, String).self) {
                problems.append(Ledger.Problem(key: try Self.key(id, channel), status: status, at: Date(timeIntervalSince1970: at), reason: reason))
            }
            return problems
        }
    }

    public func clusterNodes() async throws -> [Ledger.ClusterNode] {
        try await translatingErrors {
            var nodes: [Ledger.ClusterNode] = []
            // The claims are the rows `sending` (a short range of the status index), by holder.
            for try await (id, version, started, seen, claims) in try await client.query(
                """
                SELECT n.id, n.version, n.started_at, n.seen_at, COALESCE(c.claims, 0)
                FROM relance_node n
                LEFT JOIN (SELECT locked_by, COUNT(*) AS claims FROM delivery WHERE status = 'sending' GROUP BY locked_by) c ON c.locked_by = n.id
                ORDER BY n.id COLLATE "C"
                """, logger: logger
            ).decode((String, String, Double, Double, Int).self) {
                nodes.append(
                    .init(id: id, version: version, startedAt: Date(timeIntervalSince1970: started), seenAt: Date(timeIntervalSince1970: seen), claims: claims))
            }
            return nodes
        }
    }
}
