import Foundation

/// One problem found in a spool record: which field, and why.
public struct FieldIssue: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Dotted path of the field, e.g. `debtor.phone` or `invoices[1].amount`; empty for the whole line.
    public var field: String
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { field.isEmpty ? reason : "\(field): \(reason)" }
}

/// Every problem found in one record.
public struct RecordIssues: Error, Sendable, Hashable {
    public var issues: [FieldIssue]
    public init(_ issues: [FieldIssue]) { self.issues = issues }
}

/// What the I/O layer found when it looked at an attachment path.
public enum AttachmentInspection: Sendable, Equatable {
    case ok
    case missing
    case notRegularFile
    case outsideRoot
    case tooLarge(Int)
    case notPDF
    case unreadable(String)
}

/// The rules a record is validated against (from configuration).
public struct RecordRules: Sendable {
    public var stages: [String]
    public var defaultCountry: String
    public var defaultLocale: String
    public var defaultTimezone: String
    public var attachmentsRoot: String?
    public var maxAttachmentBytes: Int
    /// Looks at an attachment on disk (the only I/O validation needs; injected by the daemon).
    public var inspectAttachment: @Sendable (String) -> AttachmentInspection

    public init(
        stages: [String] = ["pre_due", "reminder_1", "reminder_2", "final_notice"],
        defaultCountry: String = "FR", defaultLocale: String = "fr-FR", defaultTimezone: String = "Europe/Paris",
        attachmentsRoot: String? = nil, maxAttachmentBytes: Int = 10 * 1024 * 1024,
        inspectAttachment: @escaping @Sendable (String) -> AttachmentInspection = { _ in .missing }
    ) {
        self.stages = stages
        self.defaultCountry = defaultCountry
        self.defaultLocale = defaultLocale
        self.defaultTimezone = defaultTimezone
        self.attachmentsRoot = attachmentsRoot
        self.maxAttachmentBytes = maxAttachmentBytes
        self.inspectAttachment = inspectAttachment
    }
}

/// Validates one spool record (version 1) and builds the normalised `Reminder`, collecting every
/// problem rather than stopping at the first.
public struct RecordValidator: Sendable {
    public var rules: RecordRules

    public init(rules: RecordRules) { self.rules = rules }

    static let topKeys: Set<String> = [
        "id", "stage", "channels", "not_before", "expires_at", "fallback", "debtor", "invoices", "payment_url",
        "attachments", "vars",
    ]
    static let debtorKeys: Set<String> = ["id", "name", "email", "phone", "country", "locale", "timezone", "kind"]
    static let invoiceKeys: Set<String> = ["number", "amount", "currency", "issued_on", "due_on"]

