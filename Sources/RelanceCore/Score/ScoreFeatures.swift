import Foundation

/// The features of the risk score: what was known of an invoice and its debtor **on its issue
/// date**, and nothing after (a payment made later is invisible). The debtor's own history weighs
/// most: aggregates of a customer's past behaviour predict better than an invoice's own fields.
public enum ScoreFeatures {
    /// Names, in order, as the model's coefficients and the explanations use them.
    public static let names = [
        "has_history", "settled_invoices", "share_paid_late", "late_odds", "recent_late_odds", "mean_days_late", "days_late_last_3", "mean_days_to_settle", "open_items",
        "overdue_items", "overdue_amount", "amount_vs_mean", "amount", "disputed", "terms_days", "month_sin", "month_cos", "december", "august", "business", "reminders_needed",
        "share_disputed",
    ]

    /// What each one means, for `relance score --explain` and docs/score.md.
    public static let descriptions: [String: String] = [
        "has_history": "the debtor has invoices whose due date had passed",
        "settled_invoices": "invoices the debtor had paid (log)",
        "share_paid_late": "share of its invoices due before that were paid late (or not at all)",
        "late_odds": "log-odds of paying late from its history, smoothed towards even odds when it is short",
        "recent_late_odds": "the same, its most recent invoices weighing most",
        "mean_days_late": "mean days late of its invoices due before",
        "days_late_last_3": "days late on its last 3 invoices due",
        "mean_days_to_settle": "mean days from issue to payment of its paid invoices (log)",
        "open_items": "its invoices open on the day (log)",
        "overdue_items": "its invoices overdue on the day (log)",
        "overdue_amount": "what it owed past due on the day (log)",
        "amount_vs_mean": "this amount against the debtor's mean (log ratio)",
        "amount": "this amount (log)",
        "disputed": "this invoice is disputed (on the day)",
        "terms_days": "days from issue to due date",
        "month_sin": "month of issue (seasonality)",
        "month_cos": "month of issue (seasonality)",
        "december": "issued in December (year-end)",
        "august": "issued in August (summer holidays)",
        "business": "a business, not a consumer",
        "reminders_needed": "reminders its invoices needed before (log)",
        "share_disputed": "share of its invoices disputed before",
    ]

    /// The features of `history.invoices[index]` on `day` (its issue date when training and
    /// backtesting; today for an open item): only what happened strictly before `day`.
    public static func compute(_ history: DebtorHistory, index: Int, on day: Int) -> [Double] {
        let invoice = history.invoices[index]
        var known = 0
        var late = 0
        var daysLate = 0.0
        var lastDue: [(due: Int, late: Int, isLate: Bool)] = []
        var settled = 0
        var daysToSettle = 0.0
        var open = 0
        var overdue = 0
        var overdueAmount = 0.0
        var amounts = 0.0
        var past = 0
        var reminders = 0
        var disputed = 0
        for (j, other) in history.invoices.enumerated() where j != index && other.issuedOn < day {
            past += 1
            amounts += other.amount
            reminders += other.reminders.lazy.filter { $0 < day }.count
            if let on = other.disputedOn, on < day { disputed += 1 }
            if let isLate = other.late(knownOn: day) {
                known += 1
                if isLate { late += 1 }
                let d = other.daysLate(on: day)
                daysLate += Double(d)
                lastDue.append((other.dueOn, d, isLate))
            }
            if let paid = other.paidOn, paid < day {
                settled += 1
                daysToSettle += Double(paid - other.issuedOn)
            }
            if !other.settled(before: day) {
                open += 1
                if other.dueOn < day {
                    overdue += 1
                    overdueAmount += other.amount
                }
            }
        }
        lastDue.sort { $0.due > $1.due }
        let recent = lastDue.prefix(3)
        // Each older invoice weighs 0.8 of the next: behaviour drifts.
        var weight = 1.0
        var weightedLate = 0.0
        var weights = 0.0
        for outcome in lastDue {
            weights += weight
            if outcome.isLate { weightedLate += weight }
            weight *= 0.8
        }
        let month = Double(CivilDate(dayNumber: invoice.issuedOn).month)
        let meanAmount = past > 0 ? amounts / Double(past) : 0
        return [
            known > 0 ? 1 : 0,
            log1p(Double(settled)),
            known > 0 ? Double(late) / Double(known) : 0,
            log((Double(late) + 1) / (Double(known - late) + 1)),
            log((weightedLate + 1) / (weights - weightedLate + 1)),
            known > 0 ? daysLate / Double(known) : 0,
            recent.isEmpty ? 0 : Double(recent.reduce(0) { $0 + $1.late }) / Double(recent.count),
            settled > 0 ? log1p(max(0, daysToSettle / Double(settled))) : 0,
            log1p(Double(open)),
            log1p(Double(overdue)),
            log1p(max(0, overdueAmount)),
            meanAmount > 0 && invoice.amount > 0 ? log(invoice.amount / meanAmount) : 0,
            log1p(max(0, invoice.amount)),
            invoice.disputedOn.map { $0 <= day } == true ? 1 : 0,
            Double(invoice.dueOn - invoice.issuedOn),
            sin(2 * .pi * month / 12),
            cos(2 * .pi * month / 12),
            month == 12 ? 1 : 0,
            month == 8 ? 1 : 0,
            history.kind == .business ? 1 : 0,
            log1p(Double(reminders)),
            past > 0 ? Double(disputed) / Double(past) : 0,
        ]
    }
}
