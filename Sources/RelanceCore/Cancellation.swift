import Foundation

/// A request to stop (or pause) reminders: from `relance cancel`, a file in `spool/cancel/`, or
/// `POST /api/cancellations`. Record form: `{"cancel": {"invoice": "F2026-0042", "reason": "paid"}}`.
public struct CancellationRequest: Sendable, Hashable, Codable {
    public enum Scope: String, Sendable, Codable, CaseIterable { case invoice, reminder, debtor, file }
    public enum Reason: String, Sendable, Codable, CaseIterable {
        case paid, disputed
        case promiseToPay = "promise_to_pay"
        case other
    }

    public var scope: Scope
    public var value: String
    public var reason: Reason
    /// A pause until this instant instead of a cancellation.
    public var until: Date?
    /// A partial payment: the total paid so far on the invoice (decimal string); later reminders
    /// show what remains instead of being cancelled.
    public var amountPaid: String?
    /// Free text kept in the ledger (who, why).
    public var note: String?

    public init(scope: Scope, value: String, reason: Reason, until: Date? = nil, amountPaid: String? = nil, note: String? = nil) {
        self.scope = scope
        self.value = value
        self.reason = reason
        self.until = until
        self.amountPaid = amountPaid
        self.note = note
    }

    static let keys: Set<String> = Set(Scope.allCases.map(\.rawValue)).union(["reason", "until", "amount_paid", "note"])

    /// Validates a cancellation record; every problem is named with its field.
    public static func validate(_ value: JSONValue) -> Result<CancellationRequest, RecordIssues> {
        guard case .object(let root) = value else {
            return .failure(RecordIssues([FieldIssue(field: "", reason: "a cancellation must be a JSON object, found \(value.typeName)")]))
        }
        guard root.count == 1, case .object(let body)? = root["cancel"] else {
            return .failure(
                RecordIssues([FieldIssue(field: "cancel", reason: "expected {\"cancel\": {\"invoice\"|\"reminder\"|\"debtor\"|\"file\": …, \"reason\": …}}")]))
        }
        var issues: [FieldIssue] = []
        for key in body.keys.sorted() where !keys.contains(key) {
            issues.append(FieldIssue(field: "cancel.\(key)", reason: "unknown key"))
        }
        let scopes = Scope.allCases.filter { body[$0.rawValue] != nil }
        var scope: Scope?
        var target: String?
        if scopes.count != 1 {
            issues.append(FieldIssue(field: "cancel", reason: "exactly one of invoice, reminder, debtor, file is required"))
        } else if case .string(let s)? = body[scopes[0].rawValue], !s.isEmpty, s.count <= 200, !s.contains(where: \.isNewline) {
            scope = scopes[0]
            target = s
        } else {
            issues.append(FieldIssue(field: "cancel.\(scopes[0].rawValue)", reason: "must be a non-empty string of at most 200 characters on one line"))
        }
        var reason: Reason?
        if case .string(let r)? = body["reason"], let parsed = Reason(rawValue: r) {
            reason = parsed
        } else {
            issues.append(FieldIssue(field: "cancel.reason", reason: "required: paid, disputed, promise_to_pay or other"))
        }
        var until: Date?
        if let u = body["until"] {
            if case .string(let text) = u, let date = Timestamp.parse(text) {
                until = date
            } else {
                issues.append(FieldIssue(field: "cancel.until", reason: "must be an RFC 3339 date-time with an offset, e.g. 2026-12-15T00:00:00+01:00"))
            }
        }
        var amountPaid: String?
        if let a = body["amount_paid"] {
            if case .string(let text) = a, text.range(of: #"^[0-9]{1,15}(\.[0-9]{1,3})?$"#, options: .regularExpression) != nil {
                amountPaid = text
            } else {
                issues.append(FieldIssue(field: "cancel.amount_paid", reason: "must be a decimal string such as \"200.00\""))
            }
            if scope != .invoice || reason != .paid {
                issues.append(FieldIssue(field: "cancel.amount_paid", reason: "only for an invoice with reason paid (a partial payment)"))
            }
            if until != nil { issues.append(FieldIssue(field: "cancel.until", reason: "a partial payment is not a pause")) }
        }
        var note: String?
        if let n = body["note"] {
            if case .string(let text) = n, text.count <= 500 {
                note = text
            } else {
                issues.append(FieldIssue(field: "cancel.note", reason: "at most 500 characters"))
            }
        }
        guard issues.isEmpty, let scope, let target, let reason else { return .failure(RecordIssues(issues)) }
        return .success(CancellationRequest(scope: scope, value: target, reason: reason, until: until, amountPaid: amountPaid, note: note))
    }

    /// Parses and validates one cancellation record from its raw bytes.
    public static func validate(_ bytes: some Collection<UInt8>) -> Result<CancellationRequest, RecordIssues> {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(RecordIssues([FieldIssue(field: "", reason: "invalid UTF-8")]))
        }
        do {
            return validate(try JSONParser.parse(text.utf8))
        } catch {
            return .failure(RecordIssues([FieldIssue(field: "", reason: error.recordReason)]))
        }
    }

    public var summary: String {
        var s = "\(scope.rawValue) \(value): \(reason.rawValue)"
        if let until { s += " until \(Timestamp.format(until))" }
        if let amountPaid { s += ", \(amountPaid) paid" }
        return s
    }
}

extension Reminder {
    /// The reminder as it must be rendered once partial payments are known (invoice number → total
    /// paid): each invoice shows what remains; fully paid invoices leave it. Nil when nothing remains.
    public func applyingPayments(_ paid: [String: String]) -> Reminder? {
        guard !paid.isEmpty else { return self }
        var copy = self
        copy.invoices = invoices.compactMap { invoice in
            guard let p = paid[invoice.number] else { return invoice }
            let remaining = invoice.decimalAmount - Money.decimal(p)
            guard remaining > 0 else { return nil }
            var changed = invoice
            changed.amount = Money.plain(remaining, currency: invoice.currency)
            return changed
        }
        return copy.invoices.isEmpty ? nil : copy
    }
}

extension Money {
    /// `remaining` as a record amount string (`1034.50`), with the currency's minor units.
    public static func plain(_ amount: Decimal, currency: String) -> String {
        let digits = Currency.minorUnits[currency] ?? 2
        var value = amount
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, digits, .plain)
        let f = NumberFormatter()
        f.locale = posix
        f.numberStyle = .decimal
        f.usesGroupingSeparator = false
        f.minimumFractionDigits = digits
        f.maximumFractionDigits = digits
        return f.string(from: rounded as NSDecimalNumber) ?? "\(rounded)"
    }
}

extension Reminder {
    /// Several reminders of one debtor sent as one message: the first one's record listing every
    /// invoice (each once), every attachment, the payment URL when they share it, and the earliest expiry.
    public static func merged(_ reminders: [Reminder]) -> Reminder {
        guard var merged = reminders.first, reminders.count > 1 else { return reminders[0] }
        var numbers = Set(merged.invoices.map(\.number))
        for other in reminders.dropFirst() {
            for invoice in other.invoices where numbers.insert(invoice.number).inserted { merged.invoices.append(invoice) }
            for path in other.attachments where !merged.attachments.contains(path) { merged.attachments.append(path) }
            if other.paymentURL != merged.paymentURL { merged.paymentURL = nil }
            if let e = other.expiresAt { merged.expiresAt = min(merged.expiresAt ?? e, e) }
        }
        return merged
    }
}
