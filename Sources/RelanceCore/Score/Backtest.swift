import Foundation

/// `relance score --backtest`: every invoice issued on or after `from` is scored as of its own
/// issue date by a model fitted on the history before it (refitted at the start of each month),
/// then compared with what happened.
public enum Backtest {
    public struct Row: Sendable, Hashable {
        public var invoice: String
        public var debtor: String
        public var issuedOn: CivilDate
        public var pLate: Double
        public var expectedDaysToPay: Double?
        /// What happened, as known on the backtest's end (nil: not due yet).
        public var late: Bool?
    }

    public struct Result: Sendable {
        public var rows: [Row]
        /// Each refit: its date and, when it could not be fitted, why (its month is left out).
        public var refits: [(on: CivilDate, problem: String?)]

        var known: (scores: [Double], labels: [Bool]) {
            let known = rows.filter { $0.late != nil }
            return (known.map(\.pLate), known.map { $0.late ?? false })
        }
        public var auc: Double? { ScoreMetrics.auc(known.scores, known.labels) }
        public var brier: Double? { ScoreMetrics.brier(known.scores, known.labels) }
        public var calibration: [ScoreMetrics.Decile] { ScoreMetrics.calibration(known.scores, known.labels) }
        public var withOutcome: Int { rows.lazy.filter { $0.late != nil }.count }
    }

    /// `end`: the day the outcomes are read on (the day after the last known movement, or today).
    public static func run(_ histories: [DebtorHistory], from: CivilDate, end: CivilDate, lambda: Double = 1) -> Result {
        var rows: [Row] = []
        var refits: [(CivilDate, String?)] = []
        var start = from
        let last = histories.lazy.flatMap(\.invoices).map(\.issuedOn).max() ?? from.dayNumber
        while start.dayNumber <= last {
            let next = start.addingMonths(1)
            let model: ScoreModel
            do {
                model = try ScoreModel.train(histories, asOf: start, lambda: lambda)
                refits.append((start, nil))
            } catch {
                refits.append((start, "\(error)"))
                start = next
                continue
            }
            for history in histories {
                for (i, invoice) in history.invoices.enumerated() where invoice.issuedOn >= start.dayNumber && invoice.issuedOn < next.dayNumber {
                    let score = model.score(history, index: i, on: invoice.issuedOn)
                    rows.append(
                        Row(
                            invoice: invoice.number, debtor: history.debtor, issuedOn: CivilDate(dayNumber: invoice.issuedOn), pLate: score.pLate,
                            expectedDaysToPay: score.expectedDaysToPay, late: invoice.late(knownOn: end.dayNumber)))
                }
            }
            start = next
        }
        rows.sort { ($0.issuedOn, $0.invoice) < ($1.issuedOn, $1.invoice) }
        return Result(rows: rows, refits: refits)
    }
}
