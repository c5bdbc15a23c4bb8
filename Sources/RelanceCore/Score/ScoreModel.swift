import Foundation

/// The risk score (issue 15): a regularised logistic regression for P(paid after the due date)
/// over `ScoreFeatures`, and Kaplan–Meier curves of days to payment per risk band for the expected
/// payment date. Trained on the history known on `asOf`; interpretable: each score names the
/// three features that weigh most, in log-odds.
public struct ScoreModel: Sendable, Hashable, Codable {
    public var asOf: CivilDate
    public var featureNames: [String]
    /// Standardisation learnt on the training rows.
    public var means: [Double]
    public var scales: [Double]
    public var logistic: LogisticRegression
    /// Upper P(late) bounds of the risk bands but the last (quintiles of the training scores).
    public var bandEdges: [Double]
    public var bands: [KaplanMeier]
    public var metrics: Metrics

    public struct Metrics: Sendable, Hashable, Codable {
        public var examples: Int
        public var late: Int
        /// On the training rows themselves (the backtest says how it does on what it has not seen).
        public var auc: Double?
        public var brier: Double?
        public var lambda: Double
    }

    public enum TrainError: Error, Sendable, Hashable, CustomStringConvertible {
        case tooFewExamples(Int)
        case oneClass(late: Bool)

        public var description: String {
            switch self {
            case .tooFewExamples(let n): "only \(n) invoices with a known outcome before that date: at least 20 are needed"
            case .oneClass(let late): "every invoice with a known outcome was paid \(late ? "late" : "on time"): nothing to learn from"
            }
        }
    }

    /// The labelled examples on `asOf`: every invoice issued before it whose outcome is known on
    /// it, its features on its issue date, late when it was not paid by its due date.
    public static func examples(_ histories: [DebtorHistory], asOf day: Int) -> (rows: [[Double]], labels: [Bool]) {
        let invoices = issuedBefore(day, histories)
        return (invoices.labelled, invoices.labels)
    }

    /// An invoice issued before the training date, for the payment curves: its features (as an
    /// index into the labelled rows, or its own when its outcome is unknown), days from issue to
    /// payment or to the date, and whether it was paid.
    typealias CurveRow = (features: Int?, raw: [Double]?, duration: Double, paid: Bool)

    /// Every invoice issued before `day`, its features computed once: those with a known outcome
    /// train the regression; all of them (paid: an event; open: censored) the curves.
    static func issuedBefore(_ day: Int, _ histories: [DebtorHistory]) -> (labelled: [[Double]], labels: [Bool], curves: [CurveRow]) {
        var raw: [[Double]] = []
        var labels: [Bool] = []
        var curves: [CurveRow] = []
        for history in histories {
            for (i, invoice) in history.invoices.enumerated() where invoice.issuedOn < day {
                let features = ScoreFeatures.compute(history, index: i, on: invoice.issuedOn)
                var index: Int?
                if let late = invoice.late(knownOn: day) {
                    index = raw.count
                    raw.append(features)
                    labels.append(late)
                }
                let paid = invoice.paidOn.map { $0 < day } ?? false
                let end = paid ? invoice.paidOn ?? day : invoice.writtenOffOn.map { min($0, day) } ?? day
                curves.append((index, index == nil ? features : nil, Double(max(0, end - invoice.issuedOn)), paid))
            }
        }
        return (raw, labels, curves)
    }

