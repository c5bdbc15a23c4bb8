import Foundation

/// An exact amount in a currency's minor units (cents for EUR): receivables arithmetic never
/// goes through binary floating point, and never adds two currencies.
public struct MinorAmount: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var units: Int64
    public var currency: String

    public init(units: Int64, currency: String) {
        self.units = units
        self.currency = currency
    }

    /// Parses `"1234.50"` for `currency` (a known ISO 4217 code); nil when malformed, signed, or
    /// with more decimals than the currency has. Zero is accepted (a fully credited invoice).
    public init?(_ text: String, currency: String) {
        guard let digits = Currency.minorUnits[currency] else { return nil }
        let utf8 = Array(text.utf8)
        let isDigit = ASCIIDigits.isDigit
        let integer = utf8.prefix(while: isDigit)
        let rest = utf8.dropFirst(integer.count)
        var decimals: ArraySlice<UInt8> = []
        if let dot = rest.first {
            guard dot == UInt8(ascii: "."), rest.count > 1 else { return nil }
            decimals = rest.dropFirst()
        }
        guard (1...15).contains(integer.count), decimals.allSatisfy(isDigit), decimals.count <= digits else { return nil }
        var units: Int64 = 0
        for b in integer { units = units * 10 + Int64(b - UInt8(ascii: "0")) }
        for i in 0..<digits {
            let d = i < decimals.count ? Int64(decimals[decimals.startIndex + i] - UInt8(ascii: "0")) : 0
            units = units * 10 + d
        }
        self.init(units: units, currency: currency)
    }

    /// The decimal text, with exactly the currency's minor digits: `"1234.50"`.
    public var text: String {
        let digits = Currency.minorUnits[currency] ?? 2
        let sign = units < 0 ? "-" : ""
        let magnitude = units.magnitude
        guard digits > 0 else { return sign + String(magnitude) }
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let fraction = String(magnitude % scale)
        return sign + String(magnitude / scale) + "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }

    public var description: String { "\(text) \(currency)" }

    /// In the currency's major units (euros), for charts and gauges only: never for arithmetic.
    public var major: Double {
        var scale = 1.0
        for _ in 0..<(Currency.minorUnits[currency] ?? 2) { scale *= 10 }
        return Double(units) / scale
    }

    public static func < (lhs: MinorAmount, rhs: MinorAmount) -> Bool { lhs.units < rhs.units }
}

/// One instalment of an invoice: due on its own date, settled and chased on its own.
public struct Instalment: Sendable, Hashable {
    public var dueOn: CivilDate
    public var amount: Int64

    public init(dueOn: CivilDate, amount: Int64) {
        self.dueOn = dueOn
        self.amount = amount
    }
}

/// An invoice of the receivables ledger (its latest amendment).
public struct ReceivableInvoice: Sendable, Hashable {
    public var number: String
    public var debtor: String
    public var issuedOn: CivilDate
    public var dueOn: CivilDate
    public var amount: Int64
    public var currency: String
    /// Empty: the invoice is one item. Else each instalment is an item; their amounts add up to `amount`.
    public var instalments: [Instalment]
    public var paymentURL: String?
    public var document: String?

    public init(
        number: String, debtor: String, issuedOn: CivilDate, dueOn: CivilDate, amount: Int64, currency: String, instalments: [Instalment] = [],
        paymentURL: String? = nil, document: String? = nil
    ) {
        self.number = number
        self.debtor = debtor
        self.issuedOn = issuedOn
        self.dueOn = dueOn
        self.amount = amount
        self.currency = currency
        self.instalments = instalments
        self.paymentURL = paymentURL
        self.document = document
    }

    /// The items the ladder chases: the instalments (numbered from 1), else the invoice itself.
    public var items: [(id: ItemID, dueOn: CivilDate, amount: Int64)] {
        if instalments.isEmpty { return [(ItemID(invoice: number, instalment: nil), dueOn, amount)] }
        return instalments.enumerated().map { (ItemID(invoice: number, instalment: $0.offset + 1), $0.element.dueOn, $0.element.amount) }
    }
}

/// An open item: an invoice without instalments, or one instalment of an invoice.
public struct ItemID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var invoice: String
    /// 1-based; nil for an invoice without instalments.
    public var instalment: Int?

    public init(invoice: String, instalment: Int?) {
        self.invoice = invoice
        self.instalment = instalment
    }

    public var description: String { instalment.map { "\(invoice)#\($0)" } ?? invoice }

    public static func < (lhs: ItemID, rhs: ItemID) -> Bool {
        (lhs.invoice, lhs.instalment ?? 0) < (rhs.invoice, rhs.instalment ?? 0)
    }
}

