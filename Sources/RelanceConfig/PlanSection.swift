import Foundation
import RelanceCore

extension RelanceConfiguration {
    /// `plan:` — the dunning ladder and its rules (DESIGN.md "Receivables and the dunning plan").
    public struct Plan: Sendable, Decodable {
        /// When the daemon imports `spool/receivables/` and commits a plan (`daily 07:30`,
        /// `weekly mon 07:00`, `every 1h`, `off`), in `defaults.timezone`.
        public var schedule = Schedule.off
        public var ladders: [String: Ladder] = ["default": PlanRules.defaultLadder]
        public var minGap = 7
        public var afterPayment = 7
        /// Minor units per currency.
        public var minAmount: [String: Int64] = ["EUR": 1500]
        public var penaltyRate: Double? = nil

        enum CodingKeys: String, CodingKey, CaseIterable {
            case schedule, ladders
            case minGap = "min_gap"
            case afterPayment = "after_payment"
            case minAmount = "min_amount"
            case penaltyRate = "penalty_rate"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            schedule = try c.schedule(.schedule, or: schedule)
            if let given: [String: [StepSetting]] = try c.value(.ladders) {
                ladders = [:]
                for (name, steps) in given {
                    let ladder = Ladder(name: name, steps: steps.map(\.step))
                    if let problem = Ladder.problem(ladder.steps) { throw c.invalid(.ladders, "\(name): \(problem)") }
                    ladders[name] = ladder
                }
                guard ladders["default"] != nil else { throw c.invalid(.ladders, "a ladder named 'default' is required (debtors without a ladder climb it)") }
            }
            if let text: String = try c.value(.minGap) {
                guard let days = Days.parse(text), days >= 0 else { throw c.invalid(.minGap, "'\(text.debugQuoted)' is not a number of days such as 7d") }
                minGap = days
            }
            if let text: String = try c.value(.afterPayment) {
                guard let days = Days.parse(text), days >= 0 else { throw c.invalid(.afterPayment, "'\(text.debugQuoted)' is not a number of days such as 7d") }
                afterPayment = days
            }
            for (currency, text) in try c.value(.minAmount, or: [String: String]()) {
                guard Currency.isKnown(currency), let amount = MinorAmount(text, currency: currency) else {
                    throw c.invalid(.minAmount, "\(currency): '\(text.debugQuoted)' is not an amount of a known currency such as EUR: \"15.00\"")
                }
                minAmount[currency] = amount.units
            }
            penaltyRate = try c.value(.penaltyRate)
            if let rate = penaltyRate, !(0...100).contains(rate) { throw c.invalid(.penaltyRate, "an annual rate in percent, between 0 and 100") }
        }

        public var rules: PlanRules {
            PlanRules(ladders: ladders, minGap: minGap, afterPayment: afterPayment, minAmount: minAmount, penaltyRate: penaltyRate)
        }
    }

    /// One ladder step as written: `{ stage: reminder_1, at: 7d, channels: [email] }`.
    struct StepSetting: Decodable {
        var step: LadderStep

        enum CodingKeys: String, CodingKey, CaseIterable { case stage, at, channels, action }

        init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            let stage: String = try c.decode(String.self, forKey: .stage)
            let atText: String = try c.decode(String.self, forKey: .at)
            guard let at = Days.parse(atText) else { throw c.invalid(.at, "'\(atText.debugQuoted)' is not a number of days such as 7d or -3d") }
            var channels: [Channel] = []
            for name in try c.value(.channels, or: [String]()) {
                guard let channel = Channel(rawValue: name) else { throw c.invalid(.channels, "'\(name.debugQuoted)' is not a channel (email, sms)") }
                channels.append(channel)
            }
            let actionText = try c.value(.action, or: "send")
            guard let action = LadderStep.Action(rawValue: actionText) else { throw c.invalid(.action, "must be send or handoff") }
            step = LadderStep(stage: stage, at: at, channels: channels, action: action)
        }
    }

    /// `receivables:` — imports.
    public struct Receivables: Sendable, Decodable {
        /// Due date of an invoice whose source has none (FEC), when its debtor has no terms.
        public var defaultTerms = PaymentTerms(kind: .days, days: 30)
        public var fec = FEC()

        enum CodingKeys: String, CodingKey, CaseIterable {
            case defaultTerms = "default_terms"
            case fec
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            if let text: String = try c.value(.defaultTerms) {
                guard let terms = PaymentTerms(text) else {
                    throw c.invalid(.defaultTerms, "'\(text.debugQuoted)' is not payment terms such as 30d, 45d-eom or eom+45d")
                }
                defaultTerms = terms
            }
            fec = try c.value(.fec, or: fec)
        }
    }

    /// `receivables.fec:` — which lines of a FEC are receivables.
    public struct FEC: Sendable, Decodable {
        /// `CompteNum` prefixes of customer accounts.
        public var accounts = ["411"]
        /// Journals whose credits on a customer account are credit notes (elsewhere: payments).
        public var salesJournals = ["VE", "VT"]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case accounts
            case salesJournals = "sales_journals"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            accounts = try c.value(.accounts, or: accounts)
            salesJournals = try c.value(.salesJournals, or: salesJournals)
            guard !accounts.isEmpty else { throw c.invalid(.accounts, "at least one account prefix, such as 411") }
        }
    }
}

/// `7d`, `-3d`: a signed number of days.
enum Days {
    static func parse(_ text: String) -> Int? {
        let negative = text.hasPrefix("-")
        let body = negative ? text.dropFirst() : Substring(text)
        guard body.hasSuffix("d"), let n = ASCIIDigits.integer(body.dropLast()), n <= 3650 else { return nil }
        return negative ? -n : n
    }
}
