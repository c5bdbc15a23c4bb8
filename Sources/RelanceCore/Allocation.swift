/// How each item of one debtor stands on a date, derived from the invoices and the movements
/// dated up to it (never stored: an outstanding amount that is always recomputed cannot drift).
///
/// Rules (DESIGN.md, "Receivables and the dunning plan"):
/// - events are taken in date order; on one day, invoices first, then credit notes, payments,
///   write-offs, each kind by id;
/// - a payment or credit note naming an invoice settles that invoice's oldest instalments first;
///   what exceeds it, and every payment naming no invoice, becomes the debtor's credit in that
///   currency, which settles the oldest open items first (due date, then invoice, then
///   instalment), including invoices issued later;
/// - a write-off ends what is left of its invoice;
/// - no arithmetic ever mixes currencies.
public struct ItemStanding: Sendable, Hashable {
    public enum Settlement: String, Sendable, Hashable {
        case paid
        case writtenOff = "written_off"
    }

    public var id: ItemID
    public var dueOn: CivilDate
    public var amount: Int64
    public var currency: String
    public var outstanding: Int64
    /// Set once nothing is left: when, and how.
    public var settled: (on: CivilDate, by: Settlement)? {
        get { settledOn.map { ($0, settledBy ?? .paid) } }
        set {
            settledOn = newValue?.on
            settledBy = newValue?.by
        }
    }
    var settledOn: CivilDate?
    var settledBy: Settlement?
}

public struct DebtorStanding: Sendable {
    /// Every item of an invoice issued on or before the date, oldest due first.
    public var items: [ItemStanding]
    /// Unallocated money left per currency (an overpayment).
    public var credit: [String: Int64]
    /// The last day with a payment at the end of which the debtor still owed something (for `after_payment`).
    public var lastPartialPayment: CivilDate?

    public static func compute(invoices: [ReceivableInvoice], movements: [ReceivableMovement], on date: CivilDate) -> DebtorStanding {
        enum Event {
            case issue(ReceivableInvoice)
            case settle(id: String, invoice: String?, amount: Int64, currency: String?, isPayment: Bool)
            case writeOff(String)
        }
        var events: [(date: CivilDate, rank: Int, key: String, event: Event)] = []
        for invoice in invoices where invoice.issuedOn <= date {
            events.append((invoice.issuedOn, 0, invoice.number, .issue(invoice)))
        }
        for movement in movements {
            switch movement {
            case .creditNote(let id, let invoice, let amount, let on) where on <= date:
                events.append((on, 1, id, .settle(id: id, invoice: invoice, amount: amount, currency: nil, isPayment: false)))
            case .payment(let id, let amount, let currency, let on, let invoice) where on <= date:
                events.append((on, 2, id, .settle(id: id, invoice: invoice, amount: amount, currency: currency, isPayment: true)))
            case .writeOff(let invoice, let on) where on <= date:
                events.append((on, 3, invoice, .writeOff(invoice)))
            default: break
            }
        }
        events.sort { ($0.date, $0.rank, $0.key) < ($1.date, $1.rank, $1.key) }

        var items: [ItemStanding] = []
        var index: [String: [Int]] = [:]  // invoice number → positions in `items`
        var credit: [String: Int64] = [:]
        var lastPartial: CivilDate?

        func settle(_ position: Int, _ amount: inout Int64, on day: CivilDate) {
            guard items[position].outstanding > 0, amount > 0 else { return }
            let taken = min(items[position].outstanding, amount)
            items[position].outstanding -= taken
            amount -= taken
            if items[position].outstanding == 0 { items[position].settled = (day, .paid) }
        }
        func applyCredit(_ currency: String, on day: CivilDate) {
            guard var left = credit[currency], left > 0 else { return }
            let open = items.indices.filter { items[$0].currency == currency && items[$0].outstanding > 0 }
                .sorted { (items[$0].dueOn, items[$0].id) < (items[$1].dueOn, items[$1].id) }
            for position in open where left > 0 { settle(position, &left, on: day) }
            credit[currency] = left
        }

        var paidOn: CivilDate?
        /// At the end of a day with a payment: whether the debtor still owes something.
        func closeDay() {
            if let day = paidOn, items.contains(where: { $0.outstanding > 0 }) { lastPartial = day }
            paidOn = nil
        }
        for (day, _, _, event) in events {
            if let open = paidOn, open != day { closeDay() }
            switch event {
            case .issue(let invoice):
                for item in invoice.items {
                    index[invoice.number, default: []].append(items.count)
                    items.append(
                        ItemStanding(id: item.id, dueOn: item.dueOn, amount: item.amount, currency: invoice.currency, outstanding: item.amount))
                    if item.amount == 0 { items[items.count - 1].settled = (day, .paid) }
                }
                applyCredit(invoice.currency, on: day)
            case .settle(_, let invoice, let amount, let givenCurrency, let isPayment):
                let positions = invoice.flatMap { index[$0] } ?? []
                let invoiceCurrency = positions.first.map { items[$0].currency }
                // A credit note takes its invoice's currency; one whose invoice is unknown waits.
                guard let currency = givenCurrency ?? invoiceCurrency else { continue }
                var left = amount
                if invoiceCurrency == currency {
                    for position in positions.sorted(by: { items[$0].dueOn < items[$1].dueOn }) where left > 0 { settle(position, &left, on: day) }
                }
                credit[currency, default: 0] += left
                applyCredit(currency, on: day)
                if isPayment { paidOn = day }
            case .writeOff(let invoice):
                for position in index[invoice] ?? [] where items[position].outstanding > 0 {
                    items[position].outstanding = 0
                    items[position].settled = (day, .writtenOff)
                }
            }
        }
        closeDay()
        items.sort { ($0.dueOn, $0.id) < ($1.dueOn, $1.id) }
        return DebtorStanding(items: items, credit: credit.filter { $0.value > 0 }, lastPartialPayment: lastPartial)
    }
}
