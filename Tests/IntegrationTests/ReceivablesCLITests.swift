import Foundation
import RelanceCore
import Testing

/// `relance import`, `relance receivables` and `relance plan` through the binary, as a credit
/// controller runs them.
@Suite struct ReceivablesCLITests {
    static let feed = """
        {"type":"debtor","id":"C-1","name":"Boulangerie Martin","email":"compta@martin.example.fr","kind":"business","payment_terms":"30d"}
        {"type":"invoice","number":"F-1","debtor":"C-1","issued_on":"2026-09-01","amount":"1200.00","currency":"EUR"}
        {"type":"invoice","number":"F-2","debtor":"C-1","issued_on":"2026-10-01","due_on":"2026-10-31","amount":"300.00","currency":"EUR","instalments":[{"due_on":"2026-10-31","amount":"150.00"},{"due_on":"2026-11-30","amount":"150.00"}]}
        {"type":"payment","id":"P-1","debtor":"C-1","amount":"150.00","currency":"EUR","paid_on":"2026-11-02","invoice":"F-2"}
        {"type":"invoice","number":"F-3","debtor":"C-2","issued_on":"2026-10-05","amount":"80.00","currency":"EUR"}
        {"type":"dispute","invoice":"F-3","opened_on":"2026-11-10","reason":"livraison incomplète"}
        {"type":"payment","id":"P-2","debtor":"C-1","amount":"12,50","currency":"EUR","paid_on":"2026-11-02"}

        """

    @Test func importTwiceThenPlanAsJSON() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let file = sandbox.root + "/feed.jsonl"
        try Self.feed.write(toFile: file, atomically: true, encoding: .utf8)

        let first = try await sandbox.relance(["import", file])
        #expect(first.status == 2, "a rejected record: exit 2")
        #expect(first.stdout.contains("6 applied, 0 unchanged, 1 rejected"), "\(first.stdout)")
        #expect(first.stderr.contains("feed.jsonl:7: amount:"), "\(first.stderr)")
        let again = try await sandbox.relance(["import", file])
        #expect(again.stdout.contains("0 applied, 6 unchanged, 1 rejected"), "\(again.stdout)")

        let receivables = try await sandbox.relance(["receivables", "--as-of", "2026-11-30T09:00:00+01:00", "--format", "csv", "--status", "open"])
        #expect(receivables.status == 0, "\(receivables.stderr)")
        let rows = receivables.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(rows.map { [$0[1], $0[2], $0[6]] } == [["F-1", "", "1200.00"], ["F-2", "2", "150.00"]], "\(receivables.stdout)")