/// What an invoice-or-debtor scoped record (a promise, a hold) applies to.
public enum ReceivableScope: Sendable, Hashable {
    case invoice(String)
    case debtor

    func covers(_ invoice: String) -> Bool {
        switch self {
        case .debtor: true
        case .invoice(let number): number == invoice
        }
    }
}

/// A dated movement or state of the receivables ledger. Movements are immutable by id.
public enum ReceivableMovement: Sendable, Hashable {
    /// Money received; with an invoice, allocated to it first (its oldest instalments first).
    case payment(id: String, amount: Int64, currency: String, paidOn: CivilDate, invoice: String?)
    /// A credit note settles its invoice like a payment.
    case creditNote(id: String, invoice: String, amount: Int64, issuedOn: CivilDate)
    /// What is left of the invoice is written off: never chased again.
    case writeOff(invoice: String, on: CivilDate)
    /// Holds the invoice from `openedOn` through `closedOn` (open-ended while not closed).
    case dispute(id: String, invoice: String, openedOn: CivilDate, closedOn: CivilDate?, reason: String)
    /// Holds the scope through `until`; `madeOn` (when known) is when it was given.
    case promise(id: String, scope: ReceivableScope, amount: Int64?, until: CivilDate, madeOn: CivilDate?)
    /// Holds the scope through `until` (for good when nil) from `from` (when known).
    case hold(id: String, scope: ReceivableScope, until: CivilDate?, reason: String, from: CivilDate?)

    /// When it takes effect.
    public var date: CivilDate? {
        switch self {
        case .payment(_, _, _, let on, _), .creditNote(_, _, _, let on), .writeOff(_, let on): on
        case .dispute(_, _, let opened, _, _): opened
        case .promise(_, _, _, _, let made): made
        case .hold(_, _, _, _, let from): from
        }
    }
}

/// A receivable debtor: the reminder record's debtor, with its terms and ladder.
public struct ReceivableDebtor: Sendable, Hashable {
    public var debtor: Debtor
    public var paymentTerms: PaymentTerms?
    /// The ladder's name in `plan.ladders` (nil: `default`).
    public var ladder: String?

    public init(debtor: Debtor, paymentTerms: PaymentTerms? = nil, ladder: String? = nil) {
        self.debtor = debtor
        self.paymentTerms = paymentTerms
        self.ladder = ladder
    }

    /// The channels it can receive: an email address, a phone number that takes SMS.
    public var reachable: [Channel] {
        var channels: [Channel] = []
        if debtor.email != nil { channels.append(.email) }
        if let phone = debtor.phone, PhoneNumber.smsProblem(phone) == nil { channels.append(.sms) }
        return channels
    }
}

/// Payment terms, which give an invoice its due date when the source has none (FEC):
/// `30d` (30 days), `45d-eom` (45 days, then the end of that month), `eom+45d` (the end of the
/// month of issue, then 45 days).
public struct PaymentTerms: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case days
        case daysThenEndOfMonth
        case endOfMonthThenDays
    }

    public var kind: Kind
    public var days: Int

    public init(kind: Kind, days: Int) {
        self.kind = kind
        self.days = days
    }

    public init?(_ text: String) {
        func days(_ s: Substring) -> Int? {
            guard s.hasSuffix("d"), let n = ASCIIDigits.integer(s.dropLast()), n <= 3650 else { return nil }
            return n
        }
        if text.hasPrefix("eom+"), let n = days(text.dropFirst(4)) {
            self.init(kind: .endOfMonthThenDays, days: n)
        } else if text.hasSuffix("-eom"), let n = days(text.dropLast(4)) {
            self.init(kind: .daysThenEndOfMonth, days: n)
        } else if let n = days(Substring(text)) {
            self.init(kind: .days, days: n)
        } else {
            return nil
        }
    }

    public var description: String {
        switch kind {
        case .days: "\(days)d"
        case .daysThenEndOfMonth: "\(days)d-eom"
        case .endOfMonthThenDays: "eom+\(days)d"
        }
    }

    /// The due date of an invoice issued on `issued`.
    public func dueDate(issued: CivilDate) -> CivilDate {
        switch kind {
        case .days: return issued.adding(days: days)
        case .daysThenEndOfMonth: return issued.adding(days: days).endOfMonth
        case .endOfMonthThenDays: return issued.endOfMonth.adding(days: days)
        }
    }
}

