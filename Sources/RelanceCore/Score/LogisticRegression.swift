import Foundation

/// L2-regularised logistic regression fitted by Newton's method (iteratively reweighted least
/// squares), for P(paid after the due date). Small on purpose: the one model the risk score needs,
/// not a library. The intercept is not penalised; the features are expected standardised.
///
/// Minimises `-Σ log-likelihood + λ/2 · Σ_{j≥1} β_j²`, the objective of scikit-learn's
/// `LogisticRegression(C = 1/λ)` and, with λ = 0, of statsmodels' `Logit` (tested against both).
public struct LogisticRegression: Sendable, Hashable, Codable {
    /// β₀ (intercept) first, then one coefficient per feature.
    public var coefficients: [Double]
    public var iterations: Int
    public var converged: Bool

    public init(coefficients: [Double], iterations: Int = 0, converged: Bool = true) {
        self.coefficients = coefficients
        self.iterations = iterations
        self.converged = converged
    }

    public enum FitError: Error, Sendable, Hashable, CustomStringConvertible {
        case noRows
        case widthMismatch(row: Int)
        case singular

        public var description: String {
            switch self {
            case .noRows: "no training example"
            case .widthMismatch(let row): "row \(row) has another number of features"
            case .singular: "the features are collinear and the penalty is zero: no unique fit"
            }
        }
    }

    /// Fits on `rows` (features, without the intercept column) and `labels` (true = late).
    public static func fit(
        rows: [[Double]], labels: [Bool], lambda: Double, maxIterations: Int = 100, tolerance: Double = 1e-10
    ) throws -> LogisticRegression {
        guard let width = rows.first?.count else { throw FitError.noRows }
        let p = width + 1
        var beta = [Double](repeating: 0, count: p)
        // Start the intercept at the base rate's log-odds: fewer iterations.
        let positives = Double(labels.lazy.filter { $0 }.count)
        let rate = min(max(positives / Double(labels.count), 1e-6), 1 - 1e-6)
        beta[0] = log(rate / (1 - rate))
        var hessian = [Double](repeating: 0, count: p * p)
        var gradient = [Double](repeating: 0, count: p)
        var x = [Double](repeating: 1, count: p)
        for iteration in 1...maxIterations {
            for k in 0..<(p * p) { hessian[k] = 0 }
            for k in 0..<p { gradient[k] = 0 }
            for (r, row) in rows.enumerated() {
                guard row.count == width else { throw FitError.widthMismatch(row: r) }
                for j in 0..<width { x[j + 1] = row[j] }
                var eta = 0.0
                for j in 0..<p { eta += beta[j] * x[j] }
                let mu = 1 / (1 + exp(-eta))
                let w = max(mu * (1 - mu), 1e-12)
                let residual = (labels[r] ? 1.0 : 0.0) - mu
                for j in 0..<p {
                    gradient[j] += residual * x[j]
                    let wx = w * x[j]
                    // Upper triangle only; mirrored below.
                    for k in j..<p { hessian[j * p + k] += wx * x[k] }
                }
            }
            for j in 1..<p {
                gradient[j] -= lambda * beta[j]
                hessian[j * p + j] += lambda
            }
            for j in 0..<p { for k in 0..<j { hessian[j * p + k] = hessian[k * p + j] } }
            guard let step = Self.solve(hessian, gradient, size: p) else { throw FitError.singular }
            var largest = 0.0
            for j in 0..<p {
                beta[j] += step[j]
                largest = max(largest, abs(step[j]))
            }
            if largest < tolerance { return LogisticRegression(coefficients: beta, iterations: iteration, converged: true) }
        }
        return LogisticRegression(coefficients: beta, iterations: maxIterations, converged: false)
    }

    /// P(late) for one row of (standardised) features.
    public func probability(_ row: [Double]) -> Double {
        1 / (1 + exp(-logOdds(row)))
    }

    public func logOdds(_ row: [Double]) -> Double {
        var eta = coefficients[0]
        for (j, value) in row.enumerated() where j + 1 < coefficients.count { eta += coefficients[j + 1] * value }
        return eta
    }

    /// Solves `A x = b` for a symmetric positive definite `A` (row-major `size × size`) by
    /// Cholesky; nil when `A` is not positive definite.
    static func solve(_ a: [Double], _ b: [Double], size n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var sum = a[i * n + j]
                for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard sum > 1e-300 else { return nil }
                    l[i * n + i] = sum.squareRoot()
                } else {
                    l[i * n + j] = sum / l[j * n + j]
                }
            }
        }
        var y = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var sum = b[i]
            for k in 0..<i { sum -= l[i * n + k] * y[k] }
            y[i] = sum / l[i * n + i]
        }
        var x = [Double](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var sum = y[i]
            for k in (i + 1)..<n { sum -= l[k * n + i] * x[k] }
            x[i] = sum / l[i * n + i]
        }
        return x
    }
}
