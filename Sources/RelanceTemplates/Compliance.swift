import Foundation
import RelanceCore

/// A mandatory (or forbidden) element of rendered messages, checked by `relance check`, at start-up
/// and on reload: the templates are rendered for sample debtors and the output is searched
/// (case-insensitively). Phrases may hold placeholders filled from the sample: `{invoice.number}`
/// and `{invoice.amount}` (each invoice), `{deadline}`, `{creditor.name}`,
/// `{creditor.payment_instructions}`, `{indemnity}` (the B2B recovery indemnity, formatted),
/// `{agency.name}`, `{agency.address}`, `{first_letter.reference}`, `{first_letter.date}`.
public struct ComplianceRule: Sendable, Hashable, Decodable {
    /// A stage name or `*`.
    public var stage: String
    /// A language (`fr`), a locale (`fr-FR`) or `*`.
    public var locale: String
    /// `email`, `sms` or `*`.
    public var channel: String
    /// `consumer`, `business` or `*`.
    public var kind: String
    public var require: [String]
    public var forbid: [String]
    /// Why the rule exists, shown when it fails.
    public var why: String
    /// Agency mode: `first` (the first letter about a debt), `later`, or `*`.
    public var letter: String
    /// Checked only in agency mode.
    public var agency: Bool

    public init(
        stage: String = "*", locale: String = "*", channel: String = "*", kind: String = "*", letter: String = "*", agency: Bool = false,
        require: [String] = [], forbid: [String] = [], why: String
    ) {
        self.letter = letter
        self.agency = agency
        self.stage = stage
        self.locale = locale
        self.channel = channel
        self.kind = kind
        self.require = require
        self.forbid = forbid
        self.why = why
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case stage, locale, channel, kind, require, forbid, why, letter, agency }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stage = try c.decodeIfPresent(String.self, forKey: .stage) ?? "*"
        locale = try c.decodeIfPresent(String.self, forKey: .locale) ?? "*"
        channel = try c.decodeIfPresent(String.self, forKey: .channel) ?? "*"
        kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? "*"
        require = try c.decodeIfPresent([String].self, forKey: .require) ?? []
        forbid = try c.decodeIfPresent([String].self, forKey: .forbid) ?? []
        why = try c.decodeIfPresent(String.self, forKey: .why) ?? "configured rule"
        letter = try c.decodeIfPresent(String.self, forKey: .letter) ?? "*"
        agency = try c.decodeIfPresent(Bool.self, forKey: .agency) ?? (letter != "*")
        guard ["*", "first", "later"].contains(letter) else {
            throw DecodingError.dataCorruptedError(forKey: .letter, in: c, debugDescription: "'\(letter)': first, later or *")
        }
        guard ["*", "email", "sms"].contains(channel) else {
            throw DecodingError.dataCorruptedError(forKey: .channel, in: c, debugDescription: "'\(channel)': email, sms or *")
        }
        guard ["*", "consumer", "business"].contains(kind) else {
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "'\(kind)': consumer, business or *")
        }
        guard !require.isEmpty || !forbid.isEmpty else {
            throw DecodingError.dataCorruptedError(forKey: .require, in: c, debugDescription: "a rule needs require or forbid phrases")
        }
    }

    /// The defaults, from French law (see ../shared/DOMAIN.md and docs/templates.md).
    public static let defaults: [ComplianceRule] = [
        ComplianceRule(
            stage: "final_notice", locale: "fr", channel: "email",
            require: ["mise en demeure", "{invoice.number}", "{invoice.amount}", "{deadline}", "{creditor.payment_instructions}"],
            why: "a mise en demeure names itself, each debt and its amount, a deadline and how to pay (Code civil 1344)"),
        ComplianceRule(
            stage: "final_notice", locale: "en", channel: "email",
            require: ["formal notice", "{invoice.number}", "{invoice.amount}", "{deadline}", "{creditor.payment_instructions}"],
            why: "a formal notice names itself, each debt and its amount, a deadline and how to pay"),
        ComplianceRule(
            stage: "final_notice", locale: "fr", channel: "email", kind: "business", require: ["pénalités de retard", "indemnité forfaitaire", "{indemnity}"],
            why: "B2B: late-payment penalties and the 40 EUR recovery indemnity (Code de commerce L441-10, D441-5)"),
        ComplianceRule(
            stage: "final_notice", locale: "en", channel: "email", kind: "business", require: ["late-payment penalties", "recovery indemnity", "{indemnity}"],
            why: "B2B: late-payment penalties and the 40 EUR recovery indemnity (Code de commerce L441-10, D441-5)"),
        ComplianceRule(
            locale: "fr", kind: "consumer",
            forbid: ["indemnité forfaitaire", "{indemnity}", "frais de recouvrement pourront", "frais de recouvrement seront", "frais de dossier"],
            why: "collection costs stay with the creditor for consumers (CPCE L111-8)"),
        ComplianceRule(
            locale: "en", kind: "consumer", forbid: ["recovery indemnity", "{indemnity}", "recovery costs will", "recovery fees", "administration fee"],
            why: "collection costs stay with the creditor for consumers (CPCE L111-8)"),
        ComplianceRule(channel: "sms", require: ["{creditor.name}"], why: "every SMS identifies the creditor"),
        // Agency mode (CPCE R124-4).
        ComplianceRule(
            locale: "fr", channel: "email", letter: "first", agency: true,
            require: [
                "{agency.name}", "{agency.address}", "recouvrement amiable", "{creditor.name}", "principal", "intérêts", "autres sommes", "L111-8",
                "restent à la charge du créancier",
            ],
            why: "an agency's first letter: its name and address, amicable collection, the creditor, the debt split, the text of L111-8 (CPCE R124-4)"),
        ComplianceRule(
            locale: "en", channel: "email", letter: "first", agency: true,
            require: [
                "{agency.name}", "{agency.address}", "amicable debt collection", "{creditor.name}", "principal", "interest", "other sums", "L111-8",
                "remain payable by the creditor",
            ],
            why: "an agency's first letter: its name and address, amicable collection, the creditor, the debt split, the text of L111-8 (CPCE R124-4)"),
        ComplianceRule(
            channel: "email", letter: "later", agency: true, require: ["{agency.name}", "{first_letter.reference}", "{first_letter.date}"],
            why: "an agency's later letters recall the first letter's reference and date (CPCE R124-4)"),
    ]

    func applies(stage: String, locale: String, channel: Channel, kind: DebtorKind) -> Bool {
        (self.stage == "*" || self.stage == stage) && (self.channel == "*" || self.channel == channel.rawValue)
            && (self.kind == "*" || self.kind == kind.rawValue)
            && (self.locale == "*" || self.locale == locale || locale.hasPrefix(self.locale + "-") || locale.hasPrefix(self.locale + "_"))
    }
}

