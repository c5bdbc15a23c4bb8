import Foundation
import PostgresNIO

extension PostgresLedger {
    /// The tables whose planner statistics the send path depends on.
    static let busyTables = ["reminder", "delivery", "attempt", "event", "reminder_invoice"]

    /// Keeps PostgreSQL's planner statistics of the busy tables fresh: at most every 5 seconds,
    /// `ANALYZE` of each one changed by more than 500 rows and a fifth of its size since it was
    /// last analyzed. Autovacuum does the same, but after a minute at best: until then a fresh
    /// database after a large intake has no statistics, and the planner, taking the tables for
    /// small ones, reads every attempt to find one debtor's contacts (measured: 90 deliveries/s
    /// instead of thousands). Called by the dispatcher's housekeeping; a failure is only logged.
    func refreshStatistics(now: Date) async {
        let due = analyzedAt.withLock { last in
            guard abs(now.timeIntervalSince1970 - last) >= 5 else { return false }
            last = now.timeIntervalSince1970
            return true
        }
        guard due else { return }
        do {
            try await translatingErrors {
                var stale: [String] = []
                let tables = Self.busyTables
                for try await (name) in try await client.query(
                    """
                    SELECT relname::text FROM pg_stat_user_tables
                    WHERE schemaname = current_schema() AND relname = ANY(\(tables)) AND n_mod_since_analyze > 500 + n_live_tup / 5
                    """, logger: logger
                ).decode(String.self) {
                    // Only names of the fixed list go into the statement.
                    if let known = tables.first(where: { $0 == name }) { stale.append(known) }
                }
                for table in stale {
                    try await client.query(PostgresQuery(unsafeSQL: "ANALYZE \(table)"), logger: logger)
                }
                if !stale.isEmpty { logger.debug("planner statistics refreshed", metadata: ["relance.tables": "\(stale.joined(separator: ","))"]) }
            }
        } catch {
            logger.warning("cannot refresh the planner's statistics", metadata: ["error": "\(error)"])
        }
    }
}
