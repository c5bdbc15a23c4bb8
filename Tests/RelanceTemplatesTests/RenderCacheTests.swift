import Foundation
import RelanceCore
import RelanceTestSupport
import Testing

@testable import RelanceTemplates

/// The render cache fills a shape rendered once; these tests render the same messages with and
/// without it and compare every octet (and every error).
@Suite struct RenderCacheTests {
    /// Texts that a marker must not be confused with, or that change how swift-mustache renders.
    static let tricky = [
        "Élodie Martin", "O'Neil & <Fils> \"SARL\"", "", " ", "a\r\nBcc: x@example.org", "deux\nlignes", "fin\r", "\n",
        "\u{E000}s0S&\u{E001}", "\u{E001}", "e\u{301}", "\u{301}accent", "<\u{338}", "🙂 ok", "S&amp;", "{{debtor.name}}", "ＡＢＣ",
    ]


    static func reminder(_ i: Int, stages: [String], using random: inout SplitMix64) -> Reminder {
        func pick(_ texts: [String]) -> String { texts.randomElement(using: &random)! }
        let names = tricky + (0..<6).map { "Client \($0)" }
        let currencies = ["EUR", "EUR", "EUR", "GBP", "USD", "JPY"]
        let invoices = (0..<Int.random(in: 1...4, using: &random)).map { k -> Invoice in
            let currency = pick(currencies)
            let amount = currency == "JPY" ? "\(Int.random(in: 1...999_999, using: &random))" : "\(Int.random(in: 0...99_999, using: &random)).\(Int.random(in: 10...99, using: &random))"
            let due = CivilDate(dayNumber: CivilDate(year: 2026, month: 11, day: 30).dayNumber - Int.random(in: -20...120, using: &random))
            return Invoice(
                number: Bool.random(using: &random) ? "F-\(i)-\(k)" : pick(tricky), amount: amount, currency: currency,
                issuedOn: CivilDate(dayNumber: due.dayNumber - 30), dueOn: due)
        }
        var reminder = Reminder(
            id: "R-\(i)", stage: pick(stages), channels: [.email, .sms],
            debtor: Debtor(
                id: "C-\(i)", name: pick(names), email: "c\(i)@example.org", phone: "+33612345678", country: "FR",
                locale: pick(["fr-FR", "en-GB", "fr", "en", "de-DE", "fr-BE"]), timezone: pick(["Europe/Paris", "America/New_York"]),
                kind: Bool.random(using: &random) ? .business : .consumer),
            invoices: invoices,
            paymentURL: pick(["https://pay.example.org/\(i)", "https://pay.example.org/?a=1&b=<2>", "", "none"]),
            attachments: Bool.random(using: &random) ? ["/srv/invoices/\(pick(["F-1.pdf", "a&b.pdf"]))"] : [])
        if reminder.paymentURL == "none" { reminder.paymentURL = nil }
        for key in ["interest", "other_sums", "note"] where Bool.random(using: &random) {
            reminder.vars[key] = Bool.random(using: &random) ? .number(pick(["12.50", "0"])) : .string(pick(tricky))
        }
        return reminder
    }

    static func contextSettings(_ i: Int) -> ContextSettings {
        var s = ContextSettings(creditor: .example, vars: ["note": "", "interest": "0", "other_sums": "0"])
        if i % 3 == 0 { s.agency = Agency(name: "Recouvre & Co", address: "1 rue X\n75001 Paris") }
        if i % 4 == 0 { s.penaltyRate = 12.5 }
        if i % 5 == 0 { s.creditor.address = "" }
        return s
    }

    func compare(_ set: TemplateSet, _ reminder: Reminder, settings: ContextSettings, history: LetterHistory?) {
        let cached = Result { try set.renderEmail(reminder, settings: settings, now: now, history: history, cached: true) }
        let direct = Result { try set.renderEmail(reminder, settings: settings, now: now, history: history, cached: false) }
        switch (cached, direct) {
        case (.success(let a), .success(let b)):
            #expect(a == b, "\(reminder.id) \(reminder.stage) \(reminder.debtor.locale) \(reminder.debtor.name.debugDescription)")
        case (.failure(let a), .failure(let b)):
            #expect("\(a)" == "\(b)")
        default:
            Issue.record("\(reminder.id): \(cached) against \(direct)")
        }
        let smsCached = Result { try set.renderSMS(reminder, settings: settings, now: now, history: history, cached: true) }
        let smsDirect = Result { try set.renderSMS(reminder, settings: settings, now: now, history: history, cached: false) }
        #expect("\(smsCached)" == "\(smsDirect)", "\(reminder.id)")
    }

    /// The shipped templates, 3,000 random messages: every stage, locale, kind, several
    /// invoices and currencies, agency mode, penalties, letters with and without history, names
    /// with markup, line breaks, marker characters and combining marks.
    @Test func shippedTemplatesRenderAlikeFromTheCache() throws {
        let set = try TemplateSet(directory: ShippedTemplatesTests.root, defaultLocale: "fr-FR")
        var random = SplitMix64(seed: 42)
        for i in 0..<3000 {
            let reminder = Self.reminder(i, stages: ["pre_due", "reminder_1", "reminder_2", "final_notice"], using: &random)
            let history = i % 7 == 0 ? LetterHistory(reference: Self.tricky[i % Self.tricky.count], date: CivilDate(year: 2026, month: 10, day: 2)) : nil
            compare(set, reminder, settings: Self.contextSettings(i), history: history)
        }
        // Many came from the cache (12,000 renders that could; the random messages have many shapes).
        #expect(set.cache.hits.load(ordering: .relaxed) > 4000, "\(set.cache.hits.load(ordering: .relaxed))")
    }

