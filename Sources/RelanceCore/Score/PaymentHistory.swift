import Foundation

/// One invoice reduced to what the risk score reads: its dates, its amount, and when it was paid,
/// written off, disputed and reminded (days as `CivilDate.dayNumber`).
public struct ScoredInvoice: Sendable, Hashable {
    public var number: String
    public var issuedOn: Int
    public var dueOn: Int
    /// In major units of its currency (the score compares a debtor's amounts with each other).
    public var amount: Double
    /// The day its last item was settled by payments or credit notes; nil while open.
    public var paidOn: Int?
    public var writtenOffOn: Int?
    /// The day its first dispute was opened.
    public var disputedOn: Int?
    /// The days reminders went out about it.
    public var reminders: [Int]

    public init(
        number: String, issuedOn: Int, dueOn: Int, amount: Double, paidOn: Int? = nil, writtenOffOn: Int? = nil, disputedOn: Int? = nil,
        reminders: [Int] = []
    ) {
        self.number = number
        self.issuedOn = issuedOn
        self.dueOn = dueOn
        self.amount = amount
        self.paidOn = paidOn
        self.writtenOffOn = writtenOffOn
        self.disputedOn = disputedOn
        self.reminders = reminders
    }

    /// Settled (paid or written off) before `day`.
    func settled(before day: Int) -> Bool {
        (paidOn.map { $0 < day } ?? false) || (writtenOffOn.map { $0 < day } ?? false)
    }

    /// Whether it was paid after its due date, as known on `day` (nil: not known yet, the due date
    /// has not passed). Written off counts as late: it was never paid on time.
    public func late(knownOn day: Int) -> Bool? {
        guard dueOn < day else { return nil }
        if let paidOn, paidOn <= dueOn { return false }
        return true
    }

    /// Days past the due date on `day`: until it was paid, or still running.
    func daysLate(on day: Int) -> Int {
        let end = paidOn.map { min($0, day) } ?? day
        return max(0, end - dueOn)
    }
}

/// A debtor's invoices, oldest issued first.
public struct DebtorHistory: Sendable, Hashable {
    public var debtor: String
    public var kind: DebtorKind
    public var invoices: [ScoredInvoice]

    public init(debtor: String, kind: DebtorKind, invoices: [ScoredInvoice]) {
        self.debtor = debtor
        self.kind = kind
        self.invoices = invoices.sorted { ($0.issuedOn, $0.number) < ($1.issuedOn, $1.number) }
    }

    /// From the receivables ledger's view of one debtor: payments allocated by the ledger's own
    /// rules (`DebtorStanding`), disputes and the reminders each item took.
    public init(_ snapshot: DebtorSnapshot) {
        let standing = DebtorStanding.compute(invoices: snapshot.invoices, movements: snapshot.movements, on: CivilDate(year: 9999, month: 12, day: 31))
        var paid: [String: Int] = [:]
        var open: Set<String> = []
        var writtenOff: [String: Int] = [:]
        for item in standing.items {
            switch item.settled {
            case .some((let on, .paid)): paid[item.id.invoice] = max(paid[item.id.invoice] ?? on.dayNumber, on.dayNumber)
            case .some((let on, .writtenOff)): writtenOff[item.id.invoice] = on.dayNumber
            case .none: open.insert(item.id.invoice)
            }
        }
        var disputed: [String: Int] = [:]
        for case .dispute(_, let invoice, let opened, _, _) in snapshot.movements {
            disputed[invoice] = min(disputed[invoice] ?? opened.dayNumber, opened.dayNumber)
        }
        var reminders: [String: [Int]] = [:]
        for (item, steps) in snapshot.taken { reminders[item.invoice, default: []] += steps.map(\.on.dayNumber) }
        self.init(
            debtor: snapshot.debtor.debtor.id, kind: snapshot.debtor.debtor.kind,
            invoices: snapshot.invoices.map { invoice in
                ScoredInvoice(
                    number: invoice.number, issuedOn: invoice.issuedOn.dayNumber, dueOn: invoice.dueOn.dayNumber,
                    amount: MinorAmount(units: invoice.amount, currency: invoice.currency).major,
                    paidOn: open.contains(invoice.number) || writtenOff[invoice.number] != nil ? nil : paid[invoice.number],
                    writtenOffOn: writtenOff[invoice.number], disputedOn: disputed[invoice.number], reminders: (reminders[invoice.number] ?? []).sorted())
            })
    }
}
