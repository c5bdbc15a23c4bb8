import Foundation
import RelanceCore
import RelanceStore

/// One committed plan run, as `relance plan --commit` and the daemon's `plan.schedule` do it: the
/// planner and each reminder's validation run per debtor inside the ledger's write transaction.
public enum PlanRun {
    public static func commit(ledger: any LedgerStore, components: Components, instant: Date, date: CivilDate, now: Date) async throws
        -> PlanCommitResult
    {
        let rules = components.configuration.plan.rules
        let validator = components.parser.validator
        // Not sent after the next contact could come: a reminder that waited that long is stale.
        let expiresAt = instant.addingTimeInterval(Double(max(rules.minGap, 1)) * 86_400)
        return try await ledger.commitPlan(asOf: instant, date: date, now: now) { snapshot, previous in
            PlanRecords.commit(snapshot, previousRun: previous, rules: rules, date: date, expiresAt: expiresAt, validator: validator)
        }
    }
}