    /// Parses and validates one record from its raw bytes.
    public func validate(_ bytes: some Collection<UInt8>) -> Result<Reminder, RecordIssues> {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(RecordIssues([FieldIssue(field: "", reason: "invalid UTF-8")]))
        }
        let value: JSONValue
        do {
            // Validated as UTF-8 just above: the parser need not check each string again.
            value = try JSONParser.parse(validatedUTF8: text)
        } catch {
            return .failure(RecordIssues([FieldIssue(field: "", reason: error.recordReason)]))
        }
        return validate(value)
    }

    public func validate(_ value: JSONValue) -> Result<Reminder, RecordIssues> {
        var issues: [FieldIssue] = []
        guard case .object(let root) = value else {
            return .failure(RecordIssues([FieldIssue(field: "", reason: "a record must be a JSON object, found \(value.typeName)")]))
        }
        // Sorted only when there is something to report (the keys of every record are not).
        for key in root.keys.filter({ !Self.topKeys.contains($0) }).sorted() {
            issues.append(.init(field: key, reason: "unknown key (record version 1 has: \(Self.topKeys.sorted().joined(separator: ", ")))"))
        }
        var fields = Fields(issues: issues)

        let id = fields.string(root, "id", path: "id", maxLength: 128)
        let stage = fields.string(root, "stage", path: "stage", maxLength: 64)
        if let stage, !rules.stages.contains(stage) {
            fields.fail("stage", "unknown stage '\(stage)' (configured: \(rules.stages.joined(separator: ", ")))")
        }
        let channels = fields.channels(root, "channels", required: true) ?? []
        let fallback = fields.channels(root, "fallback", required: false) ?? []
        for c in fallback where channels.contains(c) {
            fields.fail("fallback", "'\(c.rawValue)' is already a primary channel")
        }
        let notBefore = fields.timestamp(root, "not_before")
        let expiresAt = fields.timestamp(root, "expires_at")
        if let notBefore, let expiresAt, expiresAt <= notBefore {
            fields.fail("expires_at", "is not after not_before")
        }

        let needsEmail = channels.contains(.email) || fallback.contains(.email)
        let needsPhone = channels.contains(.sms) || fallback.contains(.sms)
        let debtor = validateDebtor(root["debtor"], needsEmail: needsEmail, needsPhone: needsPhone, fields: &fields)
        // A record that can only go by SMS, to a number that cannot receive one, can never be sent:
        // refused here with the message `preview` gives, not accepted to fail later.
        if channels == [.sms], !fallback.contains(.email), let phone = debtor?.phone, let problem = PhoneNumber.smsProblem(phone) {
            fields.fail("debtor.phone", problem)
        }

        var invoices: [Invoice] = []
        switch root["invoices"] {
        case nil, .null?:
            fields.fail("invoices", "is required")
        case .array(let items)?:
            if items.isEmpty { fields.fail("invoices", "must list at least one invoice") }
            if items.count > 500 { fields.fail("invoices", "lists more than 500 invoices") }
            for (i, item) in items.enumerated() {
                if let invoice = validateInvoice(item, path: "invoices[\(i)]", fields: &fields) { invoices.append(invoice) }
            }
            let numbers = invoices.map(\.number)
            if Set(numbers).count != numbers.count { fields.fail("invoices", "lists the same invoice number twice") }
        case let other?:
            fields.fail("invoices", "must be an array, found \(other.typeName)")
        }

        var paymentURL: String?
        if let url = fields.optionalString(root, "payment_url", path: "payment_url", maxLength: 2048) {
            let lower = url.lowercased()
            if !(lower.hasPrefix("https://") || lower.hasPrefix("http://")) || url.utf8.contains(0x20) || URL(string: url)?.host == nil {
                fields.fail("payment_url", "must be an absolute http(s) URL without spaces")
            } else {
                paymentURL = url
            }
        }

        var attachments: [String] = []
        switch root["attachments"] {
        case nil, .null?: break
        case .array(let items)?:
            for (i, item) in items.enumerated() {
                let path = "attachments[\(i)]"
                guard case .string(let file) = item else {
                    fields.fail(path, "must be a string, found \(item.typeName)")
                    continue
                }
                if let problem = attachmentProblem(file) {
                    fields.fail(path, problem)
                } else {
                    attachments.append(file)
                }
            }
        case let other?:
            fields.fail("attachments", "must be an array of paths, found \(other.typeName)")
        }

        var vars: [String: VarValue] = [:]
        switch root["vars"] {
        case nil, .null?: break
        case .object(let dict)?:
            for (key, value) in dict.sorted(by: { $0.key < $1.key }) {
                let path = "vars.\(key)"
                guard !key.isEmpty, key.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == UInt8(ascii: "_") })
                else {
                    fields.fail(path, "variable names use only ASCII letters, digits and '_'")
                    continue
                }
                switch value {
                case .string(let s):
                    if let problem = TextRules.problem(s, maxLength: 1000) { fields.fail(path, problem) } else { vars[key] = .string(s) }
                case .bool(let b): vars[key] = .bool(b)
                case .number(let n): vars[key] = .string("\(n)")  // numbers are text to templates
                default: fields.fail(path, "must be a string, number or boolean, found \(value.typeName)")
                }
            }
        case let other?:
            fields.fail("vars", "must be an object, found \(other.typeName)")
        }

        guard fields.issues.isEmpty, let id, let stage, let debtor else {
            return .failure(RecordIssues(fields.issues))
        }
        return .success(
            Reminder(
                id: id, stage: stage, channels: channels, notBefore: notBefore, expiresAt: expiresAt, fallback: fallback,
                debtor: debtor, invoices: invoices, paymentURL: paymentURL, attachments: attachments, vars: vars))
    }

    func validateDebtor(_ value: JSONValue?, needsEmail: Bool, needsPhone: Bool, fields: inout Fields) -> Debtor? {
        guard let value, value != .null else {
            fields.fail("debtor", "is required")
            return nil
        }
        guard case .object(let d) = value else {
            fields.fail("debtor", "must be an object, found \(value.typeName)")
            return nil
        }
        for key in d.keys.filter({ !Self.debtorKeys.contains($0) }).sorted() {
            fields.fail("debtor.\(key)", "unknown key (debtor has: \(Self.debtorKeys.sorted().joined(separator: ", ")))")
        }
        let id = fields.string(d, "id", path: "debtor.id", maxLength: 128)
        let name = fields.string(d, "name", path: "debtor.name", maxLength: 200)
        let locale = fields.optionalString(d, "locale", path: "debtor.locale", maxLength: 35) ?? rules.defaultLocale
        if !LocaleRules.isKnown(locale) {
            fields.fail("debtor.locale", "unknown locale '\(locale)' (expected a BCP 47 tag such as fr-FR or en)")
        }
        let timezone = fields.optionalString(d, "timezone", path: "debtor.timezone", maxLength: 64) ?? rules.defaultTimezone
        if !Self.isKnownTimeZone(timezone) {
            fields.fail("debtor.timezone", "unknown time zone '\(timezone)' (expected an IANA name such as Europe/Paris)")
        }
        var country = rules.defaultCountry
        if let c = fields.optionalString(d, "country", path: "debtor.country", maxLength: 2) {
            if c.count == 2, c == c.uppercased(), LocaleRules.regions.contains(c) {
                country = c
            } else {
                fields.fail("debtor.country", "'\(c)' is not an ISO 3166 alpha-2 country code (upper case, e.g. FR)")
            }
        } else if let region = LocaleRules.region(of: locale) {
            country = region
        }
        var kind = DebtorKind.consumer
        if let k = fields.optionalString(d, "kind", path: "debtor.kind", maxLength: 16) {
            if let parsed = DebtorKind(rawValue: k) { kind = parsed } else { fields.fail("debtor.kind", "must be 'consumer' or 'business', found '\(k)'") }
        }
        var email: String?
        if let e = fields.optionalString(d, "email", path: "debtor.email", maxLength: 254) {
            if let problem = EmailAddress.problem(e) { fields.fail("debtor.email", "'\(e.debugQuoted)' is not a valid address: \(problem)") } else { email = e }
        } else if needsEmail {
            fields.fail("debtor.email", "is required for the email channel")
        }
        var phone: String?
        if let p = fields.optionalString(d, "phone", path: "debtor.phone", maxLength: 32) {
            switch PhoneNumber.normalise(p, country: country) {
            case .success(let e164): phone = e164
            case .failure(let failure): fields.fail("debtor.phone", "'\(p.debugQuoted)' \(failure)")
            }
        } else if needsPhone {
            fields.fail("debtor.phone", "is required for the sms channel")
        }
        guard let id, let name else { return nil }
        return Debtor(id: id, name: name, email: email, phone: phone, country: country, locale: locale, timezone: timezone, kind: kind)
    }

    /// An IANA zone name (`Europe/Paris`) or `UTC`; remembered, as every record names one of a few.
    static func isKnownTimeZone(_ name: String) -> Bool {
        knownTimeZones.value(name) { name in
            TimeZone(identifier: name) != nil && (name.utf8.contains(UInt8(ascii: "/")) || name == "UTC")
        }
    }

    static let knownTimeZones = Memo<String, Bool>(limit: 1024)

    func validateInvoice(_ value: JSONValue, path: String, fields: inout Fields) -> Invoice? {
        guard case .object(let inv) = value else {
            fields.fail(path, "must be an object, found \(value.typeName)")
            return nil
        }
        for key in inv.keys.filter({ !Self.invoiceKeys.contains($0) }).sorted() {
            fields.fail("\(path).\(key)", "unknown key (an invoice has: \(Self.invoiceKeys.sorted().joined(separator: ", ")))")
        }
        let number = fields.string(inv, "number", path: "\(path).number", maxLength: 64)
        let currency = fields.string(inv, "currency", path: "\(path).currency", maxLength: 16)
        var amount: String?
        switch inv["amount"] {
        case nil, .null?: fields.fail("\(path).amount", "is required")
        case .string(let a)?:
            if let currency, Currency.isKnown(currency) {
                if let problem = Money.amountProblem(a, currency: currency) { fields.fail("\(path).amount", problem) } else { amount = a }
            } else {
                amount = a
            }
        case let other?:
            fields.fail("\(path).amount", "must be a decimal string such as \"1234.50\" (never a JSON number), found \(other.typeName)")
        }
        if let currency, !Currency.isKnown(currency) {
            fields.fail("\(path).currency", "unknown currency '\(currency.debugQuoted)' (expected an ISO 4217 code such as EUR)")
        }
        let issued = fields.date(inv, "issued_on", path: "\(path).issued_on")
        let due = fields.date(inv, "due_on", path: "\(path).due_on")
        if let issued, let due, due < issued {
            fields.fail("\(path).due_on", "is before issued_on")
        }
        guard let number, let currency, let amount, let issued, let due, Currency.isKnown(currency) else { return nil }
        return Invoice(number: number, amount: amount, currency: currency, issuedOn: issued, dueOn: due)
    }

    func attachmentProblem(_ file: String) -> String? {
        if let problem = TextRules.problem(file, maxLength: 1024) { return problem }
        guard let root = rules.attachmentsRoot else { return "attachments are disabled (spool.attachments_root is not set)" }
        guard file.hasPrefix("/") else { return "must be an absolute path" }
        let components = file.split(separator: "/")
        guard !components.contains(".."), !components.contains(".") else { return "must not contain '.' or '..' components" }
        let rootWithSlash = root.hasSuffix("/") ? root : root + "/"
        guard file.hasPrefix(rootWithSlash) else { return "'\(file)' is not under spool.attachments_root (\(root))" }
        guard file.lowercased().hasSuffix(".pdf") else { return "'\(file)' is not a .pdf file" }
        switch rules.inspectAttachment(file) {
        case .ok: return nil
        case .missing: return "'\(file)' does not exist"
        case .notRegularFile: return "'\(file)' is not a regular file"
        case .outsideRoot: return "'\(file)' resolves (through a link) outside spool.attachments_root"
        case .tooLarge(let size): return "'\(file)' is \(size) bytes, over spool.max_attachment_bytes (\(rules.maxAttachmentBytes))"
        case .notPDF: return "'\(file)' does not start with a PDF header (%PDF-)"
        case .unreadable(let why): return "'\(file)' cannot be read: \(why)"
        }
    }
}

