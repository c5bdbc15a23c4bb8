import Foundation

/// One record of the receivables feed (DESIGN.md "Receivables and the dunning plan"), validated.
public enum ReceivableRecord: Sendable, Hashable {
    case debtor(ReceivableDebtor)
    /// `dueOn` nil: it comes from the debtor's payment terms (else `receivables.default_terms`) at import.
    case invoice(ParsedInvoice)
    /// One instalment of an invoice (CSV `--type instalment`), keyed by its due date.
    case instalment(invoice: String, dueOn: CivilDate, amount: String)
    /// A credit note: its amount is checked against its invoice's currency at import.
    case creditNote(id: String, invoice: String, amount: String, issuedOn: CivilDate)
    /// A movement, with the key it is immutable by and the debtor it concerns when the record names one.
    case movement(key: String, debtor: String?, ReceivableMovement)
}

/// An invoice as the feed gives it: amounts as text until its currency is known to the ledger.
public struct ParsedInvoice: Sendable, Hashable {
    public var number: String
    public var debtor: String
    public var issuedOn: CivilDate
    public var dueOn: CivilDate?
    public var amount: Int64
    public var currency: String
    public var instalments: [Instalment]
    public var paymentURL: String?
    public var document: String?

    public func resolved(terms: PaymentTerms) -> ReceivableInvoice {
        ReceivableInvoice(
            number: number, debtor: debtor, issuedOn: issuedOn, dueOn: dueOn ?? terms.dueDate(issued: issuedOn), amount: amount, currency: currency,
            instalments: instalments, paymentURL: paymentURL, document: document)
    }
}

/// Validates receivables records: every problem of a record is reported with its field.
public struct ReceivableValidator: Sendable {
    public var rules: RecordRules

    public init(rules: RecordRules) { self.rules = rules }

    static let keys: [String: Set<String>] = [
        "debtor": RecordValidator.debtorKeys.union(["type", "payment_terms", "ladder"]),
        "invoice": ["type", "number", "debtor", "issued_on", "due_on", "amount", "currency", "instalments", "document", "payment_url"],
        "instalment": ["type", "invoice", "due_on", "amount"],
        "payment": ["type", "id", "debtor", "amount", "currency", "paid_on", "invoice"],
        "credit_note": ["type", "id", "invoice", "amount", "issued_on"],
        "write_off": ["type", "invoice", "on"],
        "dispute": ["type", "id", "invoice", "opened_on", "closed_on", "reason"],
        "promise": ["type", "id", "invoice", "debtor", "amount", "currency", "until", "on"],
        "hold": ["type", "id", "invoice", "debtor", "until", "reason", "from"],
    ]

    public static var types: [String] { keys.keys.sorted() }

