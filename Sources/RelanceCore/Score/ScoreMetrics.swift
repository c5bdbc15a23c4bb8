import Foundation

/// How good probabilities are against what happened: AUC, Brier score, calibration per decile.
public enum ScoreMetrics {
    /// The area under the ROC curve (the probability that a late invoice scores above an on-time
    /// one, ties counting half); nil without both kinds.
    public static func auc(_ scores: [Double], _ labels: [Bool]) -> Double? {
        let positives = labels.lazy.filter { $0 }.count
        let negatives = labels.count - positives
        guard positives > 0, negatives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1  // mid-rank of the ties
            for k in i...j where labels[order[k]] { rankSum += rank }
            i = j + 1
        }
        return (rankSum - Double(positives) * Double(positives + 1) / 2) / (Double(positives) * Double(negatives))
    }

    /// The mean squared difference between the probability and the outcome (0 is perfect).
    public static func brier(_ scores: [Double], _ labels: [Bool]) -> Double? {
        guard !scores.isEmpty else { return nil }
        return zip(scores, labels).reduce(0) { $0 + ($1.0 - ($1.1 ? 1 : 0)) * ($1.0 - ($1.1 ? 1 : 0)) } / Double(scores.count)
    }

    public struct Decile: Sendable, Hashable {
        public var count: Int
        public var meanPredicted: Double
        public var observedRate: Double
    }

    /// Ten groups of equal size by predicted probability, lowest first: mean predicted vs observed.
    public static func calibration(_ scores: [Double], _ labels: [Bool]) -> [Decile] {
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        guard !order.isEmpty else { return [] }
        return (0..<10).compactMap { d in
            let slice = order[(order.count * d / 10)..<(order.count * (d + 1) / 10)]
            guard !slice.isEmpty else { return nil }
            let predicted = slice.reduce(0) { $0 + scores[$1] } / Double(slice.count)
            let observed = Double(slice.lazy.filter { labels[$0] }.count) / Double(slice.count)
            return Decile(count: slice.count, meanPredicted: predicted, observedRate: observed)
        }
    }
}