extension TemplateSet {
    /// Every compliance problem of the templates: for each stage, locale directory, debtor kind and
    /// channel, the rules that apply and the elements the rendered sample lacks (or must not have).
    public func complianceProblems(rules: [ComplianceRule], stages: [String], settings: ContextSettings, now: Date) -> [TemplateError] {
        var problems: [TemplateError] = []
        let localeDirs = Set(templates.keys.compactMap { $0.split(separator: "/").first.map(String.init) }).filter { LocaleRules.isKnown($0) }.sorted()
        for locale in localeDirs {
            for stage in stages {
                for kind in [DebtorKind.consumer, .business] {
                    let sample = Self.sample(stage: stage, locale: locale, kind: kind, full: true)
                    for channel in Channel.allCases {
                        for letter in settings.agency == nil ? ["*"] : ["first", "later"] {
                            let history = letter == "later" ? Self.sampleHistory : nil
                            let applicable = rules.filter {
                                $0.applies(stage: stage, locale: locale, channel: channel, kind: kind) && (!$0.agency || settings.agency != nil)
                                    && ($0.letter == letter || ($0.letter == "*" && letter != "later"))
                            }
                            guard !applicable.isEmpty else { continue }
                            let text: String
                            let everything: String
                            do {
                                if channel == .email {
                                    let r = try renderEmail(sample, settings: settings, now: now, history: history, cached: false)
                                    text = r.subject + "\n" + r.text
                                    everything = text + "\n" + r.html
                                } else {
                                    text = try renderSMS(sample, settings: settings, now: now, history: history, cached: false).text
                                    everything = text
                                }
                            } catch { continue }  // render errors are reported by check()
                            // Normalized once per render, not once per phrase (the HTML of an email is long).
                            let (normalizedText, normalizedEverything) = (Self.normalized(text), Self.normalized(everything))
                            let values = Self.placeholders(sample, settings: settings, now: now)
                            let letterNote = letter == "*" ? "" : ", \(letter) letter"
                            let where_ = "\(locale)/\(stage)/\(channel == .email ? "email" : "sms.txt") (\(kind.rawValue)\(letterNote))"
                            for rule in applicable {
                                for phrase in rule.require {
                                    for expanded in Self.expand(phrase, values) where !expanded.isEmpty && !normalizedText.contains(Self.normalized(expanded)) {
                                        problems.append(TemplateError(template: where_, message: "missing mandatory element \"\(expanded)\" (\(rule.why))"))
                                    }
                                }
                                for phrase in rule.forbid {
                                    for expanded in Self.expand(phrase, values) where !expanded.isEmpty && normalizedEverything.contains(Self.normalized(expanded)) {
                                        problems.append(TemplateError(template: where_, message: "contains forbidden element \"\(expanded)\" (\(rule.why))"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return problems
    }

    /// Text as the checks compare it: no-break spaces as spaces, lowercased.
    static func normalized(_ s: String) -> String {
        s.replacingOccurrences(of: "\u{202F}", with: " ").replacingOccurrences(of: "\u{A0}", with: " ").lowercased()
    }

    static func placeholders(_ reminder: Reminder, settings: ContextSettings, now: Date) -> [String: [String]] {
        let locale = reminder.debtor.locale
        let zone = TimeZone(identifier: reminder.debtor.timezone) ?? .gmt
        let today = CivilDate(now, in: zone)
        return [
            "{invoice.number}": reminder.invoices.map(\.number),
            "{invoice.amount}": reminder.invoices.map { Money.format(text: $0.amount, currency: $0.currency, locale: locale) },
            "{deadline}": [TemplateContext.formatDate(today.adding(days: settings.deadlineDays), locale: locale)],
            "{creditor.name}": [settings.creditor.name],
            "{creditor.payment_instructions}": [settings.paymentInstructions(locale)],
            "{indemnity}": [Money.format(settings.businessIndemnity, currency: "EUR", locale: locale)],
            "{agency.name}": [settings.agency?.name ?? ""],
            "{agency.address}": [settings.agency?.address ?? ""],
            "{first_letter.reference}": [sampleHistory.reference],
            "{first_letter.date}": [TemplateContext.formatDate(sampleHistory.date, locale: locale)],
        ]
    }

    /// The first letter that the sample's later letters recall.
    static let sampleHistory = LetterHistory(reference: "CHECK-0/email", date: CivilDate(year: 2026, month: 3, day: 2))

    /// A phrase with its placeholder replaced by each of its values.
    static func expand(_ phrase: String, _ values: [String: [String]]) -> [String] {
        for (key, list) in values where phrase.contains(key) {
            return list.map { phrase.replacingOccurrences(of: key, with: $0) }
        }
        return [phrase]
    }
}
