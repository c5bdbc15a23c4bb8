import Foundation
import RelanceCore

/// A text given once for every locale, or per locale (`{fr: …, en: …}`): the debtor's locale
/// chain picks (`fr-FR → fr → defaults.locale`), else the `default` entry, else the first one.
public struct LocalizedText: Sendable, Hashable, Decodable {
    public var byLocale: [String: String]

    public init(_ text: String) { byLocale = ["default": text] }
    public init(byLocale: [String: String]) { self.byLocale = byLocale }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let text = try? c.decode(String.self) {
            byLocale = ["default": text]
            return
        }
        let map = try c.decode([String: String].self)
        for tag in map.keys where tag != "default" && !LocaleRules.isKnown(tag) {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "'\(tag.debugQuoted)' is not a locale such as fr or en-GB (or default)")
        }
        guard !map.isEmpty else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "give a text, or a text per locale") }
        byLocale = map
    }

    /// The text for `locale`, following its chain down to `fallback`.
    public func text(for locale: String, fallback: String) -> String {
        for tag in LocaleRules.chain(locale, fallback: fallback) { if let text = byLocale[tag] { return text } }
        return byLocale["default"] ?? byLocale.sorted { $0.key < $1.key }.first?.value ?? ""
    }

}

/// Who is owed: shown in every message.
public struct Creditor: Sendable, Hashable, Decodable {
    public var name: String
    public var address: String
    public var email: String
    public var phone: String
    /// How to pay: one text, or one per locale.
    public var paymentInstructions: LocalizedText

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, address, email, phone
        case paymentInstructions = "payment_instructions"
    }

    public init(name: String, address: String, email: String, phone: String, paymentInstructions: LocalizedText) {
        self.name = name
        self.address = address
        self.email = email
        self.phone = phone
        self.paymentInstructions = paymentInstructions
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        address = try c.decodeIfPresent(String.self, forKey: .address) ?? ""
        email = try c.decodeIfPresent(String.self, forKey: .email) ?? ""
        phone = try c.decodeIfPresent(String.self, forKey: .phone) ?? ""
        paymentInstructions = try c.decodeIfPresent(LocalizedText.self, forKey: .paymentInstructions) ?? LocalizedText("")
    }

    public static let example = Creditor(
        name: "Exemple SAS", address: "12 rue des Lilas, 75011 Paris", email: "comptabilite@example.fr", phone: "01 23 45 67 89",
        paymentInstructions: LocalizedText(byLocale: [
            "fr": "Virement sur le compte IBAN FR76 3000 6000 0112 3456 7890 189 (BIC AGRIFRPP), en indiquant le numéro de facture.",
            "en": "Bank transfer to IBAN FR76 3000 6000 0112 3456 7890 189 (BIC AGRIFRPP), quoting the invoice number.",
        ]))
}

/// A collection agency acting for the creditor (CPCE R124-4): its mentions go in every letter.
public struct Agency: Sendable, Hashable {
    public var name: String
    public var address: String
    public init(name: String, address: String) {
        self.name = name
        self.address = address
    }
}

/// The first letter sent about a debt, recalled by the later ones in agency mode (CPCE R124-4).
public struct LetterHistory: Sendable, Hashable {
    public var reference: String
    public var date: CivilDate
    public init(reference: String, date: CivilDate) {
        self.reference = reference
        self.date = date
    }
}

/// Settings that shape the computed values of the context.
public struct ContextSettings: Sendable, Hashable {
    public var creditor: Creditor
    /// Agency mode (off when nil).
    public var agency: Agency? = nil
    /// Days given to pay in a final notice (the "mise en demeure" deadline).
    public var deadlineDays: Int
    /// Fixed recovery indemnity per unpaid invoice for business debtors (Code de commerce D441-5).
    public var businessIndemnity: Decimal

    /// The locale that ends every lookup chain (`defaults.locale`).
    public var defaultLocale: String
    /// Values of `{{vars.NAME}}` when a record does not give them (`templates.vars`).
    public var vars: [String: String]
    /// Annual late-payment penalty rate in percent (`plan.penalty_rate`, L441-10): business
    /// debtors' messages show the penalties accrued to date; nil: not shown.
    public var penaltyRate: Decimal? = nil

    public init(creditor: Creditor, deadlineDays: Int = 8, businessIndemnity: Decimal = 40, defaultLocale: String = "fr-FR", vars: [String: String] = [:]) {
        self.creditor = creditor
        self.deadlineDays = deadlineDays
        self.businessIndemnity = businessIndemnity
        self.defaultLocale = defaultLocale
        self.vars = vars
    }

