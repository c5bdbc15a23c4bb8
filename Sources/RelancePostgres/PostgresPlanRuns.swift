import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

extension PostgresLedger {
    /// Commits a plan run as of `date`, all or nothing, as `Ledger.commitPlan`: each debtor is read
    /// and planned inside the transaction, under an advisory lock, so two nodes never commit a run
    /// at once and no payment lands between a debtor's plan and its reminders.
    public func commitPlan(
        asOf: Date, date: CivilDate, now: Date, _ plan: @escaping @Sendable (DebtorSnapshot, _ previousRun: CivilDate?) throws -> DebtorPlanCommit
    ) async throws -> PlanCommitResult {
        let (t, day, at) = (now.timeIntervalSince1970, date.description, asOf.timeIntervalSince1970)
        return try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.planLockKey))", logger: logger)
            var last: CivilDate?
            for try await (text) in try await connection.query("SELECT as_of_date FROM plan_run ORDER BY as_of_date DESC LIMIT 1", logger: logger).decode(
                String.self)
            {
                last = CivilDate(text)
            }
            if let last, date < last { throw PlanCommitError.beforeLastRun(last) }
            var result = PlanCommitResult()
            for try await (id) in try await connection.query(
                "INSERT INTO plan_run (as_of, as_of_date, committed_at, reminders, held) VALUES (\(at), \(day), \(t), 0, 0) RETURNING id", logger: logger
            ).decode(Int64.self) {
                result.runID = id
            }
            var ids: [String] = []
            for try await (id) in try await connection.query("SELECT id FROM rec_debtor ORDER BY id", logger: logger).decode(String.self) { ids.append(id) }
            for id in ids {
                guard let snapshot = try await snapshot(connection, debtor: id) else { continue }
                let part = try plan(snapshot, last)
                var ingest = Ledger.IngestResult()
                for reminder in part.reminders {
                    try await insert(connection, reminder, sourceFile: "plan", queue: "plan", priority: 0, now: now, into: &ingest)
                }
                for step in part.steps {
                    let (invoice, instalment, stage, reminderID, runID) = (step.item.invoice, step.item.instalment ?? 0, step.stage, step.reminderID, result.runID)
                    var changed = false
                    for try await _ in try await connection.query(
                        """
                        INSERT INTO plan_step (debtor_id, invoice, instalment, stage, on_date, reminder_id, run_id)
                        VALUES (\(id), \(invoice), \(instalment), \(stage), \(day), \(reminderID), \(runID))
                        ON CONFLICT (invoice, instalment, stage) DO UPDATE SET on_date = EXCLUDED.on_date, reminder_id = EXCLUDED.reminder_id,
                          run_id = EXCLUDED.run_id WHERE plan_step.reminder_id != EXCLUDED.reminder_id
                        RETURNING 1
                        """, logger: logger)
                    {
                        changed = true
                    }
                    if changed {
                        try await Self.event(
                            connection, debtor: id, subject: step.item.description, kind: "step", detail: "\(stage) (\(reminderID))", source: "plan", at: t,
                            logger: logger)
                    }
                }
                result.created += ingest.inserted
                result.existing += ingest.duplicates + ingest.conflicts
                result.handoffs += part.handoffs
                result.held += part.held
                result.rejected += part.rejected
            }
            let (created, held, runID) = (result.created.count, result.held, result.runID)
            try await connection.query("UPDATE plan_run SET reminders = \(created), held = \(held) WHERE id = \(runID)", logger: logger)
            return result
        }
    }

    /// Key of the advisory lock of a plan commit ("relplan").
    static let planLockKey: Int64 = 0x7265_6C70_6C61_6E
}