/// Collects issues while extracting typed fields.
struct Fields {
    var issues: [FieldIssue]

    mutating func fail(_ field: String, _ reason: String) { issues.append(.init(field: field, reason: reason)) }

    mutating func string(_ dict: [String: JSONValue], _ key: String, path: @autoclosure () -> String, maxLength: Int) -> String? {
        guard let value = dict[key], value != .null else {
            fail(path(), "is required")
            return nil
        }
        return checkedString(value, path: path(), maxLength: maxLength)
    }

    mutating func optionalString(_ dict: [String: JSONValue], _ key: String, path: @autoclosure () -> String, maxLength: Int) -> String? {
        guard let value = dict[key], value != .null else { return nil }
        return checkedString(value, path: path(), maxLength: maxLength)
    }

    mutating func checkedString(_ value: JSONValue, path: @autoclosure () -> String, maxLength: Int) -> String? {
        guard case .string(let s) = value else {
            fail(path(), "must be a string, found \(value.typeName)")
            return nil
        }
        // Any visible ASCII character settles it; otherwise look at the scalars.
        if !s.utf8.contains(where: { $0 > 0x20 && $0 < 0x7F }) && s.trimmingSpaces().isEmpty {
            fail(path(), "must not be empty")
            return nil
        }
        if let problem = TextRules.problem(s, maxLength: maxLength) {
            fail(path(), problem)
            return nil
        }
        return s
    }

