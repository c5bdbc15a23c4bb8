import Foundation
import GRDB
import Logging
import RelanceCore
import RelanceStore
import Testing

@testable import RelanceConfig
@testable import RelanceDaemon
@testable import RelanceDispatch
@testable import RelanceHTTP
@testable import RelanceSpool

/// Retention: `relance forget --debtor` and the purge past `retention.personal_data`, on real files.
@Suite struct RetentionTests {
    func twoDebtors(_ sandbox: Sandbox) throws {
        var a = Records.reminder("RA-1", email: "anne@example.org", name: "Anne Secret", channels: ["email", "sms"])
        a["debtor"] = Records.debtor("C-A", name: "Anne Secret", email: "anne@example.org").merging(["phone": "+33611111111"]) { _, b in b }
        var b = Records.reminder("RB-1", email: "bruno@example.org", name: "Bruno Garde", channels: ["email", "sms"])
        b["debtor"] = Records.debtor("C-B", name: "Bruno Garde", email: "bruno@example.org").merging(["phone": "+33622222222"]) { _, b in b }
        try sandbox.dropLines("batch.jsonl", [a, b])
    }

    func files(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).map { directory + "/" + $0 }
    }

    func everything(_ sandbox: Sandbox) throws -> String {
        var all = ""
        for path in files(sandbox.maildir + "/new") + files(sandbox.spool + "/done") + [sandbox.root + "/outbox/sms.jsonl"] {
            all += (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        }
        return all
    }

    @Test func forgetErasesOneDebtorAndKeepsTheCounts() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        try twoDebtors(sandbox)
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try everything(sandbox).contains("Anne Secret"))
        let run = try await sandbox.relance(["forget", "--debtor", "C-A"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("1 reminders erased in the ledger, 1 outbox messages"), "\(run.stdout)")
        let contents = try everything(sandbox)
        for secret in ["Anne Secret", "anne@example.org", "+33611111111"] { #expect(!contents.contains(secret), "\(secret) left the outbox and the spool") }
        for kept in ["Bruno Garde", "bruno@example.org", "+33622222222"] { #expect(contents.contains(kept), "the other debtor is untouched") }
        let ledger = try sandbox.ledger()
        #expect(try await statuses(ledger) == ["RA-1/email": "sent", "RA-1/sms": "sent", "RB-1/email": "sent", "RB-1/sms": "sent"], "statuses stay")
        let attempts = try await receipts(ledger, reminderID: "RA-1")
        #expect(attempts.count == 2 && attempts.allSatisfy { $0.recipient.isEmpty && $0.outcome == "sent" })
        let reasons = try await ledger.events(reminderID: "RA-1").map(\.reason).joined(separator: "\n")
        #expect(!reasons.contains("anne@") && reasons.contains("personal data erased (forget)"))
        // Nothing personal is left anywhere in the database file either.
        let dump = try await Child("/usr/bin/env", ["sqlite3", sandbox.ledgerPath, ".dump"], directory: sandbox.root).waitWithOutput()
        if dump.status == 0 {
            #expect(!dump.stdout.contains("Anne Secret") && !dump.stdout.contains("anne@example.org") && !dump.stdout.contains("+33611111111"))
            #expect(dump.stdout.contains("Bruno Garde"))
        }
        // Re-dropping the same file does not send to the forgotten debtor again.
        try twoDebtors(sandbox)
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(files(sandbox.maildir + "/new").count == 1)
    }

    /// forget also erases the receivables debtor's contact details (its feed record, dropped in the
    /// spool, too); its invoices and payments, the creditor's accounting record, stay.
    @Test func forgetErasesTheReceivablesDebtorsContactDetails() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let feed = [
            #"{"type":"debtor","id":"C-9","name":"Jeanne Dupont","email":"jeanne@example.fr","phone":"+33612345678","country":"FR","locale":"fr-FR","timezone":"Europe/Paris","kind":"consumer"}"#,
            #"{"type":"debtor","id":"C-8","name":"Autre","email":"autre@example.fr","country":"FR","locale":"fr-FR","timezone":"Europe/Paris","kind":"consumer"}"#,
            #"{"type":"invoice","number":"F-9","debtor":"C-9","issued_on":"2026-01-01","due_on":"2026-01-31","amount":"100.00","currency":"EUR"}"#,
        ].joined(separator: "\n") + "\n"
        try FileManager.default.createDirectory(atPath: sandbox.spool + "/receivables", withIntermediateDirectories: true)
        try feed.write(toFile: sandbox.spool + "/receivables/feed.jsonl", atomically: true, encoding: .utf8)
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(sandbox.files("done") == ["feed.jsonl"])
        let forget = try await sandbox.relance(["forget", "--debtor", "C-9"])
        #expect(forget.status == 0 && forget.stdout.contains("the receivables debtor's contact details erased"), "\(forget)")
        let queue = try DatabaseQueue(path: sandbox.ledgerPath)
        let row = try queue.inDatabase { db in try Row.fetchOne(db, sql: "SELECT name, email, phone FROM rec_debtor WHERE id = 'C-9'") }
        #expect(row?["name"] as String? == "[erased]" && row?["email"] as String? == nil && row?["phone"] as String? == nil)
        let invoices = try queue.inDatabase { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rec_invoice WHERE debtor_id = 'C-9'") }
        #expect(invoices == 1, "the invoice, an accounting record, stays")
        let kept = try String(contentsOfFile: sandbox.spool + "/done/feed.jsonl", encoding: .utf8)
        #expect(!kept.contains("Jeanne") && !kept.contains("jeanne@") && kept.contains("\"id\":\"C-8\"") && kept.contains("F-9"))
        // The plan can no longer reach it.
        let plan = try await sandbox.relance(["plan", "--as-of", "2026-03-01T09:00:00+01:00", "--format", "json"])
        #expect(plan.stdout.contains("no_contact"), "\(plan.stdout)")
    }

    @Test func forgetRefusesWhileDeliveriesWait() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        try twoDebtors(sandbox)
        _ = try await sandbox.relance(["pause", "--all"])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let run = try await sandbox.relance(["forget", "--debtor", "C-A"])
        #expect(run.status == 2 && run.stderr.contains("relance cancel --debtor C-A"), "\(run.stderr)")
    }

    @Test func purgeErasesWhatIsPastRetention() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        try twoDebtors(sandbox)
        // A third reminder still waiting (on hold) must be kept whatever its age.
        try sandbox.dropLines(
            "later.jsonl", [Records.reminder("RC-1", email: "carla@example.org", name: "Carla Attente", extra: ["not_before": "2099-01-01T00:00:00Z"])])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let resolved = try ConfigurationLoader.load(file: sandbox.configPath, environment: [:]).0
        let ledger = try Ledger(path: sandbox.ledgerPath)
        let retention = Retention(configuration: resolved, ledger: ledger, logger: testLogger("retention"))
        // Tomorrow nothing is past 3 years.
        let tomorrow = try await retention.purge(now: Date().addingTimeInterval(86400))
        #expect(tomorrow.reminders == 0 && tomorrow.spoolFiles == 0 && tomorrow.outboxFiles == 0)
        // In four years, everything settled is.
        let later = try await retention.purge(now: Date().addingTimeInterval(4 * 365 * 86400))
        #expect(later.reminders == 2, "\(later)")
        #expect(later.outboxFiles == 2 && later.spoolFiles == 2 && later.lines == 2, "\(later)")
        #expect(try everything(sandbox).isEmpty)
        let left = try await statuses(ledger)
        #expect(left == ["RA-1/email": "sent", "RA-1/sms": "sent", "RB-1/email": "sent", "RB-1/sms": "sent", "RC-1/email": "pending"])
        #expect(try await receipts(ledger).allSatisfy { $0.recipient.isEmpty })
        #expect(try await ledger.erasedCount() == 2)
        let again = try await retention.purge(now: Date().addingTimeInterval(4 * 365 * 86400))
        #expect(again.reminders == 0, "idempotent")
    }
}
