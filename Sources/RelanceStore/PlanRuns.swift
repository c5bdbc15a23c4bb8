import Foundation
import GRDB
import RelanceCore

public struct PlanCommitResult: Sendable {
    public var runID: Int64 = 0
    public var created: [String] = []
    /// Reminders the ledger already held (a second run at the same date).
    public var existing: [String] = []
    public var handoffs = 0
    public var held = 0
    public var rejected: [(id: String, reason: String)] = []
    public init() {}
}

public enum PlanCommitError: Error, CustomStringConvertible {
    case beforeLastRun(CivilDate)

    public var description: String {
        switch self {
        case .beforeLastRun(let last): "a plan as of a day before the last committed run (\(last)) cannot be committed"
        }
    }
}

extension Ledger {
    /// Commits a run as of `date`, all or nothing: each debtor's snapshot is read and planned
    /// (`plan`, pure) inside the write transaction, so no payment can be committed between the
    /// plan and its reminders. Refused when `date` is before the last committed run.
    public func commitPlan(
        asOf: Date, date: CivilDate, now: Date, _ plan: @escaping @Sendable (DebtorSnapshot, _ previousRun: CivilDate?) throws -> DebtorPlanCommit
    ) async throws -> PlanCommitResult {
        try await pool.write { db in
            let last = try String.fetchOne(db, sql: "SELECT as_of_date FROM plan_run ORDER BY as_of_date DESC LIMIT 1").flatMap(CivilDate.init)
            if let last, date < last { throw PlanCommitError.beforeLastRun(last) }
            try db.run(
                sql: "INSERT INTO plan_run (as_of, as_of_date, committed_at, reminders, held) VALUES (?, ?, ?, 0, 0)",
                arguments: [asOf.timeIntervalSince1970, date.description, now.timeIntervalSince1970])
            var result = PlanCommitResult()
            result.runID = db.lastInsertedRowID
            let banded = try Self.anyRiskBand(db)
            let ids = try String.fetchAll(db, sql: "SELECT id FROM rec_debtor ORDER BY id")
            for id in ids {
                guard let snapshot = try Self.snapshot(db, debtor: id) else { continue }
                let part = try plan(snapshot, last)
                var ingest = IngestResult()
                for reminder in part.reminders {
                    try Self.insert(db, reminder, sourceFile: "plan", queue: "plan", priority: 0, now: now, banded: banded, into: &ingest)
                }
                for step in part.steps {
                    try db.run(
                        sql: """
                            INSERT INTO plan_step (debtor_id, invoice, instalment, stage, on_date, reminder_id, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)
                            ON CONFLICT (invoice, instalment, stage) DO UPDATE SET on_date = excluded.on_date, reminder_id = excluded.reminder_id,
                              run_id = excluded.run_id WHERE plan_step.reminder_id != excluded.reminder_id
                            """,
                        arguments: [id, step.item.invoice, step.item.instalment ?? 0, step.stage, date.description, step.reminderID, result.runID])
                    if db.changesCount == 1 {
                        try Self.event(
                            db, debtor: id, subject: step.item.description, kind: "step", detail: "\(step.stage) (\(step.reminderID))", source: "plan",
                            at: now.timeIntervalSince1970)
                    }
                }
                result.created += ingest.inserted
                result.existing += ingest.duplicates + ingest.conflicts
                result.handoffs += part.handoffs
                result.held += part.held
                result.rejected += part.rejected
            }
            try db.run(
                sql: "UPDATE plan_run SET reminders = ?, held = ? WHERE id = ?", arguments: [result.created.count, result.held, result.runID])
            return result
        }
    }