    mutating func channels(_ dict: [String: JSONValue], _ key: String, required: Bool) -> [Channel]? {
        guard let value = dict[key], value != .null else {
            if required { fail(key, "is required") }
            return nil
        }
        guard case .array(let items) = value else {
            fail(key, "must be an array of channel names, found \(value.typeName)")
            return nil
        }
        if required && items.isEmpty { fail(key, "must list at least one channel") }
        var result: [Channel] = []
        for (i, item) in items.enumerated() {
            guard case .string(let name) = item, let channel = Channel(rawValue: name) else {
                fail("\(key)[\(i)]", "unknown channel (known: \(Channel.allCases.map(\.rawValue).joined(separator: ", ")))")
                continue
            }
            if result.contains(channel) { fail("\(key)[\(i)]", "'\(name)' is listed twice") } else { result.append(channel) }
        }
        return result
    }

    mutating func timestamp(_ dict: [String: JSONValue], _ key: String) -> Date? {
        guard let value = dict[key], value != .null else { return nil }
        guard case .string(let s) = value else {
            fail(key, "must be an RFC 3339 timestamp string, found \(value.typeName)")
            return nil
        }
        guard let date = Timestamp.parse(s) else {
            fail(key, "'\(s.debugQuoted)' is not an RFC 3339 timestamp with an offset (e.g. 2026-11-30T09:00:00+01:00)")
            return nil
        }
        guard Self.plausible.contains(date) else {
            fail(key, "'\(s.debugQuoted)' is not between 2000 and 2099")
            return nil
        }
        return date
    }

    /// Instants a reminder may name: a year 9999 is a producer's bug, never a plan.
    static let plausible = Date(timeIntervalSince1970: 946_684_800)..<Date(timeIntervalSince1970: 4_102_444_800)

    mutating func date(_ dict: [String: JSONValue], _ key: String, path: @autoclosure () -> String) -> CivilDate? {
        guard let value = dict[key], value != .null else {
            fail(path(), "is required")
            return nil
        }
        guard case .string(let s) = value, let date = CivilDate(s) else {
            fail(path(), "is not a valid date YYYY-MM-DD")
            return nil
        }
        guard date.year <= 2099 else {
            fail(path(), "'\(s.debugQuoted)' is after 2099")
            return nil
        }
        return date
    }
}
