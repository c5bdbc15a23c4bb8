import Foundation
import RelanceCore

extension RelanceConfiguration {
    /// `score:` — the risk score (docs/score.md).
    public struct Score: Sendable, Decodable {
        /// When the daemon refits the models on the history known that day (`weekly`: Sunday
        /// 03:00, in `defaults.timezone`; `off`: only `relance score --train`).
        public var schedule = Schedule("weekly") ?? .off
        /// A probability of late payment at or above which the planner adds a courtesy `pre_due`
        /// reminder to the item, on a ladder without one.
        public var preDueThreshold = 0.5
        enum CodingKeys: String, CodingKey, CaseIterable {
            case schedule
            case preDueThreshold = "pre_due_threshold"
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            schedule = try c.schedule(.schedule, or: schedule)
            preDueThreshold = try c.value(.preDueThreshold, or: preDueThreshold)
            guard preDueThreshold > 0, preDueThreshold < 1 else { throw c.invalid(.preDueThreshold, "a probability between 0 and 1, exclusive") }
        }
    }
}
