import Foundation
import RelanceCore
import Testing

@testable import RelanceTemplates

/// A template tree in a fresh temporary directory.
struct TemplateTree {
    let root: String

    init(_ files: [String: String]) throws {
        root = NSTemporaryDirectory() + "relance-templates-" + UUID().uuidString
        for (path, text) in files {
            let full = root + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
    }

    func set(defaultLocale: String = "fr-FR") throws -> TemplateSet { try TemplateSet(directory: root, defaultLocale: defaultLocale) }
}

let settings = ContextSettings(creditor: Creditor.example)
let now = Date(timeIntervalSince1970: 1_796_025_600)  // 2026-11-30T08:00:00Z

func sampleReminder(stage: String = "reminder_1", locale: String = "fr-FR", kind: DebtorKind = .consumer, paymentURL: String? = nil) -> Reminder {
    Reminder(
        id: "F2026-0042-R1", stage: stage, channels: [.email],
        debtor: Debtor(
            id: "C-1", name: "Élodie <Martin>", email: "elodie@example.fr", phone: "+33612345678", country: "FR", locale: locale, timezone: "Europe/Paris",
            kind: kind),
        invoices: [Invoice(number: "F2026-0042", amount: "1234.50", currency: "EUR", issuedOn: CivilDate("2026-10-01")!, dueOn: CivilDate("2026-10-31")!)],
        paymentURL: paymentURL)
}

func emailFiles(
    _ locale: String, _ stage: String, subject: String = "Facture {{#invoices}}{{number}}{{/invoices}}", text: String = "Bonjour {{debtor.name}}, {{total}}",
    html: String = "<p>{{debtor.name}}</p>"
) -> [String: String] {
    [
        "\(locale)/\(stage)/email.subject.mustache": subject, "\(locale)/\(stage)/email.txt.mustache": text,
        "\(locale)/\(stage)/email.html.mustache": html, "\(locale)/\(stage)/sms.txt.mustache": "{{creditor.name}}: {{total}}",
    ]
}

@Suite struct TemplateSetTests {
    @Test func rendersWithLocaleFormattingAndEscaping() throws {
        let set = try TemplateTree(emailFiles("fr", "reminder_1")).set()
        let email = try set.renderEmail(sampleReminder(), settings: settings, now: now)
        #expect(email.subject == "Facture F2026-0042")
        #expect(email.text == "Bonjour Élodie <Martin>, 1\u{202F}234,50\u{00A0}€", "text templates must not be HTML-escaped")
        #expect(email.html == "<p>Élodie &lt;Martin&gt;</p>", "HTML templates escape values")
    }

    /// HTML templates and partials escape the five characters with the entities swift-mustache
    /// uses, by octets; text templates and partials escape nothing; a template that names its own
    /// content type keeps it.
    @Test func htmlValuesAreEscapedInTemplatesAndPartials() throws {
        var reminder = sampleReminder()
        reminder.debtor.name = #"<b>"O'Neil" & Fils</b> é<\#u{0338}"#
        var files = emailFiles("fr", "reminder_1", text: "{{debtor.name}} {{> sig.txt}}", html: "<p>{{debtor.name}}</p>{{> sig.html}}")
        files["fr/partials/sig.html.mustache"] = "{{#invoices}}<i>{{debtor.name}}</i>{{/invoices}}"
        files["fr/partials/sig.txt.mustache"] = "[{{debtor.name}}]"
        files["fr/reminder_2/email.html.mustache"] = "{{% CONTENT_TYPE: TEXT}}\n{{debtor.name}}"
        files["fr/reminder_2/email.txt.mustache"] = "x"
        files["fr/reminder_2/email.subject.mustache"] = "x"
        let set = try TemplateTree(files).set()
        let email = try set.renderEmail(reminder, settings: settings, now: now)
        let escaped = #"&lt;b&gt;&quot;O&#39;Neil&quot; &amp; Fils&lt;/b&gt; é&lt;\#u{0338}"#
        #expect(email.html == "<p>\(escaped)</p><i>\(escaped)</i>")
        #expect(email.text == "\(reminder.debtor.name) [\(reminder.debtor.name)]")
        reminder.stage = "reminder_2"
        #expect(try set.renderEmail(reminder, settings: settings, now: now).html == reminder.debtor.name)
        #expect(HTMLEscaping.escape("plain value, no change") == "plain value, no change")
    }

    /// The content-type line put at the top of every template does not shift the line a syntax
    /// error is reported at (text templates' errors were one line off).
    @Test(arguments: ["email.txt", "email.html"]) func syntaxErrorsNameTheAuthorsLine(part: String) throws {
        var files = emailFiles("fr", "reminder_1")
        files["fr/reminder_1/\(part).mustache"] = "Bonjour\n{{debtor.name}\n"
        #expect {
            try TemplateTree(files).set()
        } throws: { error in
            "\(error)".contains("syntax error at line 2,")
        }
    }