    /// Parses and validates one JSON line.
    public func validate(_ bytes: some Collection<UInt8>) -> Result<ReceivableRecord, RecordIssues> {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(RecordIssues([FieldIssue(field: "", reason: "invalid UTF-8")]))
        }
        do {
            return validate(try JSONParser.parse(validatedUTF8: text))
        } catch {
            return .failure(RecordIssues([FieldIssue(field: "", reason: error.recordReason)]))
        }
    }

    public func validate(_ value: JSONValue) -> Result<ReceivableRecord, RecordIssues> {
        guard case .object(let root) = value else {
            return .failure(RecordIssues([FieldIssue(field: "", reason: "a record must be a JSON object, found \(value.typeName)")]))
        }
        guard case .string(let type)? = root["type"], let allowed = Self.keys[type] else {
            return .failure(RecordIssues([FieldIssue(field: "type", reason: "must be one of \(Self.types.joined(separator: ", "))")]))
        }
        var fields = Fields(issues: [])
        for key in root.keys.filter({ !allowed.contains($0) }).sorted() {
            fields.fail(key, "unknown key (a \(type) record has: \(allowed.sorted().joined(separator: ", ")))")
        }
        let record: ReceivableRecord?
        switch type {
        case "debtor": record = debtor(root, &fields)
        case "invoice": record = invoice(root, &fields)
        case "instalment":
            let invoice = fields.string(root, "invoice", path: "invoice", maxLength: 64)
            let due = fields.date(root, "due_on", path: "due_on")
            let amount = fields.string(root, "amount", path: "amount", maxLength: 32)
            if let amount, !Self.isDecimal(amount) { fields.fail("amount", "'\(amount.debugQuoted)' is not a positive decimal amount such as \"1234.50\"") }
            record = invoice.flatMap { i in due.flatMap { d in amount.map { .instalment(invoice: i, dueOn: d, amount: $0) } } }
        default: record = movement(type, root, &fields)
        }
        if let record, fields.issues.isEmpty { return .success(record) }
        if fields.issues.isEmpty { fields.fail("", "invalid \(type) record") }
        return .failure(RecordIssues(fields.issues))
    }

    func debtor(_ root: [String: JSONValue], _ fields: inout Fields) -> ReceivableRecord? {
        var object = root
        object["type"] = nil
        let terms = fields.optionalString(root, "payment_terms", path: "payment_terms", maxLength: 16)
        object["payment_terms"] = nil
        let parsedTerms = terms.flatMap(PaymentTerms.init)
        if let terms, parsedTerms == nil { fields.fail("payment_terms", "'\(terms.debugQuoted)' is not payment terms such as 30d, 45d-eom or eom+45d") }
        let ladder = fields.optionalString(root, "ladder", path: "ladder", maxLength: 64)
        object["ladder"] = nil
        // The reminder record's debtor validation, with paths at the top level.
        var inner = Fields(issues: [])
        let debtor = RecordValidator(rules: rules).validateDebtor(.object(object), needsEmail: false, needsPhone: false, fields: &inner)
        for issue in inner.issues {
            fields.fail(issue.field.hasPrefix("debtor.") ? String(issue.field.dropFirst(7)) : issue.field, issue.reason)
        }
        return debtor.map { .debtor(ReceivableDebtor(debtor: $0, paymentTerms: parsedTerms, ladder: ladder)) }
    }

    func amount(_ root: [String: JSONValue], _ key: String, currency: String?, _ fields: inout Fields, allowZero: Bool = false) -> Int64? {
        guard let text = fields.string(root, key, path: key, maxLength: 32) else { return nil }
        guard let currency else { return nil }
        guard let amount = MinorAmount(text, currency: currency) else {
            fields.fail(key, Money.amountProblem(text, currency: currency) ?? "'\(text.debugQuoted)' is not a decimal amount such as \"1234.50\"")
            return nil
        }
        if amount.units == 0 && !allowZero { fields.fail(key, "must be greater than zero") }
        return amount.units
    }

    func currency(_ root: [String: JSONValue], _ fields: inout Fields) -> String? {
        guard let code = fields.string(root, "currency", path: "currency", maxLength: 16) else { return nil }
        guard Currency.isKnown(code) else {
            fields.fail("currency", "unknown currency '\(code.debugQuoted)' (expected an ISO 4217 code such as EUR)")
            return nil
        }
        return code
    }

    func invoice(_ root: [String: JSONValue], _ fields: inout Fields) -> ReceivableRecord? {
        let number = fields.string(root, "number", path: "number", maxLength: 64)
        let debtor = fields.string(root, "debtor", path: "debtor", maxLength: 128)
        let issued = fields.date(root, "issued_on", path: "issued_on")
        let due = root["due_on"].flatMap { $0 == .null ? nil : $0 } != nil ? fields.date(root, "due_on", path: "due_on") : nil
        if let issued, let due, due < issued { fields.fail("due_on", "is before issued_on") }
        let currency = currency(root, &fields)
        let amount = amount(root, "amount", currency: currency, &fields, allowZero: true)
        var instalments: [Instalment] = []
        if let value = root["instalments"], value != .null {
            if case .array(let list) = value, !list.isEmpty {
                for (i, entry) in list.enumerated() {
                    guard case .object(let o) = entry else {
                        fields.fail("instalments[\(i)]", "must be an object with due_on and amount")
                        continue
                    }
                    for key in o.keys.filter({ !["due_on", "amount"].contains($0) }).sorted() {
                        fields.fail("instalments[\(i)].\(key)", "unknown key (an instalment has: amount, due_on)")
                    }
                    let d = fields.date(o, "due_on", path: "instalments[\(i)].due_on")
                    var a: Int64?
                    if let text = fields.string(o, "amount", path: "instalments[\(i)].amount", maxLength: 32), let currency {
                        a = MinorAmount(text, currency: currency)?.units
                        if a == nil || a == 0 { fields.fail("instalments[\(i)].amount", "'\(text.debugQuoted)' is not a positive \(currency) amount") }
                    }
                    if let d, let a { instalments.append(Instalment(dueOn: d, amount: a)) }
                }
                if let amount, instalments.count == list.count, instalments.reduce(0, { $0 + $1.amount }) != amount {
                    fields.fail("instalments", "the instalments add up to \(instalments.reduce(0) { $0 + $1.amount }) minor units, the invoice to \(amount)")
                }
                if Set(instalments.map(\.dueOn)).count != instalments.count { fields.fail("instalments", "two instalments fall due on the same day") }
                instalments.sort { $0.dueOn < $1.dueOn }
            } else {
                fields.fail("instalments", "must be a non-empty array of {due_on, amount}")
            }
        }
        let url = fields.optionalString(root, "payment_url", path: "payment_url", maxLength: 2048)
        if let url, !(url.hasPrefix("https://") || url.hasPrefix("http://")) { fields.fail("payment_url", "must be an http(s) URL") }
        let document = fields.optionalString(root, "document", path: "document", maxLength: 4096)
        guard let number, let debtor, let issued, let amount, let currency else { return nil }
        return .invoice(
            ParsedInvoice(
                number: number, debtor: debtor, issuedOn: issued, dueOn: due, amount: amount, currency: currency, instalments: instalments,
                paymentURL: url, document: document))
    }

    func movement(_ type: String, _ root: [String: JSONValue], _ fields: inout Fields) -> ReceivableRecord? {
        func optionalDate(_ key: String) -> CivilDate? {
            guard let value = root[key], value != .null else { return nil }
            return fields.date(root, key, path: key)
        }
        switch type {
        case "payment":
            let id = fields.string(root, "id", path: "id", maxLength: 128)
            let debtor = fields.string(root, "debtor", path: "debtor", maxLength: 128)
            let currency = currency(root, &fields)
            let amount = amount(root, "amount", currency: currency, &fields)
            let paid = fields.date(root, "paid_on", path: "paid_on")
            let invoice = fields.optionalString(root, "invoice", path: "invoice", maxLength: 64)
            guard let id, let debtor, let currency, let amount, let paid else { return nil }
            return .movement(key: "payment:\(id)", debtor: debtor, .payment(id: id, amount: amount, currency: currency, paidOn: paid, invoice: invoice))
        case "credit_note":
            let id = fields.string(root, "id", path: "id", maxLength: 128)
            let invoice = fields.string(root, "invoice", path: "invoice", maxLength: 64)
            let text = fields.string(root, "amount", path: "amount", maxLength: 32)
            if let text, !Self.isDecimal(text) { fields.fail("amount", "'\(text.debugQuoted)' is not a positive decimal amount such as \"1234.50\"") }
            let issued = fields.date(root, "issued_on", path: "issued_on")
            guard let id, let invoice, let text, let issued else { return nil }
            return .creditNote(id: id, invoice: invoice, amount: text, issuedOn: issued)
        case "write_off":
            let invoice = fields.string(root, "invoice", path: "invoice", maxLength: 64)
            let on = fields.date(root, "on", path: "on")
            guard let invoice, let on else { return nil }
            return .movement(key: "write_off:\(invoice)", debtor: nil, .writeOff(invoice: invoice, on: on))
        case "dispute":
            let invoice = fields.string(root, "invoice", path: "invoice", maxLength: 64)
            let opened = fields.date(root, "opened_on", path: "opened_on")
            let closed = optionalDate("closed_on")
            if let opened, let closed, closed < opened { fields.fail("closed_on", "is before opened_on") }
            let reason = fields.optionalString(root, "reason", path: "reason", maxLength: 500) ?? ""
            let given = fields.optionalString(root, "id", path: "id", maxLength: 128)
            guard let invoice, let opened else { return nil }
            let id = given ?? "\(invoice):\(opened)"
            return .movement(key: "dispute:\(id)", debtor: nil, .dispute(id: id, invoice: invoice, openedOn: opened, closedOn: closed, reason: reason))
        case "promise", "hold":
            let invoice = fields.optionalString(root, "invoice", path: "invoice", maxLength: 64)
            let debtor = fields.optionalString(root, "debtor", path: "debtor", maxLength: 128)
            if (invoice == nil) == (debtor == nil) { fields.fail("invoice", "a \(type) names either an invoice or a debtor") }
            let scope: ReceivableScope = invoice.map { .invoice($0) } ?? .debtor
            let given = fields.optionalString(root, "id", path: "id", maxLength: 128)
            let target = invoice ?? "debtor:\(debtor ?? "")"
            if type == "promise" {
                let until = fields.date(root, "until", path: "until")
                let made = optionalDate("on")
                var amount: Int64?
                if root["amount"] != nil && root["amount"] != .null {
                    let currency = currency(root, &fields)
                    amount = self.amount(root, "amount", currency: currency, &fields)
                }
                guard let until, invoice != nil || debtor != nil else { return nil }
                let id = given ?? "\(target):\(until)"
                return .movement(key: "promise:\(id)", debtor: debtor, .promise(id: id, scope: scope, amount: amount, until: until, madeOn: made))
            }
            let until = optionalDate("until")
            let from = optionalDate("from")
            let reason = fields.optionalString(root, "reason", path: "reason", maxLength: 500) ?? ""
            guard invoice != nil || debtor != nil else { return nil }
            let id = given ?? "\(target):\(until?.description ?? "open")"
            return .movement(key: "hold:\(id)", debtor: debtor, .hold(id: id, scope: scope, until: until, reason: reason, from: from))
        default:
            return nil
        }
    }

    /// A positive decimal amount in some currency (at most 3 decimals); its currency's own rule is
    /// checked once the invoice it belongs to is known.
    static func isDecimal(_ text: String) -> Bool { (MinorAmount(text, currency: "TND")?.units ?? 0) > 0 }
}
