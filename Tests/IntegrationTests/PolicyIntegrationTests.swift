import Foundation
import RelanceCore
import RelanceStore
import RelanceTemplates
import RelanceTransport
import Testing

/// The contact policy end to end: the real binary, a real SMTP server, the ledger on disk.
@Suite struct PolicyIntegrationTests {
    static let strict = "{ caps: { per_day: 1, per_7_days: 2, per_30_days: 4 }, windows: { sms: always, email: always }, holidays: none }"

    @Test func previewAndDryRunShowTheExactNextInstantInTheDebtorsZone() async throws {
        let sandbox = try Sandbox()
        // The shipped default policy: SMS Mon–Fri 10–13 h and 14–20 h, email Mon–Sat 08–20 h, French holidays.
        try sandbox.writeConfig(policy: "{}")
        var record = Records.reminder("PV-1", channels: ["email", "sms"])
        record["debtor"] = Records.debtor("C-PV", email: "pv@example.org").merging(["timezone": "America/Martinique"]) { _, b in b }
        let file = sandbox.root + "/pv.json"
        try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: file))
        // Saturday 5 December 2026, 23:00 in Paris = 18:00 in Martinique (UTC−4).
        let saturday = try await sandbox.relance(["preview", "--now", "2026-12-05T23:00:00+01:00", file])
        #expect(saturday.status == 0, "\(saturday.stderr)")
        #expect(saturday.stdout.contains("=== PV-1/email (line 1) — decision: send now"), "18:00 on a Saturday is inside the email window there")
        #expect(
            saturday.stdout.contains(
                "=== PV-1/sms (line 1) — decision: deferred until 2026-12-07T10:00:00-04:00 (America/Martinique): outside the sms window"),
            "\(saturday.stdout.prefix(600))")
        // The same reminder for a debtor in Paris, on Christmas Day.
        record["debtor"] = Records.debtor("C-PV", email: "pv@example.org")
        try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: file))
        let christmas = try await sandbox.relance(["preview", "--now", "2026-12-25T09:00:00+01:00", file])
        #expect(
            christmas.stdout.contains(
                "PV-1/email (line 1) — decision: deferred until 2026-12-26T08:00:00+01:00 (Europe/Paris): 2026-12-25 is a public holiday (FR)"))
        #expect(christmas.stdout.contains("PV-1/sms (line 1) — decision: deferred until 2026-12-28T10:00:00+01:00 (Europe/Paris)"))
        // The dry run says the same about a file waiting in the spool, and sends nothing.
        try sandbox.dropLines("waiting.jsonl", [record])
        let dry = try await sandbox.relance(["serve", "--dry-run", "--now", "2026-12-25T09:00:00+01:00"])
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("not now     PV-1/sms  deferred until 2026-12-28T10:00:00+01:00 (Europe/Paris)"), "\(dry.stdout)")
        #expect(dry.stdout.contains("DRY RUN: 0 deliveries would be sent"))
        let bad = try await sandbox.relance(["serve", "--once", "--now", "2026-12-25T09:00:00+01:00"])
        #expect(bad.status == 2, "--now never applies to a real pass")
    }

    /// `relance suppress --list`: every suppression with its reason, source and date, in the three
    /// formats; a line break in a reason does not break the table.
    @Test func theSuppressionListIsShownWithReasons() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        #expect(try await sandbox.relance(["suppress", "--list"]).stdout == "ADDRESS\tREASON\tSOURCE\tSINCE\n", "no ledger yet: the header only")
        #expect(try await sandbox.relance(["suppress", "Jean.Martin@Example.org", "--reason", "asked by phone\nticket 42"]).status == 0)
        #expect(try await sandbox.relance(["suppress", "06 12 34 56 78"]).status == 0)
        let table = try await sandbox.relance(["suppress", "--list"])
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.count == 3, "\(table.stdout)")
        #expect(lines[1].hasPrefix("jean.martin@example.org\tasked by phone ticket 42\tcli:"), "\(table.stdout)")
        #expect(lines[2].hasPrefix("+33612345678\tsuppressed by "), "\(table.stdout)")
        let json = try await sandbox.relance(["suppress", "--list", "--format", "json"])
        let rows = json.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(rows.map { $0["address"] ?? "" } == ["jean.martin@example.org", "+33612345678"])
        #expect(rows.first?["reason"] == "asked by phone\nticket 42" && rows.allSatisfy { Timestamp.parse($0["since"] ?? "") != nil })
        let csv = try await sandbox.relance(["suppress", "--list", "--format", "csv"])
        #expect(csv.stdout.hasPrefix("address,reason,source,since\njean.martin@example.org,\"asked by phone\nticket 42\",cli:"), "\(csv.stdout)")
        #expect(try await sandbox.relance(["suppress", "--list", "x@example.org"]).status == 2)
        #expect(try await sandbox.relance(["suppress"]).status == 2)
    }

    @Test func theDailyCapDefersTheSecondReminderToTheDebtorsNextDay() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port, policy: Self.strict)
        var first = Records.reminder("CAP-1", email: "cap@example.org")
        // A different stage: not merged into the first one's message (GroupingTests), so a second contact.
        var second = Records.reminder("CAP-2", stage: "reminder_2", email: "cap@example.org")
        first["debtor"] = Records.debtor("C-CAP", email: "cap@example.org").merging(["timezone": "Asia/Tokyo"]) { _, b in b }
        second["debtor"] = first["debtor"]
        try sandbox.dropLines("two.jsonl", [first, second])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let ledger = try sandbox.ledger()
        let final = try await statuses(ledger)
        #expect(final == ["CAP-1/email": "sent", "CAP-2/email": "pending"], "\(final)")
        #expect(server.messages.count == 1)
        let pending = try #require(try await ledger.deliveries(reminderID: "CAP-2").first)
        // Next midnight in Tokyo.
        let tokyo = TimeZone(identifier: "Asia/Tokyo")!
        let tomorrow = LocalTime.instant(day: LocalTime.day(of: Date(), in: tokyo) + 1, minute: 0, in: tokyo)
        #expect(pending.dueAt == tomorrow)
        let history = try await sandbox.relance(["receipts", "--reminder", "CAP-2"])
        #expect(history.stdout.contains("deferred until \(Timestamp.format(tomorrow, in: tokyo)) (Asia/Tokyo): daily cap of 1 reached"), "\(history.stdout)")
    }

    @Test func theDailyVolumeCapStopsABadBatch() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(
            smtpPort: server.port,
            policy:
                "{ max_per_day: { email: 3 }, windows: { sms: always, email: always }, holidays: none, caps: { per_day: none, per_7_days: none, per_30_days: none } }"
        )
        try sandbox.dropLines("big.jsonl", (0..<7).map { Records.reminder("MPD-\($0)", email: "mpd\($0)@example.org") })
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(server.messages.count == 3)
        let final = try await statuses(try sandbox.ledger())
        #expect(final.values.filter { $0 == "pending" }.count == 4)
        let paris = TimeZone(identifier: "Europe/Paris")!
        let midnight = LocalTime.instant(day: LocalTime.day(of: Date(), in: paris) + 1, minute: 0, in: paris)
        let waiting = try await sandbox.ledger().deliveries().filter { $0.status == "pending" }
        #expect(waiting.allSatisfy { $0.dueAt == midnight }, "deferred to the next day in defaults.timezone")
        let reasons = try await sandbox.ledger().events(reminderID: waiting[0].reminderID).map(\.reason)
        #expect(reasons.contains { $0.contains("daily volume cap of 3 email reached (policy.max_per_day)") }, "\(reasons)")
    }

    @Test func killSwitchHoldsEverythingUntilResume() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port)
        try sandbox.dropLines("a.jsonl", (0..<3).map { Records.reminder("KS-\($0)", email: "ks\($0)@example.org") })
        let pause = try await sandbox.relance(["pause", "--all", "--reason", "bad batch from Sage"])
        #expect(pause.status == 0, "\(pause.stderr)")
        #expect(try await sandbox.relance(["pause"]).status == 2, "pause without --all is refused")
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(server.messages.isEmpty, "nothing goes out while on hold")
        #expect(try await statuses(try sandbox.ledger()).values.allSatisfy { $0 == "pending" })
        let dry = try await sandbox.relance(["serve", "--dry-run"])
        #expect(dry.stdout.contains("ON HOLD     every channel: bad batch from Sage"))
        let status = try await sandbox.relance(["status"])
        #expect(status.stdout.contains("until relance resume: bad batch from Sage"), "\(status.stdout)")
        #expect(try await sandbox.relance(["resume", "--all"]).stdout.contains("lifted 1 hold"))
        #expect(try await !sandbox.relance(["status"]).stdout.contains("ON HOLD"))
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(server.messages.count == 3)
    }

    @Test func cancelByFileInvoiceAndPartialPayment() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port)
        try sandbox.dropLines("bad-batch.jsonl", (0..<4).map { Records.reminder("BB-\($0)", email: "bb\($0)@example.org") })
        try sandbox.dropLines(
            "good.jsonl",
            [Records.reminder("PP-1", email: "pp1@example.org", amount: "1234.50"), Records.reminder("PP-2", email: "pp2@example.org", amount: "300.00")])
        #expect(try await sandbox.relance(["serve", "--dry-run"]).status == 0)
        // Ingest without sending: everything on hold, then the decisions, then release.
        _ = try await sandbox.relance(["pause", "--all"])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let byFile = try await sandbox.relance(["cancel", "--file", "bad-batch.jsonl", "--reason", "other", "--note", "duplicate export"])
        #expect(byFile.status == 0, "\(byFile.stderr)")
        #expect(byFile.stdout.contains("4 reminders matched, 4 deliveries cancelled"), "\(byFile.stdout)")
        let partial = try await sandbox.relance(["cancel", "--invoice", "INV-PP-1", "--reason", "paid", "--amount-paid", "234.50"])
        #expect(partial.stdout.contains("0 deliveries cancelled") && partial.stdout.contains("0 reminders fully paid"), "\(partial.stdout)")
        let full = try await sandbox.relance(["cancel", "--invoice", "INV-PP-2", "--reason", "paid", "--amount-paid", "300.00"])
        #expect(full.stdout.contains("1 deliveries cancelled") && full.stdout.contains("1 reminders fully paid"), "\(full.stdout)")
        let wrong = try await sandbox.relance(["cancel", "--debtor", "C-X", "--reason", "paid", "--amount-paid", "3"])
        #expect(wrong.status == 2 && wrong.stderr.contains("--amount-paid: only for an invoice"), "\(wrong.stderr)")
        _ = try await sandbox.relance(["resume", "--all"])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let final = try await statuses(try sandbox.ledger())
        #expect(final.filter { $0.key.hasPrefix("BB-") }.values.allSatisfy { $0 == "cancelled" })
        #expect(final["PP-1/email"] == "sent" && final["PP-2/email"] == "cancelled")
        #expect(server.messages.count == 1)
        let text = try await plainText(server.messages[0], in: sandbox)
        #expect(text.contains("1\u{202F}000,00\u{A0}€"), "the reminder shows what remains: \(text.prefix(600))")
        #expect(!text.contains("1\u{202F}234,50"))
        // A reminder for a cancelled file's invoice that arrives later is cancelled too.
        try sandbox.dropLines("late.jsonl", [Records.reminder("PP-2", email: "pp2@example.org", amount: "300.00")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(server.messages.count == 1)
    }

    @Test func cancellationFilesInTheSpool() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port)
        try sandbox.dropLines("a.jsonl", [Records.reminder("SC-1", email: "sc1@example.org"), Records.reminder("SC-2", email: "sc2@example.org")])
        // A cancel file dropped with the reminders: one good line, one bad.
        let cancel = sandbox.spool + "/cancel"
        try FileManager.default.createDirectory(atPath: cancel, withIntermediateDirectories: true)
        let lines = #"{"cancel": {"reminder": "SC-1", "reason": "disputed"}}"# + "\n" + #"{"cancel": {"reminder": "SC-2", "reason": "lost"}}"# + "\n"
        try lines.write(toFile: sandbox.root + "/c.jsonl", atomically: true, encoding: .utf8)
        try FileManager.default.moveItem(atPath: sandbox.root + "/c.jsonl", toPath: cancel + "/c.jsonl")
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try await statuses(try sandbox.ledger()) == ["SC-1/email": "cancelled", "SC-2/email": "sent"])
        let report = try String(contentsOfFile: sandbox.spool + "/failed/c.jsonl.error.json", encoding: .utf8)
        #expect(report.contains("\"field\" : \"cancel.reason\"") && report.contains("\"line\" : 2"), "\(report)")
        let events = try await sandbox.ledger().events(reminderID: "SC-1")
        #expect(events.last?.reason.contains("reminder SC-1: disputed (spool:cancel/c.jsonl)") == true, "\(events.map(\.reason))")
    }

    @Test func aDebtorPausedUntilLaterAndResumedByAnOperator() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port)
        let until = Timestamp.format(Date().addingTimeInterval(86400))
        let pause = try await sandbox.relance(["cancel", "--debtor", "C-PZ-1", "--reason", "promise_to_pay", "--until", until])
        #expect(pause.stdout.contains("it applies to reminders ingested later"), "\(pause.stdout)")
        try sandbox.dropLines("a.jsonl", [Records.reminder("PZ-1", email: "pz1@example.org"), Records.reminder("PZ-2", email: "pz2@example.org")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try await statuses(try sandbox.ledger()) == ["PZ-1/email": "paused", "PZ-2/email": "sent"])
        let events = try await sandbox.ledger().events(reminderID: "PZ-1").map(\.reason)
        #expect(events.contains { $0.hasPrefix("paused: debtor C-PZ-1: promise_to_pay until") }, "\(events)")
        let past = try await sandbox.relance(["cancel", "--debtor", "C-PZ-1", "--reason", "promise_to_pay", "--until", "2020-01-01T00:00:00Z"])
        #expect(past.status == 2 && past.stderr.contains("a pause must end in the future"))
        let resume = try await sandbox.relance(["resume", "--debtor", "C-PZ-1"])
        #expect(resume.stdout.contains("1 paused deliveries back to pending"), "\(resume.stdout)")
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try await statuses(try sandbox.ledger())["PZ-1/email"] == "sent")
        #expect(server.messages.count == 2)
    }

    @Test func suppressAndUnsuppressFromTheCommandLine() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let sms = Records.reminder("SU-1", channels: ["sms"], extra: ["fallback": ["email"]])
        try sandbox.dropLines("a.jsonl", [sms])
        #expect(try await sandbox.relance(["suppress", "06 12 34 56 78", "--reason", "asked by phone"]).stdout.contains("suppressed: +33612345678"))
        #expect(try await sandbox.relance(["suppress", "not a number"]).status == 2)
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let final = try await statuses(try sandbox.ledger())
        #expect(final == ["SU-1/sms": "suppressed", "SU-1/email": "sent"], "a suppressed SMS falls back to email: \(final)")
        #expect(try await sandbox.relance(["unsuppress", "+33612345678"]).stdout.contains("removed from the suppression list"))
        #expect(try await sandbox.relance(["unsuppress", "+33612345678"]).stdout.contains("was not on the suppression list"))
    }
}