    @Test func missingVariableIsAnError() throws {
        let set = try TemplateTree(emailFiles("fr", "reminder_1", text: "Bonjour {{debtor.nmae}}")).set()
        #expect {
            try set.renderEmail(sampleReminder(), settings: settings, now: now)
        } throws: { error in
            "\(error)".contains("unknown variable 'debtor.nmae'")
        }
    }

    @Test func missingTopLevelVariableInsideSectionIsAnError() throws {
        let set = try TemplateTree(emailFiles("fr", "reminder_1", text: "{{#invoices}}{{numbr}} {{creditor.name}}{{/invoices}}")).set()
        #expect(throws: TemplateError.self) { try set.renderEmail(sampleReminder(), settings: settings, now: now) }
    }

    @Test func outerNamesResolveInsideSections() throws {
        let set = try TemplateTree(emailFiles("fr", "reminder_1", text: "{{#invoices}}{{number}} {{creditor.name}} {{stage}}{{/invoices}}")).set()
        #expect(try set.renderEmail(sampleReminder(), settings: settings, now: now).text == "F2026-0042 Exemple SAS reminder_1")
    }

    @Test func optionalKeysAreAlwaysPresent() throws {
        let set = try TemplateTree(
            emailFiles("fr", "reminder_1", text: "{{#has_payment_url}}{{payment_url}}{{/has_payment_url}}{{^has_payment_url}}none{{/has_payment_url}}")
        ).set()
        #expect(try set.renderEmail(sampleReminder(), settings: settings, now: now).text == "none")
        #expect(try set.renderEmail(sampleReminder(paymentURL: "https://p.example/x"), settings: settings, now: now).text == "https://p.example/x")
    }

    @Test func missingPartialIsAnError() throws {
        let set = try TemplateTree(emailFiles("fr", "reminder_1", text: "{{> footer.txt}}")).set()
        #expect {
            try set.renderEmail(sampleReminder(), settings: settings, now: now)
        } throws: { error in
            "\(error)".contains("partial 'footer.txt' not found")
        }
    }

    @Test func localeFallbackForTemplatesAndPartials() throws {
        var files = emailFiles("fr", "reminder_1", text: "{{> sig.txt}}")
        files.merge(emailFiles("en", "reminder_1", text: "Dear {{debtor.name}} {{> sig.txt}}")) { a, _ in a }
        files["fr/partials/sig.txt.mustache"] = "Cordialement {{creditor.name}}"
        files["en-GB/partials/sig.txt.mustache"] = "Kind regards {{creditor.name}} & co"
        let set = try TemplateTree(files).set()
        #expect(try set.renderEmail(sampleReminder(locale: "en-GB"), settings: settings, now: now).text == "Dear Élodie <Martin> Kind regards Exemple SAS & co")
        // en-US: the template from en, the partial from the end of the chain (en-US → en → fr-FR → fr).
        #expect(try set.renderEmail(sampleReminder(locale: "en-US"), settings: settings, now: now).text == "Dear Élodie <Martin> Cordialement Exemple SAS")
        // de-DE falls back to the default locale fr-FR → fr.
        #expect(try set.renderEmail(sampleReminder(locale: "de-DE"), settings: settings, now: now).text == "Cordialement Exemple SAS")
    }

    @Test func subjectOnSeveralLinesIsRefused() throws {
        let set = try TemplateTree(emailFiles("fr", "reminder_1", subject: "Ligne 1\nLigne 2")).set()
        #expect(throws: TemplateError.self) { try set.renderEmail(sampleReminder(), settings: settings, now: now) }
    }

    @Test func checkReportsMissingParts() throws {
        var files = emailFiles("fr", "reminder_1")
        files.removeValue(forKey: "fr/reminder_1/sms.txt.mustache")
        let problems = try TemplateTree(files).set().check(stages: ["reminder_1"], settings: settings, now: now)
        #expect(problems.contains { $0.template == "fr-FR/reminder_1/sms.txt" })
    }

    @Test func checkRendersBothSidesOfOptionalSections() throws {
        let files = emailFiles(
            "fr", "reminder_1", text: "{{#has_payment_url}}{{payment_url}}{{/has_payment_url}}{{^has_payment_url}}{{creditor.iban}}{{/has_payment_url}}")
        let problems = try TemplateTree(files).set().check(stages: ["reminder_1"], settings: settings, now: now)
        #expect(problems.contains { $0.message.contains("'creditor.iban'") })
    }

    @Test func syntaxErrorNamesTheTemplate() throws {
        let tree = try TemplateTree(emailFiles("fr", "reminder_1", text: "{{#invoices}}unclosed"))
        #expect {
            try tree.set()
        } throws: { error in
            "\(error)".contains("fr/reminder_1/email.txt")
        }
    }

    @Test func businessValues() throws {
        let set = try TemplateTree(
            emailFiles(
                "fr", "reminder_1",
                text: "{{#debtor.is_business}}{{indemnity_total}}{{/debtor.is_business}}{{#debtor.is_consumer}}-{{/debtor.is_consumer}} {{days_overdue}}")
        ).set()
        #expect(try set.renderEmail(sampleReminder(kind: .business), settings: settings, now: now).text == "40,00\u{00A0}€ 30")
        #expect(try set.renderEmail(sampleReminder(kind: .consumer), settings: settings, now: now).text == "- 30")
    }
}

