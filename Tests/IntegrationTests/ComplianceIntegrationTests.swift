import Foundation
import RelanceCore
import RelanceStore
import RelanceTemplates
import RelanceTransport
import Testing

/// The template compliance check, on deliberately broken copies of the shipped templates.
@Suite struct ComplianceCheckTests {
    @Test func checkNamesEachMissingMandatoryElement() async throws {
        let sandbox = try Sandbox()
        let copy = try sandbox.copyShippedTemplates()
        try sandbox.writeConfig(templates: copy)
        #expect(try await sandbox.relance(["check"]).status == 0, "the shipped templates pass")

        func edit(_ path: String, _ change: (String) -> String) throws {
            let file = copy + "/" + path
            try change(try String(contentsOfFile: file, encoding: .utf8)).write(toFile: file, atomically: true, encoding: .utf8)
        }
        // A final notice that no longer says what it is, nor gives a deadline.
        try edit("fr/final_notice/email.subject.mustache") { $0.replacingOccurrences(of: "Mise en demeure de payer", with: "Dernier rappel") }
        try edit("fr/final_notice/email.txt.mustache") {
            $0.replacingOccurrences(of: "mise en demeure", with: "dernier rappel").replacingOccurrences(of: "mettons en demeure", with: "demandons")
                .replacingOccurrences(of: ", soit au plus tard le {{deadline}}", with: "")
        }
        // A business final notice without the indemnity; a consumer reminder that adds fees.
        try edit("fr/final_notice/email.txt.mustache") {
            $0.replacingOccurrences(of: "auxquelles s'ajoute l'indemnité forfaitaire", with: "auxquelles s'ajoute")
        }
        try edit("fr/reminder_1/email.txt.mustache") { $0 + "\nDes frais de recouvrement pourront vous être facturés.\n" }
        // An SMS that does not say who sends it.
        try edit("fr/reminder_1/sms.txt.mustache") { $0.replacingOccurrences(of: "{{creditor.name}} : ", with: "") }

        let check = try await sandbox.relance(["check"])
        #expect(check.status == 2)
        let out = check.stdout
        #expect(out.contains("fr/final_notice/email (consumer): missing mandatory element \"mise en demeure\""), "\(out)")
        #expect(out.contains("fr/final_notice/email (business): missing mandatory element \"mise en demeure\""))
        let deadline = TemplateContext.formatDate(CivilDate(Date(), in: TimeZone(identifier: "Europe/Paris")!).adding(days: 8), locale: "fr-FR")
        #expect(out.contains("fr/final_notice/email (consumer): missing mandatory element \"\(deadline)\""), "the deadline date: \(out)")
        #expect(out.contains("fr/final_notice/email (business): missing mandatory element \"indemnité forfaitaire\""))
        #expect(out.contains("fr/reminder_1/email (consumer): contains forbidden element \"frais de recouvrement pourront\""))
        #expect(!out.contains("fr/reminder_1/email (business): contains forbidden"), "business reminders may mention it")
        #expect(out.contains("fr/reminder_1/sms.txt (consumer): missing mandatory element \"Exemple SAS\" (every SMS identifies the creditor)"))
        #expect(!out.contains("en/"), "the English templates were not touched: \(out)")
        // The daemon refuses to start on them.
        let serve = try await sandbox.relance(["serve", "--once"])
        #expect(serve.status == 2 && serve.stderr.contains("missing mandatory element"))
        // Configured rules add to the built-in ones.
        try edit("en/pre_due/email.txt.mustache") { $0 }
        let yaml = try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
        try
            (yaml
            + "\ncompliance: { rules: [ { stage: pre_due, locale: en, channel: email, require: [\"Kind regards\", \"{invoice.number}\"], why: house style } ] }\n")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        let custom = try await sandbox.relance(["check"])
        #expect(custom.stdout.contains("en/pre_due/email (consumer): missing mandatory element \"Kind regards\" (house style)"), "\(custom.stdout)")
        #expect(!custom.stdout.contains("missing mandatory element \"F-CHECK-1\" (house style)"))
        // A misspelt rule key is an error, not a rule that silently checks nothing.
        try (yaml + "\ncompliance: { rules: [ { stage: pre_due, requires: [\"Kind regards\"] } ] }\n")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        let typo = try await sandbox.relance(["check"])
        #expect(typo.status == 2 && typo.stderr.contains("compliance.rules[0].requires: unknown key"), "\(typo.stderr)")
    }
}

/// Grouping: a debtor's reminders due together go in one message.
@Suite struct GroupingTests {
    func reminder(_ id: String, stage: String = "reminder_1", email: String = "groupe@example.org") -> [String: Any] {
        var r = Records.reminder(id, stage: stage, email: email, amount: "100.00")
        r["debtor"] = Records.debtor("C-GROUP", email: email)
        return r
    }