    /// Constructs that depend on more than where a text lands: transforms of text, lists and
    /// numbers, sections and inverted sections over text, a list's position, partials indented
    /// (whose lines swift-mustache indents by looking at the output's last character), a value
    /// in triple braces, dotted names inside sections, the current value, and an unknown name.
    @Test func trickyTemplatesRenderAlikeFromTheCache() throws {
        let html = """
            <h1>{{debtor.name}}</h1>
            {{#empty(payment_url)}}no url{{/empty(payment_url)}}{{^empty(payment_url)}}<a href="{{payment_url}}">{{{payment_url}}}</a>{{/empty(payment_url)}}
            {{#payment_url}}[{{.}}]{{/payment_url}}{{^payment_url}}never{{/payment_url}}
            {{#invoices}}{{#first()}}first {{/first()}}{{index()}}:{{number}}/{{debtor.name}}/{{creditor.name}}{{^last()}}, {{/last()}}{{/invoices}}
            {{#reversed(invoices)}}{{number}} {{/reversed(invoices)}} count {{count(invoices)}} {{#first(invoices)}}{{amount}}{{/first(invoices)}}
            {{invoice_count}} {{#invoices}}{{days_overdue}} {{#is_overdue}}late{{/is_overdue}} {{/invoices}}{{#days_overdue}}[{{.}}]{{/days_overdue}}
              {{> block.html}}
            {{#debtor}}{{name}} {{kind}}{{/debtor}} {{#vars}}{{note}}{{/vars}} {{vars.note}}|{{#vars.note}}[{{.}}]{{/vars.note}}
            """
        let block = """
            <p>{{debtor.name}}</p>
            {{creditor.address}}
            {{#invoices}}
              <li>{{number}}</li>
            {{/invoices}}
            {{vars.note}}{{vars.note}}
            end
            """
        let text = "{{debtor.name}}\n  {{> lines.txt}}\n{{#has_several_invoices}}{{invoice_count}}{{/has_several_invoices}}"
        let lines = "{{creditor.address}}\n{{vars.note}}\n{{#invoices}}\n- {{number}} {{amount}}\n{{/invoices}}\n"
        var files = emailFiles("fr", "reminder_1", subject: "{{debtor.name}} {{total}}", text: text, html: html)
        files["fr/partials/block.html.mustache"] = block
        files["fr/partials/lines.txt.mustache"] = lines
        files["fr/reminder_1/sms.txt.mustache"] = """
            {{uppercased(debtor.name)}} {{lowercased(debtor.name)}} {{capitalized(debtor.name)}} {{reversed(debtor.name)}}
            {{plusone(invoice_count)}} {{#equalzero(days_overdue)}}due today{{/equalzero(days_overdue)}}{{#even(days_overdue)}}even{{/even(days_overdue)}}
            """
        files["fr/reminder_2/email.subject.mustache"] = "{{debtor.nmae}}"
        files["fr/reminder_2/email.txt.mustache"] = "x"
        files["fr/reminder_2/email.html.mustache"] = "x"
        files["fr/reminder_2/sms.txt.mustache"] = "{{vars.unknown}}"
        let set = try TemplateTree(files).set()
        var random = SplitMix64(seed: 7)
        for i in 0..<2000 {
            var reminder = Self.reminder(i, stages: ["reminder_1", "reminder_1", "reminder_2"], using: &random)
            reminder.debtor.locale = "fr-FR"
            compare(set, reminder, settings: Self.contextSettings(i), history: nil)
        }
        #expect(set.cache.hits.load(ordering: .relaxed) > 1000, "\(set.cache.hits.load(ordering: .relaxed))")
    }

    /// An unknown name is an error however many messages of the same shape came before it: a
    /// cached shape never hides one.
    @Test func anUnknownNameIsAnErrorEvenAfterCachedShapes() throws {
        let set = try TemplateTree(emailFiles("fr", "reminder_1", html: "<p>{{debtor.name}}{{#has_payment_url}}{{vars.missing}}{{/has_payment_url}}</p>")).set()
        for _ in 0..<3 { _ = try set.renderEmail(sampleReminder(), settings: settings, now: now) }
        #expect(throws: TemplateError.self) { try set.renderEmail(sampleReminder(paymentURL: "https://pay.example.org"), settings: settings, now: now) }
    }

    /// A marker that comes out changed or split is refused, never filled.
    @Test func markersAreReadBackExactlyOrNotAtAll() {
        let m = RenderCache.Marker.self
        #expect(RenderCache.Entry.segments(of: "a\(m.text(0))b\(m.text(1).replacingOccurrences(of: "&", with: "&amp;"))c", holes: 2)
            .map { "\($0)" } == "\([RenderCache.Segment.literal("a"), .hole(0, escaped: false), .literal("b"), .hole(1, escaped: true), .literal("c")])")
        for bad in [
            m.text(0).uppercased(), m.text(0).lowercased(), String(m.text(0).reversed()), m.text(2), "\(m.open)s01S&\(m.close)",
            "\(m.open)s-1S&\(m.close)", "\(m.open)s0S&", "s0S&\(m.close)", "\(m.open)\(m.text(0))", "\(m.open)sS&\(m.close)",
        ] {
            #expect(RenderCache.Entry.segments(of: "x" + bad + "y", holes: 2) == nil, "\(bad.debugDescription)")
        }
        #expect(m.canFill("Élodie & <b>"))
        for text in ["", "a\nb", "a\rb", "a\u{E000}", "\u{E001}"] { #expect(!m.canFill(text), "\(text.debugDescription)") }
    }
}
