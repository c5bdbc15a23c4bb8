import Foundation
import Testing

@testable import RelanceCore

/// A payment-behaviour simulator: debtors with hidden propensities to pay late (most reliable or
/// chronic, as customers in accounts-receivable data tend to be, a third in between, all drifting
/// over time), seasonal effects (December and August pay later), disputes (a disputed invoice is
/// paid late; half are opened on the issue date, half a week later), large invoices paid later,
/// amounts and terms that vary. Nothing in it is visible to the model but the invoices, payments,
/// disputes and reminders it produced; `truth` keeps each invoice's hidden probability, for the
/// best AUC any model could reach.
struct PaymentSimulator {
    var rng: SplitMix
    var debtors = 300
    var start = CivilDate(year: 2023, month: 1, day: 1).dayNumber
    var days = 1095
    /// Invoice number → the probability it was drawn late with.
    var truth: [String: Double] = [:]

    init(seed: UInt64) { rng = SplitMix(seed: seed) }

    mutating func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }

    mutating func histories() -> [DebtorHistory] {
        (0..<debtors).map { d in
            // Hidden propensity: a Beta-like mix of reliable, chronic and in-between payers.
            let kind = uniform()
            var propensity = kind < 0.45 ? uniform() * 0.1 : kind < 0.75 ? 0.2 + uniform() * 0.5 : 0.8 + uniform() * 0.2
            let business = uniform() < 0.6
            let meanAmount = business ? 500 + uniform() * 5000 : 50 + uniform() * 400
            let terms = [0, 15, 30, 30, 45, 60][Int(uniform() * 6)]
            var invoices: [ScoredInvoice] = []
            var day = start + Int(uniform() * 60)
            var n = 0
            while day < start + days {
                let amount = meanAmount * (0.3 + uniform() * 1.4)
                let issued = day
                let due = issued + terms
                let month = CivilDate(dayNumber: issued).month
                var p = propensity + (month == 12 || month == 8 ? 0.15 : 0) + (amount > meanAmount * 1.4 ? 0.1 : 0)
                let disputed = uniform() < 0.04
                if disputed { p = 0.95 }
                let late = uniform() < min(p, 0.98)
                truth["D\(d)-\(n)"] = min(p, 0.98)
                let paid: Int? =
                    late
                    ? (uniform() < 0.03 ? nil : due + 1 + Int(-log(1 - uniform()) * (10 + 40 * propensity)))
                    : issued + Int(uniform() * Double(terms + 1))
                invoices.append(
                    ScoredInvoice(
                        number: "D\(d)-\(n)", issuedOn: issued, dueOn: due, amount: amount, paidOn: paid,
                        disputedOn: disputed ? issued + (uniform() < 0.5 ? 0 : 7) : nil,
                        reminders: late ? [due + 7] : []))
                n += 1
                // Propensities drift: people change.
                propensity = min(1, max(0, propensity + (uniform() - 0.5) * 0.04))
                day += 10 + Int(uniform() * 50)
            }
            return DebtorHistory(debtor: "D\(d)", kind: business ? .business : .consumer, invoices: invoices)
        }
    }
}

@Suite struct ScoreTests {
    /// The acceptance: a backtest over the simulator's last nine months reaches an AUC of 0.85,
    /// within 0.04 of the best any model could do (the hidden probabilities themselves).
    @Test func theBacktestOnTheSimulatorReachesAnAUCOf085() throws {
        var simulator = PaymentSimulator(seed: 20_261_130)
        let histories = simulator.histories()
        let end = CivilDate(dayNumber: simulator.start + simulator.days)
        let result = Backtest.run(histories, from: CivilDate(year: 2025, month: 4, day: 1), end: end)
        #expect(result.refits.allSatisfy { $0.problem == nil })
        #expect(result.withOutcome > 1000, "\(result.withOutcome) scored invoices with an outcome")
        let auc = try #require(result.auc)
        let brier = try #require(result.brier)
        let known = result.rows.filter { $0.late != nil }
        let oracle = try #require(ScoreMetrics.auc(known.map { simulator.truth[$0.invoice] ?? 0 }, known.map { $0.late ?? false }))
        print("score backtest on the simulator: \(result.rows.count) invoices, AUC \(auc) (hidden probabilities: \(oracle)), Brier \(brier)")
        #expect(auc >= 0.85, "AUC \(auc)")
        #expect(auc >= oracle - 0.04, "AUC \(auc) against \(oracle) for the hidden probabilities")
        #expect(brier < 0.2, "Brier \(brier)")
        // Calibrated: each decile's observed rate within 0.15 of its mean prediction.
        for decile in result.calibration {
            #expect(abs(decile.meanPredicted - decile.observedRate) < 0.15, "\(decile)")
        }
    }

