/// The collection figures of one currency over one period, from receivables totals and credit
/// sales (DESIGN.md, "Reports"). Pure arithmetic on exact minor units; a ratio is nil when its
/// denominator is zero (no sales in the period: no DSO).
///
/// Definitions (printed with every report, `definitions`):
/// - **receivables** (AR): the outstanding amount of every item of an invoice issued on or
///   before the date, after the payments, credit notes and write-offs dated on or before it;
///   disputed items are counted or not per the report's variant;
/// - **current**: the part of AR not due yet (due on or after the date); **overdue**: the rest;
/// - **credit sales**: the amounts of the invoices issued in the window (credit notes are not
///   deducted: they settle receivables);
/// - **DSO simple** = AR at the end ÷ credit sales of the period × days of the period;
/// - **DSO countback**: AR at the end is matched against each month's credit sales, most
///   recent month first: a month whose sales AR still exceeds counts whole (its days, and AR
///   less its sales goes on), the first month it does not counts for the fraction AR ÷ its sales
///   of its days; at most `countbackLimit` months (then the figure is a lower bound);
/// - **best possible DSO** (BPDSO) = current AR at the end ÷ credit sales × days;
/// - **ADD** (average days delinquent) = DSO simple − BPDSO;
/// - **CEI** (collection effectiveness index) = (AR at the start + credit sales − AR at the end)
///   ÷ (AR at the start + credit sales − current AR at the end) × 100.
public enum CollectionMetrics {
    /// How far countback DSO walks back at most.
    public static let countbackLimit = 24

    /// One window of credit sales: `days` long, `sales` invoiced in it.
    public struct Window: Sendable, Hashable {
        public var days: Int
        public var sales: Int64

        public init(days: Int, sales: Int64) {
            self.days = days
            self.sales = sales
        }
    }

    public static func simpleDSO(receivables: Int64, windows: [Window]) -> Double? {
        let sales = windows.reduce(0) { $0 + $1.sales }
        guard sales > 0 else { return nil }
        return Double(receivables) / Double(sales) * Double(windows.reduce(0) { $0 + $1.days })
    }

    public static func bestPossibleDSO(current: Int64, windows: [Window]) -> Double? {
        simpleDSO(receivables: current, windows: windows)
    }

    /// `windows`: most recent first, as many as `countbackLimit`. `bounded` is true when the
    /// receivables exceed every window's sales (the figure is then at least this many days).
    public static func countbackDSO(receivables: Int64, windows: [Window]) -> (days: Double, bounded: Bool) {
        var remaining = receivables
        var days = 0.0
        for window in windows.prefix(countbackLimit) {
            guard remaining > 0 else { return (days, false) }
            if window.sales > 0, remaining < window.sales {
                return (days + Double(remaining) / Double(window.sales) * Double(window.days), false)
            }
            remaining -= window.sales
            days += Double(window.days)
        }
        return (days, remaining > 0)
    }

    public static func cei(start: Int64, sales: Int64, end: Int64, currentEnd: Int64) -> Double? {
        let denominator = start + sales - currentEnd
        guard denominator > 0 else { return nil }
        return Double(start + sales - end) / Double(denominator) * 100
    }
}