/// The templates shipped in `templates/`.
@Suite struct ShippedTemplatesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path + "/templates"
    let stages = ["pre_due", "reminder_1", "reminder_2", "final_notice"]

    @Test func passTheCheck() throws {
        let set = try TemplateSet(directory: Self.root, defaultLocale: "fr-FR")
        #expect(set.check(stages: stages, settings: settings, now: now).map(\.description) == [])
        for locale in ["fr", "en"] {
            for stage in stages {
                for part in TemplateSet.emailParts + TemplateSet.smsParts {
                    #expect(FileManager.default.fileExists(atPath: "\(Self.root)/\(locale)/\(stage)/\(part).mustache"), "\(locale)/\(stage)/\(part)")
                }
            }
        }
    }

    @Test func frenchFinalNoticeIsAMiseEnDemeure() throws {
        let set = try TemplateSet(directory: Self.root, defaultLocale: "fr-FR")
        let business = try set.renderEmail(
            sampleReminder(stage: "final_notice", kind: .business, paymentURL: "https://pay.example.fr/x"), settings: settings, now: now)
        for needle in [
            "mise en demeure", "F2026-0042", "1\u{202F}234,50\u{00A0}€", "1 octobre 2026", "8 décembre 2026", "https://pay.example.fr/x", "L441-10",
            "40,00\u{00A0}€", "procédure judiciaire",
        ] {
            #expect(business.text.lowercased().contains(needle.lowercased()), "business text lacks \(needle)")
        }
        #expect(business.subject.contains("Mise en demeure"))
        let consumer = try set.renderEmail(sampleReminder(stage: "final_notice", kind: .consumer), settings: settings, now: now)
        #expect(consumer.text.contains("mise en demeure"))
        #expect(!consumer.text.contains("40,00"), "no recovery indemnity for consumers")
        #expect(!consumer.text.contains("L441-10"))
        #expect(consumer.text.contains("1344-1"))
    }

    /// `plan.penalty_rate` set: a business debtor's final notice shows the penalties accrued to
    /// date (1,234.50 € × 12.15 % × 30 days ÷ 365 = 12.33 €); a consumer's never; without a rate, none.
    @Test func theFinalNoticeShowsAccruedPenaltiesToBusinessesWhenARateIsSet() throws {
        let set = try TemplateSet(directory: Self.root, defaultLocale: "fr-FR")
        var withRate = settings
        withRate.penaltyRate = Decimal(string: "12.15")
        let business = try set.renderEmail(sampleReminder(stage: "final_notice", kind: .business), settings: withRate, now: now)
        #expect(business.text.contains("pénalités de retard au taux annuel de 12,15\u{00A0}% s'élèvent à 12,33\u{00A0}€"), "\(business.text)")
        #expect(business.html.contains("12,33\u{00A0}€"))
        let english = try set.renderEmail(sampleReminder(stage: "final_notice", locale: "en-GB", kind: .business), settings: withRate, now: now)
        #expect(english.text.contains("at the annual rate of 12.15% amount to €12.33"), "\(english.text)")
        let consumer = try set.renderEmail(sampleReminder(stage: "final_notice", kind: .consumer), settings: withRate, now: now)
        #expect(!consumer.text.contains("taux annuel"))
        let noRate = try set.renderEmail(sampleReminder(stage: "final_notice", kind: .business), settings: settings, now: now)
        #expect(!noRate.text.contains("taux annuel"))
    }

    @Test func everyStageNamesInvoiceAndAmountInBothLanguages() throws {
        let set = try TemplateSet(directory: Self.root, defaultLocale: "fr-FR")
        for stage in stages {
            for (locale, amount) in [("fr-FR", "1\u{202F}234,50\u{00A0}€"), ("en-GB", "€1,234.50")] {
                let email = try set.renderEmail(sampleReminder(stage: stage, locale: locale), settings: settings, now: now)
                #expect(email.text.contains("F2026-0042"), "\(locale) \(stage)")
                #expect(email.text.contains(amount), "\(locale) \(stage)")
                #expect(email.html.contains(amount), "\(locale) \(stage)")
                #expect(email.html.contains("&lt;Martin&gt;"), "\(locale) \(stage): names are escaped in HTML")
                let sms = try set.renderSMS(sampleReminder(stage: stage, locale: locale), settings: settings, now: now)
                #expect(sms.text.contains("Exemple SAS"), "every SMS identifies the creditor")
            }
        }
    }
}