        let plan = try await sandbox.relance(["plan", "--as-of", "2026-11-30T09:00:00+01:00", "--format", "json"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        #expect(json["as_of"] as? String == "2026-11-30T09:00:00+01:00")
        let reminders = try #require(json["reminders"] as? [[String: Any]])
        #expect(reminders.count == 1)
        #expect(reminders.first?["stage"] as? String == "reminder_1" && reminders.first?["channels"] as? [String] == ["email"])
        let items = try #require(reminders.first?["items"] as? [[String: Any]])
        #expect(items.first?["invoice"] as? String == "F-1" && items.first?["outstanding"] as? String == "1200.00")
        #expect(items.first?["days_overdue"] as? Int == 60)
        let held = try #require(json["held"] as? [[String: Any]])
        let reasons = Dictionary(held.map { ($0["invoice"] as? String ?? "", $0["reason"] as? String ?? "") }, uniquingKeysWith: { a, _ in a })
        #expect(reasons == ["F-2": "not_due", "F-3": "disputed"])
        #expect(held.first { $0["invoice"] as? String == "F-2" }?["next_on"] as? String == "2026-12-07")

        let table = try await sandbox.relance(["plan", "--as-of", "2026-11-30T09:00:00+01:00"])
        #expect(table.stdout.contains("1 reminder(s): reminder_1 1; 2 item(s) held: disputed 1, not_due 1"), "\(table.stdout)")
    }

    @Test func aReportAsOfAPastDateIsTheSameAfterLaterMovementsAreImported() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let file = sandbox.root + "/feed.jsonl"
        try Self.feed.write(toFile: file, atomically: true, encoding: .utf8)
        _ = try await sandbox.relance(["import", file])

        let first = try await sandbox.relance(["report", "--as-of", "2026-11-30"])
        #expect(first.status == 0, "\(first.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        let eur = try #require((json["currencies"] as? [[String: Any]])?.first)
        // F-1 1,200.00 (30 days' terms: due 10-01, 60 days past due), F-2's second instalment 150.00 (due 11-30: not due),
        // F-3 80.00 (the default 30 days: due 11-04, 26 days; disputed, counted: the default variant).
        #expect(eur["receivables"] as? String == "1430.00" && eur["overdue"] as? String == "1280.00" && eur["disputed"] as? String == "80.00")
        let aging = Dictionary(((eur["aging"] as? [[String: Any]]) ?? []).map { ($0["bucket"] as? String ?? "", $0["amount"] as? String ?? "") }, uniquingKeysWith: { a, _ in a })
        #expect(aging == ["not_due": "150.00", "1_30": "80.00", "31_60": "1200.00", "61_90": "0.00", "over_90": "0.00"])

        // Movements dated after the report's date, imported later, do not change it.
        let later = sandbox.root + "/later.jsonl"
        try """
            {"type":"payment","id":"P-9","debtor":"C-1","amount":"1200.00","currency":"EUR","paid_on":"2026-12-02","invoice":"F-1"}
            {"type":"invoice","number":"F-4","debtor":"C-2","issued_on":"2026-12-01","amount":"999.00","currency":"EUR"}

            """.write(toFile: later, atomically: true, encoding: .utf8)
        #expect(try await sandbox.relance(["import", later]).status == 0)
        let out = sandbox.root + "/report.json"
        let again = try await sandbox.relance(["report", "--as-of", "2026-11-30T10:00:00+01:00", "--out", out])
        #expect(again.status == 0 && again.stdout.isEmpty, "\(again.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8) == first.stdout, "byte-identical")
        let now = try await sandbox.relance(["report", "--as-of", "2026-12-03", "--format", "csv"])
        #expect(now.stdout.contains("summary,EUR,2026-12-03,3,included,1229.00,"), "\(now.stdout)")

        #expect(try await sandbox.relance(["report", "--months", "13"]).status == 2)
        #expect(try await sandbox.relance(["report", "--as-of", "30/11/2026"]).status == 2)
    }

    /// The HTML report in a real browser (Debian's Chromium, headless, driven over its DevTools
    /// protocol by Support/report_browser.py): no request, no console error, data in every chart,
    /// nothing clipped on A4. The screenshot is kept in .build/report-screenshot.png.
    @Test func theHTMLReportInHeadlessChromium() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let file = sandbox.root + "/feed.jsonl"
        // A name that would fetch an image, were it not escaped.
        let hostile = #"{"type":"debtor","id":"C-9","name":"<img src=\"http://127.0.0.1:9/x.png\">Évasion & Cie","email":"a@example.fr","kind":"business"}"#
        try (Self.feed + hostile + "\n" + #"{"type":"invoice","number":"F-9","debtor":"C-9","issued_on":"2026-06-01","amount":"5000.00","currency":"EUR"}"# + "\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        _ = try await sandbox.relance(["import", file])
        // A reminder sent (the plan committed and sent through the outbox), for the recovery and channel charts.
        let today = Timestamp.format(Date())
        #expect(try await sandbox.relance(["plan", "--commit", "--as-of", today]).status == 0)
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let html = sandbox.root + "/report.html"
        let run = try await sandbox.relance(["report", "--as-of", today, "--format", "html", "--locale", "fr-FR", "--out", html])
        #expect(run.status == 0, "\(run.stderr)")
        let screenshot = Package.root + "/.build/report-screenshot.png"
        let browser = try Child("/usr/bin/env", ["python3", Package.support + "/report_browser.py", "--html", html, "--screenshot", screenshot], directory: sandbox.root)
        #expect(try await browser.wait() == 0, "\(browser.stderr)")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(browser.stdout.utf8)) as? [String: Any], "\(browser.stdout) \(browser.stderr)")
        #expect((seen["requests"] as? [String]) == [], "the page asked for nothing")
        #expect((seen["errors"] as? [String]) == [], "no console error")
        let marks = try #require(seen["marks"] as? [Int])
        #expect(marks.count == 5 && marks.allSatisfy { $0 > 0 }, "every chart (aging, month ends, DSO, recovery per stage, channels) has data marks: \(marks)")
        #expect((seen["clipped"] as? [Int]) == [] && seen["overflow"] as? Bool == false, "nothing clipped on A4")
        #expect((seen["pdf_bytes"] as? Int ?? 0) > 10_000, "it prints")
        #expect(FileManager.default.fileExists(atPath: screenshot))
    }

