import Foundation

/// The Kaplan–Meier estimate of a survival curve: here, the share of invoices of one risk band
/// still unpaid t days after their issue date, payments being the events and invoices still open
/// (or written off) censored. Tested against lifelines' `KaplanMeierFitter`.
public struct KaplanMeier: Sendable, Hashable, Codable {
    /// The distinct event times, increasing.
    public var times: [Double]
    /// S(t) from each of `times` on.
    public var survival: [Double]

    public init(times: [Double], survival: [Double]) {
        self.times = times
        self.survival = survival
    }

    /// `durations[i]`: days observed; `events[i]`: paid then (false: still open, censored).
    public static func fit(durations: [Double], events: [Bool]) -> KaplanMeier {
        let order = durations.indices.sorted { durations[$0] < durations[$1] }
        var atRisk = Double(durations.count)
        var s = 1.0
        var times: [Double] = []
        var survival: [Double] = []
        var i = 0
        while i < order.count {
            let t = durations[order[i]]
            var deaths = 0.0
            var leaving = 0.0
            while i < order.count && durations[order[i]] == t {
                if events[order[i]] { deaths += 1 }
                leaving += 1
                i += 1
            }
            if deaths > 0 {
                s *= 1 - deaths / atRisk
                times.append(t)
                survival.append(s)
            }
            atRisk -= leaving
        }
        return KaplanMeier(times: times, survival: survival)
    }

    /// S(t): the share still unpaid after `t` days.
    public func survival(at t: Double) -> Double {
        // The last event time at or before t.
        var low = 0
        var high = times.count
        while low < high {
            let mid = (low + high) / 2
            if times[mid] <= t { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? 1 : survival[low - 1]
    }

    /// The days after which half of what was still unpaid at `age` days is paid: the smallest
    /// event time t ≥ age with S(t) ≤ S(age) / 2. Nil when the curve never gets there (the data
    /// does not say).
    public func medianDays(after age: Double = 0) -> Double? {
        let target = survival(at: age) / 2
        for (t, s) in zip(times, survival) where t >= age && s <= target { return t }
        return nil
    }
}