    @Test func oneMessageListsEveryInvoiceAndAFormalNoticeStaysApart() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        // Two messages a day for this debtor: the group counts as one, the final notice as the second.
        try sandbox.writeConfig(
            smtpPort: server.port,
            policy: "{ windows: { sms: always, email: always }, holidays: none, caps: { per_day: 2, per_7_days: none, per_30_days: none } }")
        try sandbox.dropLines(
            "batch.jsonl",
            [
                reminder("GR-1"), reminder("GR-2"), reminder("GR-3"), reminder("GR-FN", stage: "final_notice"),
                reminder("GR-OTHER", email: "autre-adresse@example.org"),
            ])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let final = try await statuses(try sandbox.ledger())
        #expect(final["GR-1/email"] == "sent" && final["GR-2/email"] == "sent" && final["GR-3/email"] == "sent" && final["GR-FN/email"] == "sent", "\(final)")
        #expect(final["GR-OTHER/email"] == "pending", "a third contact that day waits for tomorrow: \(final)")
        #expect(server.messages.count == 2, "one message for the three reminders, one for the formal notice")
        var texts: [String] = []
        for path in server.messages {
            texts.append(try await plainText(path, in: sandbox))
        }
        let grouped = try #require(texts.first { $0.contains("INV-GR-1") })
        #expect(grouped.contains("INV-GR-2") && grouped.contains("INV-GR-3"), "every invoice is listed")
        #expect(grouped.contains("300,00"), "with their total")
        #expect(!grouped.contains("INV-GR-FN"), "a formal notice is never merged with a reminder")
        let notice = try #require(texts.first { $0.contains("INV-GR-FN") })
        #expect(notice.lowercased().contains("mise en demeure") && !notice.contains("INV-GR-1"))
        let events = try await sandbox.ledger().events(reminderID: "GR-2").map(\.reason)
        #expect(events.contains { $0.contains("in one message with GR-1") }, "\(events)")
    }

    @Test func groupingCanBeTurnedOff() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(
            smtpPort: server.port,
            policy: "{ group: false, windows: { sms: always, email: always }, holidays: none, caps: { per_day: none, per_7_days: none, per_30_days: none } }")
        try sandbox.dropLines("batch.jsonl", [reminder("NG-1"), reminder("NG-2")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(server.messages.count == 2)
    }
}

/// Agency mode (CPCE R124-4): the first letter's mentions, and later letters recalling it.
@Suite struct AgencyModeTests {
    static let agency = "agency: { name: \"Recouvrement Exemple SARL\", address: \"3 place Kléber, 67000 Strasbourg\" }"

    @Test func firstLetterMentionsAndLaterLettersRecallIt() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port, extra: Self.agency)
        #expect(try await sandbox.relance(["check"]).status == 0, "the shipped templates carry the agency mentions")
        var first = Records.reminder("AG-1", email: "ag@example.org", extra: ["vars": ["interest": "12.34"]])
        first["invoices"] = [["number": "INV-AG", "amount": "500.00", "currency": "EUR", "issued_on": "2026-09-01", "due_on": "2026-10-01"]]
        try sandbox.dropLines("first.jsonl", [first])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        var later = first
        later["id"] = "AG-2"
        later["stage"] = "reminder_2"
        try sandbox.dropLines("later.jsonl", [later])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(server.messages.count == 2)
        let one = try await plainText(server.messages[0], in: sandbox)
        #expect(one.contains("Recouvrement Exemple SARL, 3 place Kléber, 67000 Strasbourg, agit en qualité de société de recouvrement amiable"))
        #expect(one.contains("principal 500,00\u{A0}€, intérêts 12,34\u{A0}€, autres sommes 0,00\u{A0}€, soit au total 512,34\u{A0}€"), "\(one)")
        #expect(one.contains("Article L111-8"))
        let two = try await plainText(server.messages[1], in: sandbox)
        let sentOn = TemplateContext.formatDate(
            CivilDate(try #require(try await receipts(try sandbox.ledger(), reminderID: "AG-1").first).startedAt, in: TimeZone(identifier: "Europe/Paris")!),
            locale: "fr-FR")
        #expect(two.contains("Suite à notre premier courrier réf. AG-1/email du \(sentOn)."), "\(two)")
        #expect(!two.contains("Article L111-8"))
    }

    @Test func checkNamesMissingAgencyMentions() async throws {
        let sandbox = try Sandbox()
        let copy = try sandbox.copyShippedTemplates()
        try sandbox.writeConfig(extra: Self.agency, templates: copy)
        let partial = copy + "/fr/partials/agency.txt.mustache"
        let text = try String(contentsOfFile: partial, encoding: .utf8)
        try text.replacingOccurrences(of: "Article L111-8 du code", with: "Article du code")
            .replacingOccurrences(of: " réf. {{first_letter.reference}}", with: "")
            .write(toFile: partial, atomically: true, encoding: .utf8)
        let check = try await sandbox.relance(["check"])
        #expect(check.status == 2)
        #expect(check.stdout.contains("fr/reminder_1/email (consumer, first letter): missing mandatory element \"L111-8\""), "\(check.stdout)")
        #expect(check.stdout.contains("fr/final_notice/email (business, later letter): missing mandatory element \"CHECK-0/email\""))
        #expect(!check.stdout.contains("en/"))
        // Without agency mode the same templates pass: the mentions are not required.
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8).replacingOccurrences(of: Self.agency, with: "")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        #expect(try await sandbox.relance(["check"]).status == 0)
    }
}