    /// No leakage: what happened after an invoice's issue date changes none of its features.
    @Test func featuresSeeNothingAfterTheIssueDate() {
        #expect(ScoreFeatures.names.count == ScoreFeatures.descriptions.count)
        var simulator = PaymentSimulator(seed: 7)
        simulator.debtors = 20
        for history in simulator.histories() {
            for (i, invoice) in history.invoices.enumerated() {
                let before = ScoreFeatures.compute(history, index: i, on: invoice.issuedOn)
                // Rewrite the future: every payment not made before the issue date made 100 days after
                // it instead, later disputes (a dispute opened that day is known that day) and
                // reminders gone, later invoices' amounts changed.
                var rewritten = history
                for j in rewritten.invoices.indices {
                    var other = rewritten.invoices[j]
                    if other.paidOn.map({ $0 >= invoice.issuedOn }) ?? true { other.paidOn = invoice.issuedOn + 100 }
                    if let disputed = other.disputedOn, disputed > invoice.issuedOn || (disputed == invoice.issuedOn && j != i) { other.disputedOn = nil }
                    other.reminders = other.reminders.filter { $0 < invoice.issuedOn }
                    if other.issuedOn >= invoice.issuedOn && j != i { other.amount = 1 }
                    rewritten.invoices[j] = other
                }
                #expect(ScoreFeatures.compute(rewritten, index: i, on: invoice.issuedOn) == before, "\(invoice.number)")
            }
        }
    }

    @Test func aucBrierAndCalibrationAgainstHandComputedValues() throws {
        // Scores 0.1 0.4 0.35 0.8 for labels F F T T: pairs (T > F): 0.35>0.1 yes, 0.35>0.4 no, 0.8 both: 3 of 4.
        #expect(ScoreMetrics.auc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]) == 0.75)
        #expect(ScoreMetrics.auc([0.5, 0.5], [false, true]) == 0.5, "ties count half")
        #expect(ScoreMetrics.auc([0.5, 0.6], [true, true]) == nil)
        let brier = try #require(ScoreMetrics.brier([0.1, 0.4, 0.35, 0.8], [false, false, true, true]))
        #expect(abs(brier - (0.01 + 0.16 + 0.4225 + 0.04) / 4) < 1e-12)
        let deciles = ScoreMetrics.calibration((0..<100).map { Double($0) / 100 }, (0..<100).map { $0 >= 50 })
        #expect(deciles.count == 10 && deciles[0].observedRate == 0 && deciles[9].observedRate == 1 && deciles[9].count == 10)
    }

    @Test func kaplanMeierByHand() {
        // Durations 1 2 2 3 4 5, events T T F T F T: S(1)=5/6, S(2)=5/6·4/5=2/3, S(3)=2/3·2/3=4/9, S(5)=0.
        let km = KaplanMeier.fit(durations: [2, 1, 2, 3, 4, 5], events: [true, true, false, true, false, true])
        #expect(km.times == [1, 2, 3, 5])
        #expect(zip(km.survival, [5.0 / 6, 2.0 / 3, 4.0 / 9, 0]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(km.survival(at: 0.5) == 1 && km.survival(at: 2.5) == km.survival[1])
        #expect(km.medianDays() == 3, "first time S ≤ 0.5")
        #expect(km.medianDays(after: 3) == 5)
    }