    /// The creditor's payment instructions in `locale`.
    public func paymentInstructions(_ locale: String) -> String { creditor.paymentInstructions.text(for: locale, fallback: defaultLocale) }
}

/// Builds the values a template sees. Every optional key is present (absent ones as false or empty),
/// so a lookup that fails is a template bug.
public enum TemplateContext {
    /// Every value at once (what `relance preview` and the checks see).
    public static func values(for reminder: Reminder, channel: Channel, settings: ContextSettings, now: Date, history: LetterHistory? = nil) -> [String: Any] {
        let source = Source(reminder, channel: channel, settings: settings, now: now, history: history)
        return Dictionary(uniqueKeysWithValues: Source.names.compactMap { name in source.value(name).map { (name, $0) } })
    }

    /// The values of one message, each computed when a template first asks for it: an SMS uses a
    /// handful of the names, and formatting the others (amounts, dates per locale) was most of
    /// its cost.
    struct Source {
        let reminder: Reminder
        let channel: Channel
        let settings: ContextSettings
        let history: LetterHistory?
        let locale: String
        let today: CivilDate

        init(_ reminder: Reminder, channel: Channel, settings: ContextSettings, now: Date, history: LetterHistory?) {
            self.reminder = reminder
            self.channel = channel
            self.settings = settings
            self.history = history
            self.locale = reminder.debtor.locale
            self.today = CivilDate(now, in: TimeZone(identifier: reminder.debtor.timezone) ?? utc)
        }

        static let names = [
            "reminder_id", "stage", "channel", "debtor", "invoices", "invoice_count", "has_several_invoices", "totals", "total", "days_overdue",
            "is_overdue", "payment_url", "has_payment_url", "attachments", "has_attachments", "vars", "creditor", "today", "deadline", "deadline_days",
            "indemnity_per_invoice", "indemnity_total", "agency", "first_letter", "debt", "has_penalties", "penalties", "penalty_rate",
        ]

        /// The value of a top-level name; nil for a name the context does not have.
        func value(_ name: String) -> Any? {
            switch name {
            case "reminder_id": return reminder.id
            case "stage": return reminder.stage
            case "channel": return channel.rawValue
            case "debtor":
                let debtor = reminder.debtor
                let isBusiness = debtor.kind == .business
                return [
                    "id": debtor.id, "name": debtor.name, "email": debtor.email ?? "", "phone": debtor.phone ?? "",
                    "country": debtor.country, "locale": debtor.locale, "timezone": debtor.timezone, "kind": debtor.kind.rawValue,
                    "is_business": isBusiness, "is_consumer": !isBusiness,
                ] as [String: Any]
            case "invoices":
                return reminder.invoices.map { invoice -> [String: Any] in
                    let overdue = max(0, today.dayNumber - invoice.dueOn.dayNumber)
                    return [
                        "number": invoice.number,
                        "amount": Money.format(text: invoice.amount, currency: invoice.currency, locale: locale),
                        "amount_value": invoice.amount,
                        "currency": invoice.currency,
                        "issued_on": formatDate(invoice.issuedOn, locale: locale),
                        "due_on": formatDate(invoice.dueOn, locale: locale),
                        "days_overdue": overdue,
                        "is_overdue": overdue > 0,
                    ]
                }
            case "invoice_count": return reminder.invoices.count
            case "has_several_invoices": return reminder.invoices.count > 1
            case "totals":
                return Money.totals(reminder.invoices).map { total -> [String: Any] in
                    [
                        "currency": total.currency, "amount": Money.format(total.amount, currency: total.currency, locale: locale),
                        "amount_value": "\(total.amount)",
                    ]
                }
            case "total": return Money.totals(reminder.invoices).map { Money.format($0.amount, currency: $0.currency, locale: locale) }.joined(separator: " + ")
            case "days_overdue": return daysOverdue
            case "is_overdue": return daysOverdue > 0
            case "payment_url": return reminder.paymentURL ?? ""
            case "has_payment_url": return reminder.paymentURL != nil
            case "attachments": return reminder.attachments.map { ["name": ($0 as NSString).lastPathComponent] as [String: Any] }
            case "has_attachments": return !reminder.attachments.isEmpty
            // Declared variables with their defaults, then the record's own.
            case "vars": return settings.vars.merging(reminder.vars.mapValues { $0.text }) { _, record in record } as [String: Any]
            case "creditor":
                let creditor = settings.creditor
                let instructions = settings.paymentInstructions(locale)
                return [
                    "name": creditor.name, "address": creditor.address, "email": creditor.email, "phone": creditor.phone,
                    "payment_instructions": instructions,
                    "has_address": !creditor.address.isEmpty, "has_payment_instructions": !instructions.isEmpty,
                    "has_email": !creditor.email.isEmpty, "has_phone": !creditor.phone.isEmpty,
                ] as [String: Any]
            case "today": return formatDate(today, locale: locale)
            case "deadline": return formatDate(today.adding(days: settings.deadlineDays), locale: locale)
            case "deadline_days": return settings.deadlineDays
            case "indemnity_per_invoice": return Money.format(settings.businessIndemnity, currency: "EUR", locale: locale)
            case "indemnity_total": return Money.format(settings.businessIndemnity * Decimal(reminder.invoices.count), currency: "EUR", locale: locale)
            case "agency":
                return ["enabled": settings.agency != nil, "name": settings.agency?.name ?? "", "address": settings.agency?.address ?? ""] as [String: Any]
            case "first_letter":
                return [
                    "is_first": history == nil, "reference": history?.reference ?? "", "date": history.map { formatDate($0.date, locale: locale) } ?? "",
                ] as [String: Any]
            case "debt": return debt
            case "has_penalties": return !accruedPenalties.isEmpty
            case "penalties":
                return accruedPenalties.map { Money.format($0.amount, currency: $0.currency, locale: locale) }.joined(separator: " + ")
            case "penalty_rate":
                guard let rate = settings.penaltyRate else { return "" }
                return rate.formatted(.percent.scale(1).locale(Locale(identifier: locale)).precision(.fractionLength(0...2)))
            default: return nil
            }
        }

