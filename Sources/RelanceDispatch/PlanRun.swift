import Foundation
import RelanceConfig
import RelanceCore
import RelanceStore

/// One committed plan run, as `relance plan --commit` and the daemon's `plan.schedule` do it: the
/// planner and each reminder's validation run per debtor inside the ledger's write transaction.
public enum PlanRun {
    public static func commit(ledger: any LedgerStore, components: Components, instant: Date, date: CivilDate, now: Date) async throws
        -> PlanCommitResult
    {
        let rules = try await rules(components.configuration, ledger: ledger)
        let validator = components.parser.validator
        // Not sent after the next contact could come: a reminder that waited that long is stale.
        let expiresAt = instant.addingTimeInterval(Double(max(rules.minGap, 1)) * 86_400)
        return try await ledger.commitPlan(asOf: instant, date: date, now: now) { snapshot, previous in
            PlanRecords.commit(snapshot, previousRun: previous, rules: rules, date: date, expiresAt: expiresAt, validator: validator)
        }
    }

    /// The configured rules, with the risk score's courtesy step when a model is fitted and the
    /// configuration has a `pre_due` stage (its templates) to send it with.
    public static func rules(_ configuration: RelanceConfiguration, ledger: any LedgerStore) async throws -> PlanRules {
        var rules = configuration.plan.rules
        if configuration.stages.contains("pre_due"), let model = try await ledger.latestScoreModel()?.model {
            rules.riskCourtesy = RiskCourtesy(model: model, threshold: configuration.score.preDueThreshold)
        }
        return rules
    }
}