    @Test func newtonFitsASeparableProblemOnlyWithAPenalty() throws {
        let rows: [[Double]] = [[-2], [-1], [1], [2]]
        let labels = [false, false, true, true]
        #expect(throws: (any Error).self) {
            let fit = try LogisticRegression.fit(rows: rows, labels: labels, lambda: 0, maxIterations: 60)
            if !fit.converged { throw LogisticRegression.FitError.singular }
        }
        let penalised = try LogisticRegression.fit(rows: rows, labels: labels, lambda: 1)
        #expect(penalised.converged && penalised.coefficients[1] > 0 && abs(penalised.coefficients[0]) < 1e-9)
    }
}

/// The risk score's one use in the plan: a courtesy `pre_due` for the risky items of a ladder
/// without one; nothing else changes (no step skipped or delayed, the ladder's own courtesy kept).
@Suite struct RiskCourtesyTests {
    /// Two debtors with 12 months of history: "LATE" pays every invoice 30 days late, "GOOD" on time;
    /// each has one more invoice, due 2026-02-10, open.
    static func snapshots() -> [DebtorSnapshot] {
        ["LATE", "GOOD"].map { id in
            var invoices: [ReceivableInvoice] = []
            var movements: [ReceivableMovement] = []
            for m in 1...12 {
                let issued = CivilDate(year: 2025, month: m, day: 1)
                let number = "\(id)-\(m)"
                invoices.append(
                    ReceivableInvoice(number: number, debtor: id, issuedOn: issued, dueOn: issued.adding(days: 30), amount: 10_000, currency: "EUR"))
                let paid = issued.adding(days: id == "LATE" ? 60 : 20)
                movements.append(.payment(id: "P" + number, amount: 10_000, currency: "EUR", paidOn: paid, invoice: number))
            }
            invoices.append(
                ReceivableInvoice(
                    number: "\(id)-NEW", debtor: id, issuedOn: CivilDate(year: 2026, month: 1, day: 11), dueOn: CivilDate(year: 2026, month: 2, day: 10),
                    amount: 10_000, currency: "EUR"))
            let debtor = ReceivableDebtor(
                debtor: Debtor(id: id, name: id, email: "\(id.lowercased())@example.fr", country: "FR", locale: "fr-FR", timezone: "Europe/Paris", kind: .business))
            return DebtorSnapshot(debtor: debtor, invoices: invoices, movements: movements)
        }
    }

    @Test func aRiskyItemGetsACourtesyOnALadderWithoutOne() throws {
        let snapshots = Self.snapshots()
        let model = try ScoreModel.train(snapshots.map(DebtorHistory.init), asOf: CivilDate(year: 2026, month: 1, day: 1))
        let withoutCourtesy = Ladder(name: "default", steps: Array(PlanRules.defaultLadder.steps.dropFirst()))
        var rules = PlanRules(ladders: ["default": withoutCourtesy])
        let asOf = CivilDate(year: 2026, month: 2, day: 7)  // the due date minus 3 days
        let plain = Planner.plan(snapshots, rules: rules, asOf: asOf)
        #expect(plain.reminders.isEmpty, "no courtesy without the score")
        rules.riskCourtesy = RiskCourtesy(model: model, threshold: 0.5)
        let planned = Planner.plan(snapshots, rules: rules, asOf: asOf)
        #expect(planned.reminders.map { "\($0.debtor) \($0.stage) \($0.items.map(\.id.invoice))" } == ["LATE pre_due [\"LATE-NEW\"]"])
        let good = planned.held.first { $0.item.invoice == "GOOD-NEW" }
        #expect(good?.nextStage == "reminder_1", "the reliable debtor's item waits for its first reminder as before")
        // After the due date the ladder is the ladder: reminder_1 at +7 days for both, nothing skipped.
        var late = snapshots[0]
        late.taken[ItemID(invoice: "LATE-NEW", instalment: nil)] = [TakenStep(stage: "pre_due", on: asOf)]
        let after = Planner.plan([late, snapshots[1]], rules: rules, asOf: CivilDate(year: 2026, month: 2, day: 17))
        #expect(Set(after.reminders.map { "\($0.debtor) \($0.stage)" }) == ["LATE reminder_1", "GOOD reminder_1"])
        // A ladder with its own courtesy is left as it is.
        rules.ladders["default"] = PlanRules.defaultLadder
        #expect(Planner.plan(snapshots, rules: rules, asOf: asOf).reminders.map(\.debtor).sorted() == ["GOOD", "LATE"])
    }
}