extension CivilDate {
    /// The last day of this date's month.
    public var endOfMonth: CivilDate { CivilDate(year: year, month: month, day: CivilDate.daysIn(month: month, year: year)) }
}

extension ReceivableMovement {
    /// Its fields as strings, keys as in the feed (stored as a small JSON object, compared for
    /// idempotence: the same key with other content is a conflict).
    public var fields: [String: String] {
        var f: [String: String] = [:]
        func put(_ key: String, _ value: (any CustomStringConvertible)?) { if let value { f[key] = value.description } }
        switch self {
        case .payment(let id, let amount, let currency, let paidOn, let invoice):
            f["type"] = "payment"
            (f["id"], f["amount"], f["currency"], f["paid_on"]) = (id, String(amount), currency, paidOn.description)
            put("invoice", invoice)
        case .creditNote(let id, let invoice, let amount, let issuedOn):
            f["type"] = "credit_note"
            (f["id"], f["invoice"], f["amount"], f["issued_on"]) = (id, invoice, String(amount), issuedOn.description)
        case .writeOff(let invoice, let on):
            (f["type"], f["invoice"], f["on"]) = ("write_off", invoice, on.description)
        case .dispute(let id, let invoice, let openedOn, let closedOn, let reason):
            (f["type"], f["id"], f["invoice"], f["opened_on"], f["reason"]) = ("dispute", id, invoice, openedOn.description, reason)
            put("closed_on", closedOn)
        case .promise(let id, let scope, let amount, let until, let madeOn):
            (f["type"], f["id"], f["until"]) = ("promise", id, until.description)
            if case .invoice(let number) = scope { f["invoice"] = number }
            put("amount", amount)
            put("on", madeOn)
        case .hold(let id, let scope, let until, let reason, let from):
            (f["type"], f["id"], f["reason"]) = ("hold", id, reason)
            if case .invoice(let number) = scope { f["invoice"] = number }
            put("until", until)
            put("from", from)
        }
        return f
    }

    /// Reads back what `fields` wrote (amounts in minor units); nil if it is not such a record.
    public init?(fields f: [String: String]) {
        let date = { (key: String) in f[key].flatMap(CivilDate.init) }
        let scope: ReceivableScope = f["invoice"].map { .invoice($0) } ?? .debtor
        switch f["type"] {
        case "payment":
            guard let id = f["id"], let amount = f["amount"].flatMap({ Int64($0) }), let currency = f["currency"], let paid = date("paid_on") else {
                return nil
            }
            self = .payment(id: id, amount: amount, currency: currency, paidOn: paid, invoice: f["invoice"])
        case "credit_note":
            guard let id = f["id"], let invoice = f["invoice"], let amount = f["amount"].flatMap({ Int64($0) }), let on = date("issued_on") else { return nil }
            self = .creditNote(id: id, invoice: invoice, amount: amount, issuedOn: on)
        case "write_off":
            guard let invoice = f["invoice"], let on = date("on") else { return nil }
            self = .writeOff(invoice: invoice, on: on)
        case "dispute":
            guard let id = f["id"], let invoice = f["invoice"], let opened = date("opened_on") else { return nil }
            self = .dispute(id: id, invoice: invoice, openedOn: opened, closedOn: date("closed_on"), reason: f["reason"] ?? "")
        case "promise":
            guard let id = f["id"], let until = date("until") else { return nil }
            self = .promise(id: id, scope: scope, amount: f["amount"].flatMap { Int64($0) }, until: until, madeOn: date("on"))
        case "hold":
            guard let id = f["id"] else { return nil }
            self = .hold(id: id, scope: scope, until: date("until"), reason: f["reason"] ?? "", from: date("from"))
        default:
            return nil
        }
    }

    /// Disputes, promises and holds are states that may change (a dispute is closed); payments,
    /// credit notes and write-offs are immutable.
    public var isAmendable: Bool {
        switch self {
        case .dispute, .promise, .hold: true
        case .payment, .creditNote, .writeOff: false
        }
    }

    /// The invoice it names, if any.
    public var invoice: String? {
        switch self {
        case .payment(_, _, _, _, let invoice): invoice
        case .creditNote(_, let invoice, _, _), .writeOff(let invoice, _), .dispute(_, let invoice, _, _, _): invoice
        case .promise(_, let scope, _, _, _), .hold(_, let scope, _, _, _):
            if case .invoice(let number) = scope { number } else { nil }
        }
    }
}