        var daysOverdue: Int { reminder.invoices.map { max(0, today.dayNumber - $0.dueOn.dayNumber) }.max() ?? 0 }

        /// Late-payment penalties accrued to today for a business debtor (L441-10): each invoice's
        /// amount × the annual rate × the days since its due date ÷ 365, to the cent, per currency.
        /// Empty for a consumer, without `plan.penalty_rate`, or when nothing is overdue.
        var accruedPenalties: [(currency: String, amount: Decimal)] {
            guard let rate = settings.penaltyRate, reminder.debtor.kind == .business else { return [] }
            var sums: [String: Decimal] = [:]
            for invoice in reminder.invoices {
                let days = today.dayNumber - invoice.dueOn.dayNumber
                guard days > 0 else { continue }
                var penalty = invoice.decimalAmount * rate / 100 * Decimal(days) / 365
                var rounded = Decimal()
                NSDecimalRound(&rounded, &penalty, Currency.minorUnits[invoice.currency] ?? 2, .plain)
                sums[invoice.currency, default: 0] += rounded
            }
            return sums.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }

        /// The debt split as R124-4 asks: principal (the invoices), interest and other sums (from
        /// `vars.interest` and `vars.other_sums` when the producer computes them), per currency of the first invoice.
        var debt: [String: Any] {
            let currency = reminder.invoices.first?.currency ?? "EUR"
            func amount(_ key: String) -> Decimal {
                guard let text = reminder.vars[key]?.text, Money.amountProblem(text, currency: currency) == nil else { return 0 }
                return Money.decimal(text)
            }
            let principal = reminder.invoices.filter { $0.currency == currency }.reduce(Decimal(0)) { $0 + $1.decimalAmount }
            let (interest, other) = (amount("interest"), amount("other_sums"))
            func money(_ d: Decimal) -> String { Money.format(d, currency: currency, locale: locale) }
            return ["principal": money(principal), "interest": money(interest), "other": money(other), "total": money(principal + interest + other)]
        }
    }

    /// A civil date in the locale's long style (`31 octobre 2026`, `31 October 2026`).
    /// Memoised per day and locale: the same few dates (today, the deadline, due dates) recur in
    /// every message of a run.
    public static func formatDate(_ date: CivilDate, locale: String) -> String {
        formattedDates.value(DateKey(day: date.dayNumber, locale: locale)) { key in
            let style = dateStyles.value(key.locale) { tag in
                Date.FormatStyle(
                    date: .long, time: .omitted, locale: Locale(identifier: tag.replacingOccurrences(of: "-", with: "_")), calendar: utcCalendar,
                    timeZone: utc)
            }
            return Date(timeIntervalSince1970: TimeInterval(key.day) * 86400).formatted(style)
        }
    }

    struct DateKey: Hashable, Sendable {
        var day: Int
        var locale: String
    }

    static let dateStyles = Memo<String, Date.FormatStyle>(limit: 256)
    static let formattedDates = Memo<DateKey, String>(limit: 8192)

    static let utc = TimeZone.gmt
    static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = utc
        return calendar
    }()
}
