/// One step of an escalation ladder: due `at` days after the item's due date (negative: a
/// courtesy before it), sent on `channels`, or a hand-off to litigation that sends nothing.
public struct LadderStep: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        case send
        case handoff
    }

    public var stage: String
    public var at: Int
    public var channels: [Channel]
    public var action: Action

    public init(stage: String, at: Int, channels: [Channel] = [], action: Action = .send) {
        self.stage = stage
        self.at = at
        self.channels = channels
        self.action = action
    }
}

/// The steps an open item climbs, in order of `at`.
public struct Ladder: Sendable, Hashable {
    public var name: String
    public var steps: [LadderStep]

    public init(name: String, steps: [LadderStep]) {
        self.name = name
        self.steps = steps
    }

    /// Why these steps do not make a ladder, or nil.
    public static func problem(_ steps: [LadderStep]) -> String? {
        guard !steps.isEmpty else { return "a ladder needs at least one step" }
        for (a, b) in zip(steps, steps.dropFirst()) where b.at <= a.at {
            return "step '\(b.stage)' (at \(b.at)d) must come after '\(a.stage)' (at \(a.at)d): steps are in increasing order of at"
        }
        var seen: Set<String> = []
        for step in steps {
            if !seen.insert(step.stage).inserted { return "stage '\(step.stage)' appears twice" }
            if step.action == .send && step.channels.isEmpty { return "step '\(step.stage)' sends on no channel" }
            if step.action == .handoff && !step.channels.isEmpty { return "the hand-off step '\(step.stage)' sends nothing: it takes no channels" }
        }
        if let i = steps.firstIndex(where: { $0.action == .handoff }), i != steps.count - 1 {
            return "the hand-off step '\(steps[i].stage)' must be the last step"
        }
        return nil
    }
}

/// The planner's rules (config `plan:`).
public struct PlanRules: Sendable {
    public var ladders: [String: Ladder]
    /// Days between two contacts with one debtor.
    public var minGap: Int
    /// Days a partial payment holds the debtor's next contact.
    public var afterPayment: Int
    /// Outstanding below this (minor units, per currency) is never chased.
    public var minAmount: [String: Int64]
    /// Annual late-payment penalty rate (percent) shown to business debtors at the final notice.
    public var penaltyRate: Double?
    /// With a fitted risk model: a courtesy step for the risky items of ladders without one.
    public var riskCourtesy: RiskCourtesy?

    public init(ladders: [String: Ladder], minGap: Int = 7, afterPayment: Int = 7, minAmount: [String: Int64] = [:], penaltyRate: Double? = nil) {
        self.ladders = ladders
        self.minGap = minGap
        self.afterPayment = afterPayment
        self.minAmount = minAmount
        self.penaltyRate = penaltyRate
    }

    /// The ladder of DESIGN.md's example, used when `plan.ladders` is not configured.
    public static let defaultLadder = Ladder(
        name: "default",
        steps: [
            LadderStep(stage: "pre_due", at: -3, channels: [.email]),
            LadderStep(stage: "reminder_1", at: 7, channels: [.email]),
            LadderStep(stage: "reminder_2", at: 21, channels: [.email, .sms]),
            LadderStep(stage: "final_notice", at: 40, channels: [.email]),
            LadderStep(stage: "handoff", at: 60, action: .handoff),
        ])
}

/// The risk score's one use in the plan (`score.pre_due_threshold`): on a ladder without a
/// courtesy step before the due date, an item whose P(paid late) is at least `threshold` gets one
/// (`step`, `pre_due` by default). A contact like any other (the same gaps, windows, caps and
/// opt-outs); it never skips, delays or rewords a step of the ladder.
public struct RiskCourtesy: Sendable {
public var model: ScoreModel
public var threshold: Double
public var step: LadderStep

public init(model: ScoreModel, threshold: Double, step: LadderStep = LadderStep(stage: "pre_due", at: -3, channels: [.email])) {
    self.model = model
    self.threshold = threshold
    self.step = step
}

/// The invoices of the debtor open on `asOf` and not due yet whose P(late) reaches the threshold.
func riskyInvoices(_ snapshot: DebtorSnapshot, asOf: CivilDate) -> Set<String> {
    guard snapshot.invoices.contains(where: { $0.dueOn > asOf && $0.issuedOn <= asOf }) else { return [] }
    let history = DebtorHistory(snapshot)
    var risky: Set<String> = []
    for (i, invoice) in history.invoices.enumerated()
    where invoice.dueOn > asOf.dayNumber && invoice.issuedOn <= asOf.dayNumber && invoice.paidOn == nil && invoice.writtenOffOn == nil {
        if model.score(history, index: i, on: asOf.dayNumber + 1).pLate >= threshold { risky.insert(invoice.number) }
    }
    return risky
}
}