    /// Why an item's reminders stop after an import (settled, disputed, promised, held), or nil:
    /// shared by every backend.
    public static func chaseStop(_ item: ItemID, byItem: [ItemID: ItemStanding], movements: [ReceivableMovement], on date: CivilDate)
        -> CancellationRequest.Reason?
    {
        guard let standing = byItem[item] else { return nil }
        if standing.settled != nil { return .paid }
        if Planner.activeDispute(movements, invoice: item.invoice, on: date) != nil { return .disputed }
        if Planner.activePromise(movements, invoice: item.invoice, on: date) != nil { return .promiseToPay }
        if Planner.activeHold(movements, invoice: item.invoice, on: date) != nil { return .other }
        return nil
    }

    /// After an import: the waiting reminders of items that were settled, disputed, put on hold or
    /// promised stop, in the import's transaction (a send checks cancellations in the transaction
    /// that marks it, so none goes out after this commits).
    /// - A waiting planned reminder with such an item is cancelled; its items still open give back
    ///   the step (the next run plans them again), its settled items keep it. One already under
    ///   way or sent gets the event, so that its receipt shows what came after.
    /// - A spool reminder is cancelled once every item of an invoice it names is settled.
    static func stopChases(_ db: Database, debtor: String, on date: CivilDate, now: Date) throws {
        guard let snapshot = try snapshot(db, debtor: debtor) else { return }
        let standing = DebtorStanding.compute(invoices: snapshot.invoices, movements: snapshot.movements, on: date)
        let byItem = Dictionary(standing.items.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        func stop(_ item: ItemID) -> CancellationRequest.Reason? { Self.chaseStop(item, byItem: byItem, movements: snapshot.movements, on: date) }
        // Every planned reminder of the debtor with such an item: a waiting one is cancelled, one
        // already under way or sent gets the event (its receipt shows the payment came after).
        // Once per reminder and reason (the cancellation's origin).
        let planned = try String.fetchAll(
            db, cachedSQL: "SELECT DISTINCT s.reminder_id FROM plan_step s JOIN reminder r ON r.id = s.reminder_id WHERE s.debtor_id = ?",
            arguments: [debtor])
        for reminderID in planned {
            let items = try Row.fetchAll(
                db, cachedSQL: "SELECT invoice, instalment, stage FROM plan_step WHERE reminder_id = ?", arguments: [reminderID]
            ).map { (ItemID(invoice: $0["invoice"], instalment: ($0["instalment"] as Int) == 0 ? nil : $0["instalment"]), $0["stage"] as String) }
            guard let reason = items.lazy.compactMap({ stop($0.0) }).first else { continue }
            let result = try applyCancellation(
                db, CancellationRequest(scope: .reminder, value: reminderID, reason: reason, note: "receivables: an item changed before the reminder went out"),
                source: "receivables", origin: "receivables:\(reminderID):\(reason.rawValue)", now: now)
            guard result.cancelled > 0 else { continue }
            // Cancelled before it went out: its items still open take the step again at the next run.
            for (item, stage) in items where byItem[item]?.settled == nil {
                try db.run(
                    sql: "DELETE FROM plan_step WHERE invoice = ? AND instalment = ? AND stage = ?", arguments: [item.invoice, item.instalment ?? 0, stage])
            }
        }
        // Spool reminders name invoices: an invoice with nothing left stops them.
        let settledInvoices = Set(standing.items.map(\.id.invoice)).filter { number in
            standing.items.allSatisfy { $0.id.invoice != number || $0.settled != nil }
        }
        for number in settledInvoices.sorted() {
            let waitingSpool =
                try Bool.fetchOne(
                    db,
                    cachedSQL: """
                        SELECT EXISTS (SELECT 1 FROM reminder_invoice ri JOIN delivery d ON d.reminder_id = ri.reminder_id
                        WHERE ri.invoice = ? AND d.status IN ('pending', 'paused'))
                        """, arguments: [number]) ?? false
            guard waitingSpool else { continue }
            _ = try applyCancellation(
                db, CancellationRequest(scope: .invoice, value: number, reason: .paid, note: "settled in the receivables ledger"), source: "receivables",
                origin: "receivables-settled:\(number)", now: now)
        }
    }
}