    public static func train(_ histories: [DebtorHistory], asOf: CivilDate, lambda: Double = 1) throws -> ScoreModel {
        let (raw, labels, everyRow) = issuedBefore(asOf.dayNumber, histories)
        guard raw.count >= 20 else { throw TrainError.tooFewExamples(raw.count) }
        let late = labels.lazy.filter { $0 }.count
        guard late > 0, late < labels.count else { throw TrainError.oneClass(late: late > 0) }
        let width = ScoreFeatures.names.count
        var means = [Double](repeating: 0, count: width)
        var scales = [Double](repeating: 0, count: width)
        for row in raw { for j in 0..<width { means[j] += row[j] } }
        for j in 0..<width { means[j] /= Double(raw.count) }
        for row in raw { for j in 0..<width { scales[j] += (row[j] - means[j]) * (row[j] - means[j]) } }
        for j in 0..<width {
            let sd = (scales[j] / Double(raw.count)).squareRoot()
            scales[j] = sd > 1e-9 ? sd : 1
        }
        let rows = raw.map { row in (0..<width).map { (row[$0] - means[$0]) / scales[$0] } }
        let logistic = try LogisticRegression.fit(rows: rows, labels: labels, lambda: lambda)
        let scores = rows.map(logistic.probability)
        // Risk bands: quintiles of the training scores; one payment curve per band.
        let sorted = scores.sorted()
        let edges = (1..<5).map { sorted[min(sorted.count - 1, sorted.count * $0 / 5)] }
        var model = ScoreModel(
            asOf: asOf, featureNames: ScoreFeatures.names, means: means, scales: scales, logistic: logistic, bandEdges: edges, bands: [],
            metrics: Metrics(
                examples: rows.count, late: late, auc: ScoreMetrics.auc(scores, labels), brier: ScoreMetrics.brier(scores, labels), lambda: lambda))
        var durations = [[Double]](repeating: [], count: 5)
        var events = [[Bool]](repeating: [], count: 5)
        for row in everyRow {
            let p = row.features.map { scores[$0] } ?? row.raw.map(model.probability) ?? 0
            let band = model.band(p)
            durations[band].append(row.duration)
            events[band].append(row.paid)
        }
        model.bands = (0..<5).map { KaplanMeier.fit(durations: durations[$0], events: events[$0]) }
        return model
    }

    /// P(late) for raw (unstandardised) features.
    public func probability(_ raw: [Double]) -> Double { logistic.probability(standardised(raw)) }

    func standardised(_ raw: [Double]) -> [Double] { raw.indices.map { (raw[$0] - means[$0]) / scales[$0] } }

    func band(_ p: Double) -> Int { bandEdges.firstIndex { p <= $0 } ?? bandEdges.count }

    /// One feature's weight in a score: its coefficient times its standardised value, in log-odds.
    public struct Contribution: Sendable, Hashable {
        public var feature: String
        public var value: Double
        public var logOdds: Double

        /// "days_late_last_3 = 12: +0.80".
        public var text: String {
            let v = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : FixedPoint.text(value, decimals: 2)
            return "\(feature) = \(v): \(logOdds >= 0 ? "+" : "")\(FixedPoint.text(logOdds, decimals: 2))"
        }
    }

    public struct Score: Sendable, Hashable {
        public var pLate: Double
        /// Days from issue to the expected payment, from the item's band's payment curve (nil when
        /// the history never gets there).
        public var expectedDaysToPay: Double?
        public var band: Int
        /// Every feature's weight, largest first.
        public var contributions: [Contribution]
    }

    /// Scores invoice `index` of `history` on `day`: its issue date in a backtest, today for an open item.
    public func score(_ history: DebtorHistory, index: Int, on day: Int) -> Score {
        let raw = ScoreFeatures.compute(history, index: index, on: day)
        let z = standardised(raw)
        let p = logistic.probability(z)
        let band = band(p)
        let invoice = history.invoices[index]
        let age = Double(max(0, day - invoice.issuedOn))
        let contributions = raw.indices.map { j in
            Contribution(feature: featureNames[j], value: raw[j], logOdds: logistic.coefficients[j + 1] * z[j])
        }.sorted { abs($0.logOdds) > abs($1.logOdds) }
        return Score(pLate: p, expectedDaysToPay: bands.indices.contains(band) ? bands[band].medianDays(after: age) : nil, band: band, contributions: contributions)
    }
}
