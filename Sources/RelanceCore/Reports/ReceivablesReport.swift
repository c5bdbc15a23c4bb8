import Foundation

/// The state of the receivables and how well they are collected, as of one date: aging, DSO
/// (simple and countback), best possible DSO, ADD, CEI, a 12-month trend and the top debtors,
/// per currency (amounts in different currencies are never added).
///
/// Reproducible: every figure as of `asOf` uses only what is dated on or before it (invoices by
/// their issue date, movements by theirs, plan steps by theirs), whenever it was imported. So a
/// report for a past date, produced later, is the one produced then — unless a movement was
/// back-dated into that past, which changes it by design.
public struct ReceivablesReport: Sendable {
    public var options: Options
    /// One entry per currency, in currency code order.
    public var currencies: [CurrencyFigures]
    /// Deliveries per channel, as they stood at the end of the report's day.
    public var channels: [ChannelFigures]
    /// The same per channel and dunning stage (bounce and opt-out rates per stage), stages in ladder order.
    public var channelsByStage: [ChannelFigures] = []
    /// Reminders sent by the report's date whose invoices the receivables ledger does not know
    /// (spool reminders about invoices never imported): counted, without amounts.
    public var unmatchedReminders: [String: Int]

    public struct Options: Sendable, Hashable {
        /// Whether disputed items count in the receivables (Upflow counts them in DSO; Agicap does not).
        public enum Disputed: String, Sendable, Hashable, CaseIterable {
            case included, excluded
        }

        public var asOf: CivilDate
        /// The DSO and CEI period, in months (1 to 12).
        public var months: Int
        public var disputed: Disputed
        /// How many debtors the top list keeps, per currency.
        public var top: Int

        /// The creditor's zone (`defaults.timezone`): the day a reminder left is its day there.
        public var zone: TimeZone

        public init(asOf: CivilDate, months: Int = 3, disputed: Disputed = .included, top: Int = 20, zone: TimeZone = .gmt) {
            self.asOf = asOf
            self.zone = zone
            self.months = min(12, max(1, months))
            self.disputed = disputed
            self.top = max(0, top)
        }
    }

    /// The aging buckets, by days past due on the report's date.
    public enum Bucket: String, Sendable, Hashable, CaseIterable {
        case notDue = "not_due"
        case days1to30 = "1_30"
        case days31to60 = "31_60"
        case days61to90 = "61_90"
        case over90 = "over_90"

        /// `daysOverdue` = the report's date − the due date: 0 or less is not due.
        public init(daysOverdue: Int) {
            switch daysOverdue {
            case ...0: self = .notDue
            case 1...30: self = .days1to30
            case 31...60: self = .days31to60
            case 61...90: self = .days61to90
            default: self = .over90
            }
        }
    }

    public struct Aging: Sendable, Hashable {
        public var amount: Int64 = 0
        public var count = 0
    }

    /// Receivables on one date.
    public struct Totals: Sendable, Hashable {
        public var receivables: Int64 = 0
        public var current: Int64 = 0
        public var overdue: Int64 = 0
        /// Outstanding on disputed items (in `receivables` or not, per the variant).
        public var disputed: Int64 = 0
    }

    /// DSO and its companions at one date, over the `months` before it.
    public struct Collection: Sendable, Hashable {
        public var date: CivilDate
        public var totals: Totals
        /// Credit sales of the period, and its length in days.
        public var sales: Int64
        public var days: Int
        public var dsoSimple: Double?
        public var dsoCountback: Double
        /// The countback walked `CollectionMetrics.countbackLimit` months and AR was still left.
        public var countbackBounded: Bool
        public var bestPossibleDSO: Double?
        public var add: Double? {
            guard let dsoSimple, let bestPossibleDSO else { return nil }
            return dsoSimple - bestPossibleDSO
        }
    }

    public struct TopDebtor: Sendable, Hashable {
        public var id: String
        public var name: String
        public var overdue: Int64
        /// The item overdue longest.
        public var oldest: ItemID
        public var oldestDueOn: CivilDate
        public var daysOverdue: Int
        /// The last contact and its stage: a reminder that reached a transport (from the spool or
        /// the plan) or a step the plan took (a hand-off), on or before the date.
        public var stage: String?
        public var lastContact: CivilDate?
        /// The highest P(paid late) of its open items (the risk score), nil without a fitted model.
        public var risk: Double? = nil
    }

    /// A debtor to call first: the most money expected late (Σ P(late) × outstanding of its open items).
    public struct CallFirst: Sendable, Hashable {
        public var id: String
        public var name: String
        public var atRisk: Int64
        public var outstanding: Int64
        /// Its riskiest open item and that item's P(late).
        public var invoice: String
        public var risk: Double
    }