/// Cancellations racing a large batch: none is sent after its cancellation committed.
@Suite struct CancellationRaceTests {
    @Test func noReminderIsSentAfterItsCancellationCommitted() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox, slow: 0.06)
        let port = WebhookIntegrationTests.freePort()
        let token = "t0ken-for-the-cancellation-api-0123456789"
        try sandbox.writeConfig(
            smtpPort: server.port, concurrency: 8, connections: 8, webhooks: "api_token: \"\(token)\"", listen: "127.0.0.1:\(port)")
        let count = 300
        try sandbox.dropLines("batch.jsonl", (0..<count).map { Records.reminder("CR-\($0)", email: "slow-cr\($0)@example.org") })
        // Email held while the API starts, so that the last reminders' cancellations are committed
        // before anything goes out: the "cancelled in time" side is always exercised, however
        // slowly this test is scheduled (a loaded run once sent the whole batch before its first
        // cancellation landed). The other cancellations race the batch.
        _ = try await sandbox.relance(["pause", "--all"])
        let daemon = try sandbox.start(["serve"])
        try await eventually("the webhook server") { daemon.stderr.contains("webhook server listening") }
        let client = try HTTPClient(configuration: .init(connections: 8))
        let base = "http://127.0.0.1:\(port)/api/cancellations"
        let auth = ["Content-Type": "application/json", "Authorization": "Bearer \(token)"]
        let evens = Array(stride(from: count - 2, through: 0, by: -2))
        func cancelAll(_ ids: some Sequence<Int>) async throws {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for (n, i) in ids.enumerated() {
                    group.addTask {
                        let body = Data(#"{"cancel":{"reminder":"CR-\#(i)","reason":"paid"}}"#.utf8)
                        return try await client.execute(HTTPClient.Request(method: "POST", url: base, headers: auth, body: body)).get().status
                    }
                    if n >= 8 { #expect(try await group.next() == 200) }
                }
                for try await status in group { #expect(status == 200) }
            }
        }
        try await cancelAll(evens.prefix(10))
        _ = try await sandbox.relance(["resume", "--all"])
        try await eventually("the batch to be under way") { server.messages.count >= 20 }
        let unauthorized = try await client.execute(
            HTTPClient.Request(
                method: "POST", url: base, headers: ["Content-Type": "application/json"], body: Data(#"{"cancel":{"reminder":"CR-0","reason":"paid"}}"#.utf8))
        ).get()
        #expect(unauthorized.status == 401)
        let invalid = try await client.execute(
            HTTPClient.Request(method: "POST", url: base, headers: auth, body: Data(#"{"cancel":{"reminder":"CR-0","reason":"lost"}}"#.utf8))
        ).get()
        #expect(invalid.status == 422 && String(decoding: invalid.body, as: UTF8.self).contains("cancel.reason"))
        let pastPause = try await client.execute(
            HTTPClient.Request(
                method: "POST", url: base, headers: auth,
                body: Data(#"{"cancel":{"reminder":"CR-0","reason":"promise_to_pay","until":"2020-01-01T00:00:00Z"}}"#.utf8))
        ).get()
        #expect(pastPause.status == 422)
        // The rest of the even reminders, 8 requests at a time, last first, while the batch goes out.
        try await cancelAll(evens.dropFirst(10))
        func number(_ reminderID: String) -> Int? { reminderID.hasPrefix("CR-") ? Int(reminderID.dropFirst(3)) : nil }
        let (cancelled, tooLate) = try await checkNothingSentAfterItsStop(
            sandbox, server: server, count: count, recipient: { number($0).map { "slow-cr\($0)@example.org" } }, stopped: { (number($0) ?? 1) % 2 == 0 })
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0)
        #expect(cancelled > 0, "some cancellations arrived in time (\(cancelled) cancelled, \(tooLate) too late)")
        print("cancellation race: \(count) reminders, \(count / 2) cancellations, \(cancelled) in time, \(tooLate) after the send had started, 0 sent after")
    }
}
