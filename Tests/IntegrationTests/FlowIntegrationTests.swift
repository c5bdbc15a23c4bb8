import Foundation
import RelanceCore
import RelanceStore
import RelanceTransport
import Testing

@Suite struct FlowIntegrationTests {
    @Test func aFailingRelayIsPausedInsteadOfStormed() async throws {
        let sandbox = try Sandbox()
        // Nothing listens on port 9: every attempt fails transiently.
        try sandbox.writeConfig(smtpPort: 9, concurrency: 1, delivery: "breaker: { failures: 2, cooldown: 1h }")
        #expect(try String(contentsOfFile: sandbox.configPath, encoding: .utf8).contains("breaker: { failures: 2"))
        try sandbox.dropLines("a.jsonl", (0..<6).map { Records.reminder("B-\($0)", email: "b\($0)@example.org") })
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("circuit breaker open"))
        let attempts = try await receipts(try sandbox.ledger())
        #expect(attempts.count == 2, "two failures open the breaker; the other four wait: \(attempts.map(\.reminderID))")
        let deliveries = try await sandbox.ledger().deliveries()
        #expect(deliveries.filter { $0.status == "pending" }.count == 6)
        #expect(deliveries.filter { $0.attempts == 0 }.count == 4)
    }

    @Test func aRateLimitedPassStillSendsEverything() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig(extra: "")
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            .replacingOccurrences(of: "  transport: outbox\n", with: "  transport: outbox\n  rate: 20\n")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        #expect(try String(contentsOfFile: sandbox.configPath, encoding: .utf8).contains("  rate: 20\n"))
        try sandbox.dropLines("a.jsonl", (0..<30).map { Records.reminder("R-\($0)", email: "r\($0)@example.org") })
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try await sandbox.ledger().deliveries().allSatisfy { $0.status == "sent" })
    }
}

@Suite struct FallbackTests {
    func reminder(_ id: String, phone: String) -> [String: Any] {
        var r = SMSIntegrationTests.smsReminder(id, phone: phone)
        r["fallback"] = ["email"]
        return r
    }

    @Test func smsFailingForGoodFallsBackToEmail() async throws {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox)
        let sms = sim.twilioSection
        try sandbox.writeConfig(sms: sms)
        var noFallback = SMSIntegrationTests.smsReminder("NOFB", phone: "01 45 67 89 10")
        noFallback["fallback"] = nil
        try sandbox.dropLines(
            "a.jsonl",
            [reminder("LAND", phone: "01 45 67 89 10"), reminder("INVALID", phone: "+33612340000"), reminder("OK", phone: "+33612345678"), noFallback])
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        let statuses = try await statuses(try sandbox.ledger())
        #expect(statuses == ["LAND/sms": "failed", "LAND/email": "sent", "INVALID/sms": "failed", "INVALID/email": "sent", "OK/sms": "sent"])
        // SMS only, to a landline: it could never be sent, so it is refused at intake.
        let report = try String(contentsOfFile: sandbox.spool + "/failed/a.jsonl.error.json", encoding: .utf8)
        #expect(report.contains("+33145678910 is a French landline or special number: it cannot receive SMS"), "\(report)")
        let events = try await sandbox.ledger().events(reminderID: "LAND")
        #expect(events.contains { $0.channel == "email" && $0.reason.hasPrefix("fallback from sms: +33145678910 is a French landline") })
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.maildir + "/new").count == 2)
    }

    /// `enqueue` used to accept an SMS-only record to a landline that `preview` said would fail.
    @Test func enqueueAndPreviewAgreeOnALandline() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let file = sandbox.root + "/landline.json"
        try JSONSerialization.data(withJSONObject: SMSIntegrationTests.smsReminder("LL", phone: "01 45 67 89 10")).write(to: URL(fileURLWithPath: file))
        let message = "+33145678910 is a French landline or special number: it cannot receive SMS"
        let enqueue = try await sandbox.relance(["enqueue", file])
        #expect(enqueue.status == 2)
        #expect(enqueue.stderr.contains("field debtor.phone: \(message)"), "\(enqueue.stderr)")
        let preview = try await sandbox.relance(["preview", file])
        #expect(preview.status == 2)
        #expect(preview.stdout.contains("field debtor.phone: \(message)"), "\(preview.stdout)")
        #expect(sandbox.files("incoming").isEmpty)
    }

    @Test func aSuppressedNumberFallsBackToEmail() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let ledger = try Ledger(path: sandbox.ledgerPath)
        try await ledger.suppress("+33612345678", reason: "STOP reply", source: "twilio", now: Date())
        try sandbox.dropLines("a.jsonl", [reminder("STOPPED", phone: "06 12 34 56 78")])
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0)
        let final = try await statuses(try sandbox.ledger())
        #expect(final == ["STOPPED/sms": "suppressed", "STOPPED/email": "sent"], "\(final) \(run.stderr.suffix(1500))")
    }
}

