import ArgumentParser
import Foundation
import RelanceConfig
import RelanceCore
import RelanceDispatch
import RelanceStore

/// `relance score`: the risk score (docs/score.md).
struct ScoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Predict who will pay late: fit the risk models (--train), score the open items, backtest them (--backtest), explain a debtor's score (--explain).",
        discussion: """
            The score is the probability that an item is paid after its due date, from a logistic regression on what was known \
            of the invoice and its debtor on its issue date (the debtor's own payment history weighs most), and an expected \
            payment date from the payment curves of its risk band (Kaplan-Meier). It orders work and never skips, delays or \
            rewords a step of the ladder. It is personal data: see docs/score.md.

              relance score --train [--as-of DATE]                 fit on the history known on DATE (default: today) and keep the models
              relance score [--debtor ID] [--format F]             each open item: p_late, expected payment date, the 3 features that weigh most
              relance score --backtest --from DATE [--format csv]  every invoice issued since DATE scored as of its issue date (monthly refits);
                                                                   AUC, Brier score and calibration per decile on standard error
              relance score --explain --debtor ID                  every feature of each open item of the debtor, and its weight
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, json, csv }

    @OptionGroup var options: ConfigOption
    @Flag(help: "Fit the models on the history known on --as-of and keep them in the ledger.") var train = false
    @Flag(help: "Score every invoice issued since --from as of its own issue date, and say how it did.") var backtest = false
    @Flag(help: "Explain the score of each open item of --debtor.") var explain = false
    @Option(name: .customLong("as-of"), help: "The day (YYYY-MM-DD, or an RFC 3339 instant; default: today in defaults.timezone).") var asOf: String?
    @Option(help: "With --backtest: the first issue date scored (YYYY-MM-DD).") var from: String?
    @Option(help: "Only this debtor's items.") var debtor: String?
    @Option(help: "table, json (one object per line) or csv.") var format: Format = .table

    func validate() throws {
        if [train, backtest, explain].filter({ $0 }).count > 1 { throw ValidationError("one of --train, --backtest, --explain") }
        if backtest && from == nil { throw ValidationError("--backtest needs --from DATE") }
        if from != nil && !backtest { throw ValidationError("--from goes with --backtest") }
        if let from, CivilDate(from) == nil { throw ValidationError("--from: expected a date YYYY-MM-DD, got '\(from)'") }
        if explain && debtor == nil { throw ValidationError("--explain needs --debtor ID") }
    }

    func run() async throws {
        try await Self.guarded {
            let configuration = try options.resolve().configuration
            let zone = TimeZone(identifier: configuration.defaults.timezone) ?? .gmt
            let day = try parseDay(asOf, option: "--as-of", in: zone)
            try await withLedger(configuration, write: train) { ledger in try await run(ledger, day: day, zone: zone) }
        }
    }

    func run(_ ledger: any LedgerStore, day: CivilDate, zone: TimeZone) async throws {
        if train {
            let training: ScoreRun.Training
            do {
                training = try await ScoreRun.train(ledger, asOf: day, bandsOn: CivilDate(Date(), in: zone), now: Date())
            } catch let error as ScoreModel.TrainError {
                throw Fail.runtime("cannot fit the risk models as of \(day): \(error)")
            }
            Self.printTraining(training)
            return
        }
        if backtest, let from, let start = CivilDate(from) {
            let histories = try await ScoreRun.histories(ledger, debtor: debtor)
            return Self.printBacktest(Backtest.run(histories, from: start, end: day.adding(days: 1)), format: format)
        }
        guard let (model, trainedAt) = try await ledger.latestScoreModel() else {
            throw Fail.runtime("no risk model yet: fit one with relance score --train")
        }
        let items = try await ScoreRun.openItems(ledger, debtor: debtor, model: model, on: day)
        if explain {
            return Self.printExplanation(items, model: model, trainedAt: trainedAt, debtor: debtor ?? "")
        }
        Self.printItems(items, format: format)
    }

    static let columns = ["debtor", "invoice", "issued_on", "due_on", "amount", "p_late", "expected_payment", "weighs_most"]

    static func printItems(_ items: [ScoreRun.OpenItem], format: Format) {
        switch format {
        case .table: print(columns.map { $0.uppercased() }.joined(separator: "\t"))
        case .csv: print(columns.joined(separator: ","))
        case .json: break
        }
        for item in items {
            let top = item.score.contributions.prefix(3).map(\.text)
            let values = [
                item.debtor, item.invoice.number, CivilDate(dayNumber: item.invoice.issuedOn).description, CivilDate(dayNumber: item.invoice.dueOn).description,
                FixedPoint.text(item.invoice.amount, decimals: 2), FixedPoint.text(item.score.pLate, decimals: 3), item.expectedPaymentDate?.description ?? "",
                top.joined(separator: "; "),
            ]
            switch format {
            case .table: print(values.map { String($0.map { $0.isNewline || $0 == "\t" ? " " : $0 }) }.joined(separator: "\t"))
            case .csv: print(values.map(CSVField.quoted).joined(separator: ","))
            case .json:
                var fields = zip(columns.dropLast(), values.dropLast()).map { "\(JSONText.string($0)):\(JSONText.string($1))" }
                fields.append("\"weighs_most\":[" + top.map(JSONText.string).joined(separator: ",") + "]")
                print("{" + fields.joined(separator: ",") + "}")
            }
        }
    }

    static func printTraining(_ training: ScoreRun.Training) {
        let (model, m) = (training.model, training.model.metrics)
        print("risk models fitted as of \(model.asOf) on \(m.examples) invoices with a known outcome (\(m.late) paid late)")
        print("in-sample AUC \(m.auc.map { String(format: "%.3f", $0) } ?? "-"), Brier \(m.brier.map { String(format: "%.3f", $0) } ?? "-"); the backtest says how it does on what it has not seen")
        print("coefficients (log-odds per standard deviation):")
        print("  intercept\t\(String(format: "%+.3f", model.logistic.coefficients[0]))")
        for (name, c) in zip(model.featureNames, model.logistic.coefficients.dropFirst()).sorted(by: { abs($0.1) > abs($1.1) }) {
            print("  \(name)\t\(String(format: "%+.3f", c))\t\(ScoreFeatures.descriptions[name] ?? "")")
        }
        print("risk bands: \(training.bandedDebtors) debtors with open items; their waiting reminders go first within their priority, riskiest band first")
    }

    static func printBacktest(_ result: Backtest.Result, format: Format) {
        let columns = ["invoice", "debtor", "issued_on", "p_late", "expected_days_to_pay"]
        if format == .csv { print(columns.joined(separator: ",")) }
        if format == .table { print(columns.map { $0.uppercased() }.joined(separator: "\t")) }
        for row in result.rows {
            let values = [row.invoice, row.debtor, row.issuedOn.description, FixedPoint.text(row.pLate, decimals: 4), row.expectedDaysToPay.map { String(Int($0)) } ?? ""]
            switch format {
            case .csv: print(values.map(CSVField.quoted).joined(separator: ","))
            case .table: print(values.joined(separator: "\t"))
            case .json: print("{" + zip(columns, values).map { "\(JSONText.string($0)):\(JSONText.string($1))" }.joined(separator: ",") + "}")
            }
        }
        var report = "backtest: \(result.rows.count) invoices scored, \(result.withOutcome) with an outcome"
        report += "; AUC \(result.auc.map { String(format: "%.3f", $0) } ?? "-"), Brier \(result.brier.map { String(format: "%.3f", $0) } ?? "-")\n"
        for (on, problem) in result.refits where problem != nil { report += "  no model for the month of \(on): \(problem ?? "")\n" }
        report += "calibration per decile (mean predicted → observed late, count):\n"
        for (i, d) in result.calibration.enumerated() {
            report += "  \(i + 1)\t\(String(format: "%.3f", d.meanPredicted)) → \(String(format: "%.3f", d.observedRate))\t\(d.count)\n"
        }
        FileHandle.standardError.write(Data(report.utf8))
    }

    static func printExplanation(_ items: [ScoreRun.OpenItem], model: ScoreModel, trainedAt: Date, debtor: String) {
        print("debtor \(debtor): \(items.count) open item(s); model fitted on \(Timestamp.format(trainedAt)) as of \(model.asOf) on \(model.metrics.examples) invoices")
        for item in items {
            print(
                "\n\(item.invoice.number): P(paid late) = \(String(format: "%.3f", item.score.pLate)), risk band \(item.score.band + 1) of 5, "
                    + "expected payment \(item.expectedPaymentDate?.description ?? "unknown (the history does not say)")")
            print("  each feature, its value and what it adds to the log-odds of paying late (the intercept is \(String(format: "%+.2f", model.logistic.coefficients[0]))):")
            for c in item.score.contributions {
                print("  \(c.text)\t\(ScoreFeatures.descriptions[c.feature] ?? "")")
            }
        }
        print("\nThe score orders the work and may add a courtesy pre-due reminder; it never skips, delays or rewords a step (docs/score.md).")
    }
}
