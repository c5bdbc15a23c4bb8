import Foundation
import RelanceCore
import RelanceStore
import Testing

/// Intake, quarantine, dry-run, preview and the CLI's contract, on the outbox transport.
@Suite struct SpoolIntegrationTests {
    func errorReport(_ sandbox: Sandbox, _ name: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: sandbox.spool + "/failed/" + name + ".error.json"))
        let report = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return report["errors"] as! [[String: Any]]
    }

    @Test func badLinesAreQuarantinedAndGoodLinesTaken() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let pdf = try sandbox.writePDF("ok.pdf")
        try Data("not a pdf".utf8).write(to: URL(fileURLWithPath: sandbox.root + "/attachments/fake.pdf"))
        try Data(count: 5000).write(to: URL(fileURLWithPath: sandbox.root + "/attachments/big.pdf"))
        var unknownKey = Records.reminder("Q-2")
        unknownKey["chanels"] = ["email"]
        var missing = Records.reminder("Q-3")
        missing.removeValue(forKey: "invoices")
        var badPhone = Records.reminder("Q-6", channels: ["sms"])
        badPhone["debtor"] = Records.debtor("C-Q6").merging(["phone": "12345"]) { _, new in new }
        var badTimezone = Records.reminder("Q-9")
        badTimezone["debtor"] = Records.debtor("C-Q9").merging(["timezone": "Europe/Pariss", "locale": "zz-ZZ"]) { _, new in new }
        let lines: [[String: Any]] = [
            Records.reminder("Q-1", extra: ["attachments": [pdf]]),  // good
            unknownKey,
            missing,
            Records.reminder("Q-4", name: "Mallory\r\nBcc: everyone@example.org"),
            Records.reminder("Q-5", email: "not-an-address"),
            badPhone,
            Records.reminder("Q-7", currency: "EUROS"),
            Records.reminder("Q-8", amount: "12,50"),
            badTimezone,
            Records.reminder("Q-10", extra: ["not_before": "2026-02-30T09:00:00+01:00"]),
            Records.reminder("Q-11", extra: ["attachments": ["/etc/passwd"]]),
            Records.reminder("Q-12", extra: ["attachments": [sandbox.root + "/attachments/fake.pdf"]]),
            Records.reminder("Q-13", extra: ["attachments": [sandbox.root + "/attachments/big.pdf"]]),
            Records.reminder("Q-14", extra: ["attachments": [sandbox.root + "/attachments/missing.pdf"]]),
        ]
        try sandbox.dropLines("mixed.jsonl", lines)
        var invalidUTF8 = try JSONSerialization.data(withJSONObject: Records.reminder("U-1", name: "XXXX"))
        invalidUTF8.replaceSubrange(invalidUTF8.range(of: Data("XXXX".utf8))!, with: [0x41, 0xFF, 0xFE, 0x42])
        try sandbox.drop("utf8.json", invalidUTF8)
        try sandbox.drop("huge.jsonl", Data(repeating: UInt8(ascii: " "), count: 70_000))
        try sandbox.drop("notes.txt", Data("hello".utf8))
        try sandbox.writeConfig(extra: "")
        // A smaller size limit for the huge file.
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            .replacingOccurrences(of: "rescan_interval: 1s", with: "rescan_interval: 1s, max_file_bytes: 65536")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)

        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(
            sandbox.files("failed") == [
                "huge.jsonl", "huge.jsonl.error.json", "mixed.jsonl", "mixed.jsonl.error.json", "notes.txt", "notes.txt.error.json", "utf8.json",
                "utf8.json.error.json",
            ])
        #expect(sandbox.files("incoming").isEmpty)

        let errors = try errorReport(sandbox, "mixed.jsonl")
        let found = Set(errors.map { "\($0["line"] as! Int) \($0["field"] as! String)" })
        let expected: Set<String> = [
            "2 chanels", "3 invoices", "4 debtor.name", "5 debtor.email", "6 debtor.phone", "7 invoices[0].currency", "8 invoices[0].amount",
            "9 debtor.timezone", "9 debtor.locale", "10 not_before", "11 attachments[0]", "12 attachments[0]", "13 attachments[0]", "14 attachments[0]",
        ]
        #expect(found == expected)
        #expect(
            errors.first { ($0["line"] as! Int) == 4 }?["reason"] as? String
                == "contains a line break (U+000D), refused in values that can reach message headers")
        #expect(errors.first { ($0["line"] as! Int) == 4 }?["id"] as? String == "Q-4")
        #expect(try errorReport(sandbox, "utf8.json").first?["reason"] as? String == "invalid UTF-8")
        #expect((try errorReport(sandbox, "huge.jsonl").first?["reason"] as? String)?.contains("over spool.max_file_bytes") == true)
        #expect((try errorReport(sandbox, "notes.txt").first?["reason"] as? String)?.contains(".json or .jsonl") == true)

        // The good line went out; no message carries an injected header.
        let ledger = try sandbox.ledger()
        #expect(try await statuses(ledger) == ["Q-1/email": "sent"])
        let mails = try FileManager.default.contentsOfDirectory(atPath: sandbox.maildir + "/new")
        #expect(mails.count == 1)
        for mail in mails {
            let text = try String(contentsOfFile: sandbox.maildir + "/new/" + mail, encoding: .utf8)
            #expect(!text.contains("Bcc:"))
            #expect(text.contains("filename=\"ok.pdf\""))
        }
    }

    @Test func sameIdWithDifferentContentIsAConflict() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        try sandbox.dropLines("first.jsonl", [Records.reminder("C-1", amount: "100.00")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        try sandbox.dropLines("again.jsonl", [Records.reminder("C-1", amount: "100.00")])
        try sandbox.dropLines("changed.jsonl", [Records.reminder("C-1", amount: "999.00"), Records.reminder("C-2")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(sandbox.files("done") == ["again.jsonl", "first.jsonl"], "re-dropping the same reminder is harmless")
        #expect(sandbox.files("failed") == ["changed.jsonl", "changed.jsonl.error.json"])
        let errors = try errorReport(sandbox, "changed.jsonl")
        #expect(errors.count == 1)
        #expect((errors[0]["reason"] as! String).hasPrefix("conflict"))
        let ledger = try sandbox.ledger()
        #expect(try await statuses(ledger) == ["C-1/email": "sent", "C-2/email": "sent"])
        #expect(try await receipts(ledger, reminderID: "C-1").count == 1, "sent once")
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.maildir + "/new").count == 2)
    }

    /// Big files are parsed fewer at a time than small ones (the reminders held in memory stay
    /// bounded); they are still committed in the order they were dropped.
    @Test func bigFilesAreTakenWholeAndInOrder() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        _ = try await sandbox.relance(["pause", "--all"])
        let perFile = 5_200
        for file in 0..<4 {
            var records = (0..<perFile).map { Records.reminder("B\(file)-\($0)", amount: "10.00") }
            // The last file repeats the first file's first id with another amount: a conflict,
            // since the first file is committed before it.
            if file == 3 { records[0] = Records.reminder("B0-0", amount: "99.00") }
            try sandbox.dropLines("big-\(file).jsonl", records)
        }
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(sandbox.files("done") == ["big-0.jsonl", "big-1.jsonl", "big-2.jsonl"])
        #expect(sandbox.files("failed") == ["big-3.jsonl", "big-3.jsonl.error.json"])
        let errors = try errorReport(sandbox, "big-3.jsonl")
        #expect(errors.count == 1 && (errors.first?["reason"] as? String)?.hasPrefix("conflict") == true)
        let counts = try await sandbox.ledger().statusCounts()
        #expect(counts.map(\.count).reduce(0, +) == 4 * perFile - 1)
    }

    @Test func dryRunChangesNothing() async throws {
        let sandbox = try Sandbox()
        // Nothing listens on port 9: D-0 fails transiently and is due again at once (retry.first 0s).
        try sandbox.writeConfig(smtpPort: 9, retryFirst: "0s")
        try sandbox.dropLines("first.jsonl", [Records.reminder("D-1", extra: ["not_before": "2099-01-01T09:00:00+01:00"]), Records.reminder("D-0")])
        let once = try await sandbox.relance(["serve", "--once"])
        #expect(once.status == 0)
        #expect(try await receipts(try sandbox.ledger(), reminderID: "D-0").count == 1, "--once tries each delivery once per pass")
        try sandbox.dropLines("second.jsonl", [Records.reminder("D-2"), Records.reminder("D-3", stage: "final_notice")])
        try sandbox.dropLines("bad.jsonl", [Records.reminder("D-4", email: "nope")])

        func snapshot() throws -> [String: Data] {
            var result: [String: Data] = [:]
            let enumerator = FileManager.default.enumerator(atPath: sandbox.root)!
            for case let path as String in enumerator where !path.hasPrefix("child-") && !path.contains("ledger.sqlite-shm") {
                var isDir: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: sandbox.root + "/" + path, isDirectory: &isDir)
                result[path] = isDir.boolValue ? Data() : try Data(contentsOf: URL(fileURLWithPath: sandbox.root + "/" + path))
            }
            return result
        }
        let before = try snapshot()
        let run = try await sandbox.relance(["serve", "--dry-run"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("would send  D-2/email  to elodie@example.fr"))
        #expect(run.stdout.contains("would send  D-0/email  to elodie@example.fr  (ledger, attempt 2)"))
        #expect(run.stdout.contains("would send  D-3/email"))
        #expect(run.stdout.contains("invalid     default/bad.jsonl line 1 field debtor.email"))
        #expect(!run.stdout.contains("D-1/email  to"), "not due yet")
        #expect(run.stdout.contains("3 deliveries would be sent"))
        var after = try snapshot()
        // Opening a WAL database, even read-only, makes SQLite create an empty -wal file: no state.
        if let wal = after["ledger.sqlite-wal"], before["ledger.sqlite-wal"] == nil {
            #expect(wal.isEmpty)
            after.removeValue(forKey: "ledger.sqlite-wal")
        }
        #expect(Set(after.keys) == Set(before.keys), "no file created, moved or removed")
        for (path, data) in before where !path.hasSuffix(".relance.log") { #expect(after[path] == data, "\(path) changed") }
    }

    @Test func previewPrintsTheFullMessageAndSendsNothing() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let file = sandbox.root + "/one.json"
        try JSONSerialization.data(withJSONObject: Records.reminder("V-1", stage: "final_notice", channels: ["email", "sms"])).write(
            to: URL(fileURLWithPath: file))
        let run = try await sandbox.relance(["preview", file])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("=== V-1/email (line 1) — decision: send now"))
        // Decoded, to be proofread: no encoded words, no quoted-printable.
        #expect(run.stdout.contains("Subject: Mise en demeure"), "\(run.stdout)")
        #expect(run.stdout.contains("To: Élodie Martin <elodie@example.fr>"))
        #expect(run.stdout.contains("--- text ---\nExemple SAS"))
        #expect(run.stdout.contains("--- HTML, as text ---"))
        #expect(run.stdout.contains("Destinataire : Élodie Martin"))
        #expect(!run.stdout.contains("=C3=A9"))
        #expect(!run.stdout.contains("=?UTF-8?B?"))
        let raw = try await sandbox.relance(["preview", "--raw", file])
        #expect(raw.status == 0)
        #expect(raw.stdout.contains("MIME-Version: 1.0"))
        #expect(raw.stdout.contains("Subject: =?UTF-8?B?"))
        #expect(raw.stdout.contains("Content-Type: text/html; charset=utf-8"))
        #expect(run.stdout.contains("=== V-1/sms (line 1) — decision: send now"))
        #expect(run.stdout.contains("mise en demeure de payer 1 234,50 €"), "no-break spaces become spaces in SMS")
        #expect(run.stdout.contains("SMS from RELANCE to +33612345678: GSM-7"))
        #expect(!FileManager.default.fileExists(atPath: sandbox.ledgerPath))
        #expect(!FileManager.default.fileExists(atPath: sandbox.maildir + "/new"))

        let bad = sandbox.root + "/bad.json"
        try JSONSerialization.data(withJSONObject: Records.reminder("V-2", currency: "ABC")).write(to: URL(fileURLWithPath: bad))
        let refused = try await sandbox.relance(["preview", bad])
        #expect(refused.status == 2)
        #expect(refused.stdout.contains("INVALID line 1 field invoices[0].currency"))
    }

    @Test func secondDaemonOnTheSameLedgerRefusesToStart() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let daemon = try sandbox.start(["serve"])
        try await eventually("the first daemon to start") { daemon.stderr.contains("relance serve started") }
        let second = try await sandbox.relance(["serve", "--once"])
        #expect(second.status == 1)
        #expect(second.stderr.contains("owns the ledger"))
        // New files are picked up promptly by the running daemon (inotify).
        try sandbox.dropLines("live.jsonl", [Records.reminder("L-1")])
        try await eventually("the live drop to be sent") {
            ((try? FileManager.default.contentsOfDirectory(atPath: sandbox.maildir + "/new")) ?? []).count == 1
        }
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0)
    }

    @Test func configurationErrorsAreUsageErrors() async throws {
        let sandbox = try Sandbox()
        let missing = try await Child(Package.relance, ["check", "--config", sandbox.root + "/nope.yaml"], directory: sandbox.root).waitWithOutput()
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no such file"))
        try "email:\n  transprot: smtp\n".write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        let typo = try await sandbox.relance(["check"])
        #expect(typo.status == 2)
        #expect(typo.stderr.contains("unknown key 'email.transprot'"))
        try sandbox.writeConfig()
        let ok = try await sandbox.relance(["check"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("templates: ok"))
        let env = try await sandbox.relance(["check"], environment: ["RELANCE_DELIVERY_CONCURRENCY": "0"])
        #expect(env.status == 2, "environment overrides are validated too")
        #expect(env.stderr.contains("delivery.concurrency"))
    }

    @Test func enqueueValidatesAndDrops() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let good = sandbox.root + "/good.jsonl"
        let bad = sandbox.root + "/bad.jsonl"
        try (String(data: try JSONSerialization.data(withJSONObject: Records.reminder("E-1")), encoding: .utf8)! + "\n").write(
            toFile: good, atomically: true, encoding: .utf8)
        try (String(data: try JSONSerialization.data(withJSONObject: Records.reminder("E-2", amount: "x")), encoding: .utf8)! + "\n").write(
            toFile: bad, atomically: true, encoding: .utf8)
        let run = try await sandbox.relance(["enqueue", "--queue", "urgent", good, bad])
        #expect(run.status == 2)
        #expect(run.stderr.contains("bad.jsonl: line 1 field invoices[0].amount"))
        let queued = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.spool + "/incoming/urgent")) ?? []
        #expect(queued.count == 1)
        #expect(queued.first?.hasSuffix("good.jsonl") == true)
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try await statuses(try sandbox.ledger()) == ["E-1/email": "sent"])
    }
}

extension Child {
    func waitWithOutput() async throws -> (status: Int32, stdout: String, stderr: String) {
        let status = try await wait()
        return (status, stdout, stderr)
    }
}
