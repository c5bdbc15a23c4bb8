import Foundation
import RelanceTestSupport
import Testing

@testable import RelanceCore

/// The risk score's two models against reference implementations from PyPI, on the labelled
/// examples of a simulated receivables history (Tests/IntegrationTests/Support/score_reference.py):
/// statsmodels' Logit (the maximum-likelihood fit), scikit-learn's L2 logistic regression, and
/// lifelines' Kaplan–Meier estimator. Coefficients and survival equal within 1e-4.
@Suite struct ScoreReferenceTests {
    @Test func logisticRegressionAndKaplanMeierMatchTheReferences() async throws {
        // The simulator lives with the core tests; a smaller history of the same kind is drawn here.
        var rng = SplitMix64(seed: 42)
        var histories: [DebtorHistory] = []
        let start = CivilDate(year: 2024, month: 1, day: 1).dayNumber
        for d in 0..<120 {
            let propensity = rng.uniform()
            var invoices: [ScoredInvoice] = []
            var day = start + Int(rng.uniform() * 30)
            for n in 0..<14 {
                let late = rng.uniform() < propensity
                let due = day + 30
                invoices.append(
                    ScoredInvoice(
                        number: "R\(d)-\(n)", issuedOn: day, dueOn: due, amount: 100 + rng.uniform() * 900,
                        paidOn: late ? (rng.uniform() < 0.1 ? nil : due + 1 + Int(rng.uniform() * 60)) : day + Int(rng.uniform() * 30)))
                day += 20 + Int(rng.uniform() * 40)
            }
            histories.append(DebtorHistory(debtor: "R\(d)", kind: d % 2 == 0 ? .business : .consumer, invoices: invoices))
        }
        let asOf = start + 500
        let (raw, labels) = ScoreModel.examples(histories, asOf: asOf)
        #expect(raw.count > 800)
        // Standardised as training does; a few features only (several are constant here).
        let keep = ["late_odds", "mean_days_late", "days_late_last_3", "open_items", "amount_vs_mean", "business"].compactMap {
            ScoreFeatures.names.firstIndex(of: $0)
        }
        var rows = raw.map { row in keep.map { row[$0] } }
        for j in keep.indices {
            let column = rows.map { $0[j] }
            let mean = column.reduce(0, +) / Double(column.count)
            let sd = (column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(column.count)).squareRoot()
            for i in rows.indices { rows[i][j] = (rows[i][j] - mean) / sd }
        }
        var durations: [Double] = []
        var events: [Bool] = []
        for history in histories {
            for invoice in history.invoices where invoice.issuedOn < asOf {
                if let paid = invoice.paidOn, paid < asOf {
                    durations.append(Double(paid - invoice.issuedOn))
                    events.append(true)
                } else {
                    durations.append(Double(asOf - invoice.issuedOn))
                    events.append(false)
                }
            }
        }
        let input: [String: Any] = [
            "rows": rows, "labels": labels.map { $0 ? 1 : 0 }, "lambdas": [0, 2.5], "durations": durations, "events": events.map { $0 ? 1 : 0 },
        ]
        let sandbox = try Sandbox()
        let inputPath = sandbox.root + "/score-input.json"
        try JSONSerialization.data(withJSONObject: input).write(to: URL(fileURLWithPath: inputPath))
        let reference = try Child(
            "/bin/sh", ["-c", "python3 \(Package.support)/score_reference.py < \(inputPath)"], environment: ["PYTHONWARNINGS": "ignore"],
            directory: sandbox.root)
        #expect(try await reference.wait(timeout: .seconds(240)) == 0, "\(reference.stderr.suffix(2000))")
        let output = try #require(try JSONSerialization.jsonObject(with: Data(reference.stdout.utf8)) as? [String: Any])
        let logit = try #require(output["logit"] as? [String: [Double]])
        for (lambda, key) in [(0.0, "0"), (2.5, "2.5")] {
            let ours = try LogisticRegression.fit(rows: rows, labels: labels, lambda: lambda)
            let theirs = try #require(logit[key] ?? logit[lambda == 0 ? "0.0" : key])
            #expect(ours.converged)
            print("score reference λ \(lambda): largest coefficient difference \(zip(ours.coefficients, theirs).map { abs($0 - $1) }.max() ?? -1) over \(theirs.count) coefficients")
            #expect(ours.coefficients.count == theirs.count)
            for (a, b) in zip(ours.coefficients, theirs) {
                #expect(abs(a - b) < 1e-4, "λ \(lambda): \(ours.coefficients) against \(theirs)")
            }
        }
        let km = try #require(output["km"] as? [String: [Double]])
        let ours = KaplanMeier.fit(durations: durations, events: events)
        #expect(ours.times == km["times"], "the event times")
        for (a, b) in zip(ours.survival, km["survival"] ?? []) { #expect(abs(a - b) < 1e-4) }
        #expect(ours.survival.count == (km["survival"] ?? []).count)
    }
}

extension SplitMix64 {
    /// A uniform number in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