    public struct CurrencyFigures: Sendable {
        public var currency: String
        public var aging: [Bucket: Aging]
        public var headline: Collection
        /// Receivables at the start of the period (for CEI).
        public var start: Totals
        public var cei: Double?
        /// At each of the last 12 month ends on or before `asOf`, oldest first.
        public var trend: [Collection]
        /// By overdue amount, largest first (then debtor id).
        public var top: [TopDebtor]
        /// What the reminders of each dunning stage recovered, by stage name.
        public var stages: [String: StageFigures]
        /// With a fitted risk model: the debtors with the most money expected late, most first.
        public var callFirst: [CallFirst] = []
    }

    /// What one dunning stage's reminders recovered, in one currency. A reminder counts at the
    /// day it left (its first attempt that reached a transport, in the creditor's zone); only
    /// payments and credit notes dated **after** that day count for it (a payment the same day
    /// may have come first). `covered` is what was outstanding on its invoices at the end of that
    /// day. A window of N days counts only the reminders whose N days are over by the report's date.
    public struct StageFigures: Sendable, Hashable {
        public var reminders = 0
        public var covered: Int64 = 0
        /// Reminders whose 7 (30) days are over, what they covered and what was paid on their
        /// invoices within those days.
        public var window7 = Window()
        public var window30 = Window()
        /// Days from the reminder to the payment that settled its last invoice, for the reminders
        /// whose invoices were all paid by the report's date.
        public var daysToPayment: [Int] = []

        public struct Window: Sendable, Hashable {
            public var reminders = 0
            public var covered: Int64 = 0
            public var paid: Int64 = 0
        }

        public var medianDaysToPayment: Double? {
            guard !daysToPayment.isEmpty else { return nil }
            let sorted = daysToPayment.sorted()
            let mid = sorted.count / 2
            return sorted.count % 2 == 1 ? Double(sorted[mid]) : Double(sorted[mid - 1] + sorted[mid]) / 2
        }
    }

    /// One channel's deliveries by status at the end of the report's day.
    public struct ChannelFigures: Sendable, Hashable {
        public var channel: String
        /// Nil: every stage.
        public var stage: String? = nil
        public var statuses: [String: Int]

        /// Messages that left: accepted by the transport, whatever became of them after.
        public var left: Int { ["sent", "delivered", "undelivered", "bounced"].reduce(0) { $0 + (statuses[$1] ?? 0) } }
        public var total: Int { statuses.values.reduce(0, +) }
        /// Delivered ÷ messages that left (email is "delivered" only when a report says so).
        public var deliveryRate: Double? { left > 0 ? Double(statuses["delivered"] ?? 0) / Double(left) * 100 : nil }
        public var bounceRate: Double? { left > 0 ? Double((statuses["bounced"] ?? 0) + (statuses["undelivered"] ?? 0)) / Double(left) * 100 : nil }
        /// Suppressed (the recipient opted out) ÷ every delivery.
        public var optOutRate: Double? { total > 0 ? Double(statuses["suppressed"] ?? 0) / Double(total) * 100 : nil }
    }
}

extension ReceivablesReport {
    /// Stage names in ladder order (the default ladder's, then the others by name).
    public static func ordered(stages: some Swift.Sequence<String>) -> [String] {
        let known = ["pre_due", "reminder_1", "reminder_2", "final_notice", "handoff"]
        return stages.sorted { a, b in
            let (i, j) = (known.firstIndex(of: a) ?? known.count, known.firstIndex(of: b) ?? known.count)
            return (i, a) < (j, b)
        }
    }
}

/// A reminder that reached a transport (sent, or in doubt), for the recovery figures.
public struct SentReminder: Sendable, Hashable {
    public var id: String
    public var stage: String
    /// Its first attempt that reached a transport.
    public var sentAt: Date
    public var invoices: [String]

    public init(id: String, stage: String, sentAt: Date, invoices: [String]) {
        self.id = id
        self.stage = stage
        self.sentAt = sentAt
        self.invoices = invoices
    }
}

extension CivilDate {
    /// The same day `months` months later (earlier when negative), clamped to the month's length;
    /// the last day of a month goes to the last day of the other.
    public func addingMonths(_ months: Int) -> CivilDate {
        let index = year * 12 + (month - 1) + months
        let (y, m) = (index / 12, index % 12 + 1)
        let length = CivilDate.daysIn(month: m, year: y)
        let isMonthEnd = day == CivilDate.daysIn(month: month, year: year)
        return CivilDate(year: y, month: m, day: isMonthEnd ? length : min(day, length))
    }

    /// The last day of the month before this date's, or this date when it is a month end.
    var lastMonthEnd: CivilDate {
        if day == CivilDate.daysIn(month: month, year: year) { return self }
        return CivilDate(year: year, month: month, day: 1).adding(days: -1)
    }
}