@Suite struct StoreFaultTests {
    @Test func aReadOnlyLedgerStopsSendingAndRecoversByItself() async throws {
        let sandbox = try Sandbox()
        let port = WebhookIntegrationTests.freePort()
        try sandbox.writeConfig(listen: "127.0.0.1:\(port)")
        let daemon = try sandbox.start(["serve"])
        try await eventually("the daemon") { daemon.stderr.contains("webhook server listening") }
        let client = try HTTPClient(configuration: .init(connections: 1))
        func health() async -> Int { (try? await client.execute(HTTPClient.Request(method: "GET", url: "http://127.0.0.1:\(port)/healthz")).get().status) ?? 0 }
        #expect(await health() == 200)

        let files = ["ledger.sqlite", "ledger.sqlite-wal"].map { sandbox.root + "/" + $0 }
        func chattr(_ flag: String) async throws -> Int32 { try await Child("/usr/bin/env", ["chattr", flag] + files, directory: sandbox.root).wait() }
        guard try await chattr("+i") == 0 else {
            Issue.record("chattr +i is not available here")
            return
        }
        try sandbox.dropLines("a.jsonl", (0..<5).map { Records.reminder("SF-\($0)", email: "sf\($0)@example.org") })
        try await eventually("the fault to be seen") { await health() == 503 }
        try await eventually("the ingest to be refused") { daemon.stderr.contains("left in active/") }
        let maildir = sandbox.maildir + "/new"
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: maildir)) ?? []).isEmpty, "nothing is sent while the ledger refuses writes")

        #expect(try await chattr("-i") == 0)
        try await eventually("everything sent once the fault clears") {
            ((try? FileManager.default.contentsOfDirectory(atPath: maildir)) ?? []).count == 5
        }
        #expect(await health() == 200)
        #expect(try await statuses(try sandbox.ledger()).values.allSatisfy { $0 == "sent" })
        #expect(try FileManager.default.contentsOfDirectory(atPath: maildir).count == 5, "nothing twice")
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0)
    }
}

@Suite struct FailoverTests {
    @Test func aDownRelayFailsOverToTheSecondary() async throws {
        let sandbox = try Sandbox()
        let secondary = try await SMTPServer(sandbox: sandbox)
        // The primary (port 9) is down.
        try sandbox.writeConfig(smtpPort: 9, concurrency: 1, delivery: "breaker: { failures: 1, cooldown: 1h }")
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            .replacingOccurrences(
                of: "  smtp: { url: \"smtp://127.0.0.1:9\"",
                with: "  secondary_smtp: { url: \"smtp://127.0.0.1:\(secondary.port)\", starttls: none }\n  smtp: { url: \"smtp://127.0.0.1:9\""
            )
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        #expect(try String(contentsOfFile: sandbox.configPath, encoding: .utf8).contains("secondary_smtp"))
        try sandbox.dropLines("a.jsonl", (0..<3).map { Records.reminder("FO-\($0)", email: "fo\($0)@example.org") })
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        // The first send found the primary down (retried later); the others went through the secondary.
        let all = try await receipts(try sandbox.ledger())
        #expect(all.map(\.transport) == ["smtp", "smtp-secondary", "smtp-secondary"])
        #expect(all.map(\.outcome) == ["transient", "sent", "sent"])
        #expect(secondary.messages.count == 2)
        #expect(all.first?.status == "pending", "the first is retried later, through the secondary while the primary is paused")
    }
}

@Suite struct SMSFailoverTests {
    @Test func aDownGatewayFailsOverToTheSecondary() async throws {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox)
        // Twilio (the primary) is unreachable; Vonage (the secondary) answers through the simulator.
        let sms = """
            sms:
              provider: twilio
              sender: EXEMPLE
              base_url: "http://127.0.0.1:9"
              twilio: { account_sid: \(GatewaySimulator.twilioSID), auth_token: \(GatewaySimulator.twilioToken) }
              vonage: { api_key: vonage-key, api_secret: vonage-secret, signature_secret: vsig }
              secondary: { provider: vonage, base_url: "\(sim.baseURL)" }
            """
        try sandbox.writeConfig(concurrency: 1, sms: sms, delivery: "breaker: { failures: 1, cooldown: 1h }")
        try sandbox.dropLines("a.jsonl", (0..<3).map { SMSIntegrationTests.smsReminder("SF-\($0)", phone: "+3361234567\($0 + 2)") })
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let all = try await receipts(try sandbox.ledger())
        #expect(all.map(\.transport) == ["twilio", "vonage", "vonage"])
        #expect(all.map(\.outcome) == ["transient", "sent", "sent"])
        #expect(sim.requests.filter { $0["provider"] as? String == "vonage" && $0["outcome"] as? String == "accepted" }.count == 2)
        // Provider ids are registered under the provider that sent, so its callbacks find them.
        #expect(all.filter { $0.transport == "vonage" }.allSatisfy { $0.providerID?.isEmpty == false })
    }
}
