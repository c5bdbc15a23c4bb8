import Foundation
import RelanceCore
import RelanceStore
import Testing

/// What a new user hit in the first hour (issue 10, section 4), through the binary.
@Suite struct NewUserTests {
    @Test func usageErrorsExit2AndVersionSaysWhatRuns() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        for arguments in [["frobnicate"], ["receipts", "--format", "xml"], ["serve", "--bogus"], ["resolve", "--reminder", "R"]] {
            let run = try await sandbox.relance(arguments)
            #expect(run.status == 2, "\(arguments): \(run.stderr)")
        }
        let version = try Child(Package.relance, ["--version"], directory: sandbox.root)
        #expect(try await version.wait() == 0)
        let lines = version.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("relance ") == true && lines.first?.contains("(commit ") == true, "\(version.stdout)")
        #expect(lines.contains { $0.hasPrefix("libcurl 7.") || $0.hasPrefix("libcurl 8.") })
        #expect(lines.contains { $0.hasPrefix("SQLite 3.") })
    }

    @Test func aPauseThatEndsInThePastIsRefused() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let past = Timestamp.format(Date().addingTimeInterval(-3600))
        let run = try await sandbox.relance(["pause", "--all", "--until", past])
        #expect(run.status == 2)
        #expect(run.stderr.contains("a pause must end in the future"))
        #expect(try await sandbox.relance(["pause", "--all", "--until", Timestamp.format(Date().addingTimeInterval(3600))]).status == 0)
    }

    /// `check` failed on `{{vars.x}}` although records may carry `vars`.
    @Test func declaredTemplateVariablesHaveDefaultsThatRecordsOverride() async throws {
        let sandbox = try Sandbox()
        let templates = try sandbox.copyShippedTemplates()
        let sms = templates + "/fr/reminder_1/sms.txt.mustache"
        try "{{creditor.name}} : {{total}} à régler. Contact : {{vars.account_manager}}.".write(toFile: sms, atomically: true, encoding: .utf8)
        try sandbox.writeConfig(templates: templates)
        let undeclared = try await sandbox.relance(["check"])
        #expect(undeclared.status == 2)
        #expect(undeclared.stdout.contains("vars.account_manager"), "\(undeclared.stdout)")

        try sandbox.writeConfig(templates: templates)
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            .replacingOccurrences(
                of: "templates: { path: \"\(templates)\" }", with: "templates: { path: \"\(templates)\", vars: { account_manager: \"le service comptable\" } }"
            )
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        let declared = try await sandbox.relance(["check"])
        #expect(declared.status == 0, "\(declared.stdout)\(declared.stderr)")
        var own = SMSIntegrationTests.smsReminder("V-OWN", phone: "+33612345678")
        own["vars"] = ["account_manager": "Paul Durand"]
        try sandbox.dropLines("a.jsonl", [own, SMSIntegrationTests.smsReminder("V-DEF", phone: "+33698765432")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let texts = Dictionary(
            uniqueKeysWithValues: jsonLines(sandbox.root + "/outbox/sms.jsonl").map { ($0["reminder_id"] as? String ?? "", $0["text"] as? String ?? "") })
        #expect(texts["V-OWN"]?.hasSuffix("Contact : Paul Durand.") == true, "\(texts)")
        #expect(texts["V-DEF"]?.hasSuffix("Contact : le service comptable.") == true, "\(texts)")
    }

    /// The pre-due email said "échue le" of a date still to come; the English notice printed the
    /// French payment instructions.
    @Test func frenchTenseAndInstructionsInTheDebtorsLanguage() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig(
            extra: """
                creditor:
                  name: "Exemple SAS"
                  payment_instructions: { fr: "Virement IBAN FR76 0000, réf. facture.", en: "Bank transfer to IBAN FR76 0000, quoting the invoice." }
                """)
        let soon = CivilDate(Date().addingTimeInterval(5 * 86400), in: TimeZone(identifier: "Europe/Paris") ?? .gmt).description
        var preDue = Records.reminder("T-PRE", stage: "pre_due")
        preDue["invoices"] = [["number": "INV-PRE", "amount": "10.00", "currency": "EUR", "issued_on": "2026-09-01", "due_on": soon]]
        try sandbox.dropLines(
            "a.jsonl", [preDue, Records.reminder("T-LATE", stage: "reminder_1"), Records.reminder("T-EN", stage: "final_notice", locale: "en-GB")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        var bodies: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: sandbox.maildir + "/new") {
            let text = try await plainText(sandbox.maildir + "/new/" + name, in: sandbox)
            for (id, invoice) in [("T-PRE", "INV-PRE"), ("T-LATE", "INV-T-LATE"), ("T-EN", "INV-T-EN")] where text.contains(invoice) { bodies[id] = text }
        }
        let pre = try #require(bodies["T-PRE"], "\(bodies.keys)")
        #expect(pre.contains("à régler au plus tard le"), "\(pre)")
        #expect(!pre.contains("échue le"))
        #expect(bodies["T-LATE"]?.contains("échue le") == true)
        let english = try #require(bodies["T-EN"])
        #expect(english.contains("Bank transfer to IBAN FR76 0000, quoting the invoice."))
        #expect(!english.contains("Virement"))
    }

    /// Deliveries that never had an attempt were invisible to `receipts --format json|csv`.
    @Test func receiptsCoverEveryDeliveryWithItsInvoices() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let ledger = try Ledger(path: sandbox.ledgerPath)
        try await ledger.suppress("gone@example.org", reason: "STOP", source: "test", now: Date())
        var future = Records.reminder("W2", email: "w2@example.org")
        future["not_before"] = Timestamp.format(Date().addingTimeInterval(86400))
        try sandbox.dropLines(
            "a.jsonl", [Records.reminder("W1", email: "w1@example.org"), future, Records.reminder("W3", email: "gone@example.org", amount: "99.90")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)

        let w2 = try await sandbox.relance(["receipts", "--reminder", "W2", "--format", "json"])
        #expect(w2.status == 0)
        let w2Rows = w2.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(w2Rows.count == 1, "\(w2.stdout)")
        #expect(w2Rows.first?["status"] as? String == "pending")
        #expect(w2Rows.first?["attempt"] as? Int == 0)
        #expect(w2Rows.first?["outcome"] as? String == "none")

        let suppressed = try await sandbox.relance(["receipts", "--status", "suppressed", "--format", "json"])
        let row = try #require(
            suppressed.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.first)
        #expect(row["reminder_id"] as? String == "W3")
        #expect(row["stage"] as? String == "reminder_1")
        #expect(row["invoices"] as? [String] == ["INV-W3"])
        #expect(row["amounts"] as? [String] == ["99.90 EUR"])

        let all = try await sandbox.relance(["receipts", "--format", "csv"])
        let lines = all.stdout.split(separator: "\n")
        #expect(lines.first == "started_at,reminder_id,channel,attempt,transport,recipient,outcome,code,status,stage,invoices,amounts,provider_id,detail")
        #expect(lines.count == 4, "one row per delivery here: \(all.stdout)")
        let byInvoice = try await sandbox.relance(["receipts", "--invoice", "INV-W1", "--format", "csv"])
        #expect(byInvoice.stdout.split(separator: "\n").count == 2)
        let byDebtor = try await sandbox.relance(["receipts", "--debtor", "C-W2", "--format", "csv"])
        #expect(byDebtor.stdout.split(separator: "\n").dropFirst().allSatisfy { $0.contains(",W2,") })
        let none = try await sandbox.relance(["receipts", "--debtor", "nobody", "--format", "csv"])
        #expect(none.stdout == lines[0] + "\n", "the header even when nothing matches")
    }

    /// `status` listed only the errors of attempts: a delivery that failed before sending was missing.
    @Test func statusListsProblemsWithoutAnAttemptToo() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        try await Ledger(path: sandbox.ledgerPath).suppress("gone@example.org", reason: "STOP", source: "test", now: Date())
        var landline = SMSIntegrationTests.smsReminder("LAND", phone: "01 45 67 89 10")
        landline["fallback"] = ["email"]
        try sandbox.dropLines("a.jsonl", [landline, Records.reminder("GONE", email: "gone@example.org")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let status = try await sandbox.relance(["status"])
        #expect(status.stdout.contains("last problems:"), "\(status.stdout)")
        #expect(status.stdout.contains("LAND/sms failed: +33145678910 is a French landline"), "\(status.stdout)")
        #expect(status.stdout.contains("GONE/email suppressed: gone@example.org opted out"), "\(status.stdout)")
    }
}