    /// `relance report --mail-to`: the page as the HTML part and attached, the headline figures as
    /// text, through the configured transport (here the outbox); a mailbox with a line break is
    /// refused before anything is built or sent.
    @Test func theReportIsMailedToTheFinanceTeam() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let file = sandbox.root + "/feed.jsonl"
        try Self.feed.write(toFile: file, atomically: true, encoding: .utf8)
        _ = try await sandbox.relance(["import", file])
        let hostile = try await sandbox.relance(["report", "--mail-to", "finance@example.fr\r\nBcc: x@evil.example"])
        #expect(hostile.status == 2 && hostile.stderr.contains("--mail-to"), "\(hostile.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: sandbox.maildir + "/new")) ?? []).isEmpty)

        let run = try await sandbox.relance(["report", "--as-of", "2026-11-30", "--locale", "fr", "--mail-to", "Direction financière <finance@example.fr>"])
        #expect(run.status == 0 && run.stdout.isEmpty, "\(run.stderr)")
        #expect(run.stderr.contains("report as of 2026-11-30 mailed to finance@example.fr via outbox"), "\(run.stderr)")
        let mails = try FileManager.default.contentsOfDirectory(atPath: sandbox.maildir + "/new")
        #expect(mails.count == 1)
        let mail = try await inspectMail(sandbox.maildir + "/new/" + (mails.first ?? ""), in: sandbox)
        #expect(mail["subject"] as? String == "Relance — état des créances — 2026-11-30", "\(mail)")
        let parts = (mail["parts"] as? [[String: Any]]) ?? []
        let text = parts.first { $0["type"] as? String == "text/plain" }?["text"] as? String ?? ""
        #expect(text.contains("Encours : 1\u{202F}430,00\u{00A0}EUR") || text.contains("Encours: 1\u{202F}430,00\u{00A0}EUR"), "\(text)")
        #expect(parts.contains { ($0["type"] as? String) == "text/html" && (($0["text"] as? String) ?? "").contains("<svg") }, "\(parts.map { $0["type"] ?? "" })")
        let attachments = (mail["attachments"] as? [[String: Any]]) ?? []
        #expect(attachments.map { $0["filename"] as? String } == ["rapport-2026-11-30.html"], "\(attachments)")
    }

    /// The daemon mails the report on `report.schedule` to `report.mail_to`.
    @Test func theDaemonMailsTheReportOnItsSchedule() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig(extra: "report: { schedule: \"every 1m\", mail_to: \"Finance <finance@example.fr>\", locale: en }")
        let unaddressed = try Sandbox()
        try unaddressed.writeConfig(extra: "report: { schedule: \"weekly mon 07:00\" }")
        let check = try await unaddressed.relance(["check"])
        #expect(check.status == 2 && check.stderr.contains("report.mail_to: a report.schedule needs report.mail_to"), "\(check.stderr)")
        let daemon = try sandbox.start(["serve"])
        let maildir = sandbox.maildir + "/new"
        // The log line comes after the message is in the Maildir: it is what is awaited.
        try await eventually("the scheduled report to be mailed", timeout: .seconds(150)) { daemon.stderr.contains("report mailed") }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: maildir)) ?? []).count >= 1)
        let mail = try await inspectMail(maildir + "/" + (try FileManager.default.contentsOfDirectory(atPath: maildir).first ?? ""), in: sandbox)
        #expect(mail["to_addresses"] as? [String] == ["finance@example.fr"])
        #expect((mail["subject"] as? String)?.hasPrefix("Relance — receivables report — ") == true, "\(mail)")
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0)
    }

    @Test func csvImportAndUsageErrors() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let csv = sandbox.root + "/invoices.csv"
        try "number,debtor,issued_on,amount,currency\r\nF-9,C-9,2026-11-01,\"1 200,00\",EUR\r\nF-10,C-9,2026-11-01,99.00,EUR\r\n".write(
            toFile: csv, atomically: true, encoding: .utf8)
        #expect(try await sandbox.relance(["import", "--format", "csv", csv]).status == 2, "csv needs --type")
        let run = try await sandbox.relance(["import", "--format", "csv", "--type", "invoice", csv])
        #expect(run.status == 2)
        #expect(run.stderr.contains("invoices.csv:2: amount:"), "\(run.stderr)")
        #expect(run.stdout.contains("1 applied"), "\(run.stdout)")
        let bad = try await sandbox.relance(["plan", "--as-of", "yesterday"])
        #expect(bad.status == 2)
    }

    @Test func theSampleFECImportsOnceAndIsPlanned() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let fec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/sample-fec.txt").path
        let first = try await sandbox.relance(["import", "--format", "fec", fec])
        #expect(first.status == 0, "\(first.stderr)")
        let again = try await sandbox.relance(["import", "--format", "fec", fec])
        #expect(again.stdout.contains(" 0 applied,"), "\(again.stdout)")
        let open = try await sandbox.relance(["receivables", "--as-of", "2026-03-31T12:00:00+02:00", "--status", "open", "--format", "csv"])
        let outstanding = Dictionary(
            open.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }.map {
                (String($0[1]), String($0[6]))
            },
            uniquingKeysWith: { a, _ in a })
        #expect(outstanding == ["FA-2025-118": "660.00", "FA-2026-002": "1160.00", "FA-2026-003": "600.00", "FA-2026-004": "480.00"], "\(open.stdout)")
        let plan = try await sandbox.relance(["plan", "--as-of", "2026-03-31T12:00:00+02:00"])
        #expect(plan.status == 0)
        #expect(plan.stdout.contains("no_contact"), "FEC debtors have no contact details until their records come: \(plan.stdout)")
    }

    /// The whole path: import, commit the plan, the daemon sends it through the outbox with the
    /// outstanding amount; a payment imported afterwards stops what the next run would send.
    @Test func aCommittedPlanIsSentOnceWithTheOutstandingAmount() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let file = sandbox.root + "/feed.jsonl"
        try Self.feed.write(toFile: file, atomically: true, encoding: .utf8)
        _ = try await sandbox.relance(["import", file])
        let today = Timestamp.format(Date())
        let tomorrow = Timestamp.format(Date().addingTimeInterval(86_400 * 2))
        #expect(try await sandbox.relance(["plan", "--commit", "--as-of", tomorrow]).status == 2, "a day to come cannot be committed")
        let committed = try await sandbox.relance(["plan", "--commit", "--as-of", today])
        #expect(committed.status == 0, "\(committed.stderr)")
        #expect(committed.stdout.contains("1 reminder(s) created"), "\(committed.stdout)")
        let again = try await sandbox.relance(["plan", "--commit", "--as-of", today])
        #expect(again.stdout.contains("0 reminder(s) created"), "\(again.stdout)")

        let serve = try await sandbox.relance(["serve", "--once"])
        #expect(serve.status == 0, "\(serve.stderr)")
        let mails = try FileManager.default.contentsOfDirectory(atPath: sandbox.maildir + "/new")
        #expect(mails.count == 1)
        let mail = try String(contentsOfFile: sandbox.maildir + "/new/" + (mails.first ?? ""), encoding: .utf8)
        #expect(mail.contains("F-1") && mail.contains("compta@martin.example.fr"))
        let receipts = try await sandbox.relance(["receipts", "--format", "csv"])
        #expect(receipts.stdout.contains("plan-C-1-reminder_1-") && receipts.stdout.contains(",sent,"), "\(receipts.stdout)")
    }

    /// The daemon: a file dropped in spool/receivables/ is imported (its bad line quarantined with
    /// NAME.error.json), the scheduled plan run missed before start is caught up at once, its
    /// reminder is sent; a payment dropped afterwards is imported as it comes and the plan run
    /// after it has nothing to send for the settled item.
    @Test func theDaemonImportsDroppedReceivablesAndCatchesUpAMissedPlanRun() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig(extra: "plan: { schedule: \"daily 00:00\" }")
        let drop = sandbox.spool + "/receivables"
        try FileManager.default.createDirectory(atPath: drop, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: sandbox.spool + "/tmp", withIntermediateDirectories: true)
        func dropFile(_ name: String, _ text: String) throws {
            try text.write(toFile: sandbox.spool + "/tmp/" + name, atomically: false, encoding: .utf8)
            try FileManager.default.moveItem(atPath: sandbox.spool + "/tmp/" + name, toPath: drop + "/" + name)
        }
        try dropFile("feed.jsonl", Self.feed)
        let daemon = try sandbox.start(["serve"])
        let maildir = sandbox.maildir + "/new"
        try await eventually("the planned reminder to be sent") { ((try? FileManager.default.contentsOfDirectory(atPath: maildir)) ?? []).count == 1 }
        #expect(daemon.stderr.contains("plan committed"), "\(daemon.stderr)")
        let report = sandbox.spool + "/failed/feed.jsonl.error.json"
        try await eventually("the bad line quarantined") { FileManager.default.fileExists(atPath: report) }
        let errors = try String(contentsOfFile: report, encoding: .utf8)
        #expect(errors.contains("\"line\":7") || errors.contains("\"line\" : 7"), "\(errors)")

        try dropFile(
            "payments.jsonl", #"{"type":"payment","id":"P-9","debtor":"C-1","amount":"1200.00","currency":"EUR","paid_on":"2026-11-30","invoice":"F-1"}"# + "\n"
        )
        try await eventually("the payment imported") { daemon.stderr.contains("receivables/payments.jsonl") && daemon.stderr.contains("receivables imported") }
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0)
        let receivables = try await sandbox.relance(["receivables", "--status", "paid", "--format", "csv"])
        #expect(receivables.stdout.contains("F-1,"), "\(receivables.stdout)")
    }

    /// A payment imported while its planned reminder is being sent: the reminder is either sent
    /// before the payment's transaction committed (its events show the send started first) or
    /// cancelled, never sent after (the cancellation race of the contact policy, for payments).
    @Test func noPlannedReminderIsSentAfterThePaymentThatSettlesIt() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox, slow: 0.06)
        try sandbox.writeConfig(smtpPort: server.port, concurrency: 8, connections: 8)
        let count = 200
        var feed = ""
        for i in 0..<count {
            feed += #"{"type":"debtor","id":"D\#(i)","name":"Débiteur \#(i)","email":"race\#(i)@example.org","kind":"business"}"# + "\n"
            feed +=
                #"{"type":"invoice","number":"F-\#(i)","debtor":"D\#(i)","issued_on":"2026-09-01","due_on":"2026-10-01","amount":"100.00","currency":"EUR"}"#
                + "\n"
        }
        let feedPath = sandbox.root + "/feed.jsonl"
        try feed.write(toFile: feedPath, atomically: true, encoding: .utf8)
        #expect(try await sandbox.relance(["import", feedPath]).status == 0)
        // Held while the plan is committed and the first payments land: "cancelled in time" is always exercised.
        _ = try await sandbox.relance(["pause", "--all"])
        let committed = try await sandbox.relance(["plan", "--commit"])
        #expect(committed.stdout.contains("\(count) reminder(s) created"), "\(committed.stdout)")
        func pay(_ debtors: some Sequence<Int>, file: String) async throws {
            let lines = debtors.map {
                #"{"type":"payment","id":"P-\#($0)","debtor":"D\#($0)","amount":"100.00","currency":"EUR","paid_on":"2026-11-30","invoice":"F-\#($0)"}"#
            }
            let path = sandbox.root + "/" + file
            try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            let run = try await sandbox.relance(["import", path])
            #expect(run.status == 0, "\(run.stderr)")
        }
        let evens = Array(stride(from: count - 2, through: 0, by: -2))
        let daemon = try sandbox.start(["serve"])
        try await eventually("the daemon") { daemon.stderr.contains("relance serve started") }
        try await pay(evens.prefix(10), file: "early.jsonl")
        _ = try await sandbox.relance(["resume", "--all"])
        try await eventually("the batch to be under way") { server.messages.count >= 20 }
        // The other payments, a few debtors per import, last first, while the batch goes out.
        for (n, chunk) in stride(from: 10, to: evens.count, by: 10).map({ Array(evens[$0..<min($0 + 10, evens.count)]) }).enumerated() {
            try await pay(chunk, file: "payments-\(n).jsonl")
        }
        func debtor(_ reminderID: String) -> Int? { reminderID.split(separator: "-").dropFirst().first.flatMap { Int($0.dropFirst()) } }
        let (cancelled, tooLate) = try await checkNothingSentAfterItsStop(
            sandbox, server: server, count: count, recipient: { debtor($0).map { "race\($0)@example.org" } }, stopped: { (debtor($0) ?? 1) % 2 == 0 })
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0)
        #expect(cancelled >= 10, "the payments made before sending resumed stopped their reminders (\(cancelled) cancelled, \(tooLate) too late)")
        print("payment race: \(count) planned reminders, \(count / 2) payments, \(cancelled) in time, \(tooLate) after the send had started, 0 sent after")
    }

    /// Runs that climb the whole ladder, then the hand-off export: the debtor's identity and every
    /// reminder about the invoice.
    @Test func theHandOffExportListsEveryReminderAboutTheItem() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let feed = sandbox.root + "/feed.jsonl"
        try """
        {"type":"debtor","id":"C-7","name":"SARL Durand, \\"Le Fournil\\"","email":"compta@durand.example.fr","phone":"06 11 22 33 44","kind":"business"}
        {"type":"invoice","number":"F-77","debtor":"C-7","issued_on":"2026-05-01","due_on":"2026-06-01","amount":"2400.00","currency":"EUR"}

        """.write(toFile: feed, atomically: true, encoding: .utf8)
        #expect(try await sandbox.relance(["import", feed]).status == 0)
        for day in ["2026-06-08", "2026-06-22", "2026-07-11", "2026-07-31"] {
            let run = try await sandbox.relance(["plan", "--commit", "--as-of", day + "T09:00:00+02:00"])
            #expect(run.status == 0 && run.stdout.contains("committed run"), "\(day): \(run.stdout) \(run.stderr)")
        }
        let open = try await sandbox.relance(["receivables", "--status", "open"])
        #expect(open.stdout.split(separator: "\n").count == 1, "handed off, no longer open: \(open.stdout)")
        let export = try await sandbox.relance(["receivables", "--status", "handed_off", "--format", "csv"])
        #expect(export.status == 0, "\(export.stderr)")
        let lines = export.stdout.split(separator: "\n")
        #expect(
            lines.first
                == "debtor,invoice,instalment,issued_on,due_on,amount,outstanding,currency,status,last_stage,last_on,debtor_name,debtor_kind,debtor_email,debtor_phone,reminders"
        )
        #expect(lines.count == 2)
        let row = String(lines.last ?? "")
        #expect(
            row.hasPrefix("C-7,F-77,,2026-05-01,2026-06-01,2400.00,2400.00,EUR,handed_off,handoff,2026-07-31,\"SARL Durand, \"\"Le Fournil\"\"\",business,"),
            "\(row)")
        #expect(row.contains("+33611223344"))
        for stage in ["reminder_1", "reminder_2", "final_notice"] { #expect(row.contains(" email \(stage) pending "), "\(stage): \(row)") }
        #expect(row.contains(" sms reminder_2 pending "), "reminder_2 also went by SMS: \(row)")
    }
}
