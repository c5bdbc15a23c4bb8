import Crypto
import Foundation
import GRDB
import RelanceCore
import RelanceStore
import RelanceTransport
import Testing

/// The defects of issue 10, each reproduced through the binary, the HTTP side or the ledger file:
/// every test here failed on the code before its fix.
@Suite(.serialized) struct FoundDefectTests {
    /// A `not_before` with Arabic-Indic digits crashed `preview` (SIGILL, exit 132) and, in the
    /// SIGTERM during a long intake pass made the daemon exit 1 ("A service has finished
    /// unexpectedly"): the intake's shutdown set the dispatcher's stop flag too, so the dispatcher
    /// finished before the service group asked it to (seen under load in CancellationRaceTests).
    @Test func aStopDuringALongIntakePassExitsCleanly() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        _ = try await sandbox.relance(["pause", "--all"])
        // A small file first (its rows show the pass has begun), then one that takes seconds to take in.
        try sandbox.dropLines("a-small.jsonl", [Records.reminder("SMALL-1")])
        try sandbox.dropLines("b-big.jsonl", (0..<60_000).map { Records.reminder("BIG-\($0)") })
        let daemon = try sandbox.start(["serve"])
        try await eventually("the intake to be under way", timeout: .seconds(120)) {
            ((try? await sandbox.ledger().statusCounts()) ?? []).reduce(0) { $0 + $1.count } > 0
        }
        daemon.signal(SIGTERM)
        let status = try await daemon.wait()
        #expect(status == 0, "\(daemon.stderr.suffix(600))")
    }

    /// daemon, left the file in `active/` to crash every start.
    @Test func poisonPillIsRefusedNotCrashed() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let poison = Records.reminder("P-1", extra: ["not_before": "2026-11-29T١٠:00:00Z"])
        let file = sandbox.root + "/poison.json"
        try JSONSerialization.data(withJSONObject: poison).write(to: URL(fileURLWithPath: file))

        let preview = try await sandbox.relance(["preview", file])
        #expect(preview.status == 2, "\(preview.stderr)")
        #expect(preview.stdout.contains("field not_before"))

        try sandbox.dropLines("poison.jsonl", [poison, Records.reminder("P-2")])
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(sandbox.files("failed") == ["poison.jsonl", "poison.jsonl.error.json"])
        #expect(sandbox.files("active/default").isEmpty)
        #expect(try await statuses(sandbox.ledger()) == ["P-2/email": "sent"])
    }

    /// The probe after a provider's pause was cancelled at the last moment and never reported: the
    /// breaker stayed half-open with a probe out, and the channel sent nothing again.
    @Test func aProbeThatSendsNothingDoesNotSilenceTheChannel() async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port, concurrency: 1, delivery: "breaker: { failures: 1, cooldown: 1s }")
        try FileManager.default.createDirectory(atPath: sandbox.spool + "/cancel", withIntermediateDirectories: true)
        try Data(#"{"cancel": {"invoice": "INV-PB-B", "reason": "paid"}}"#.utf8).write(to: URL(fileURLWithPath: sandbox.spool + "/cancel/paid.json"))
        // A's 451 opens the breaker; B, the probe after the cooldown, is found cancelled; C must go.
        try sandbox.dropLines(
            "a.jsonl",
            [
                Records.reminder("PB-A", email: "tempfail-once-a@example.org"), Records.reminder("PB-B", email: "b@example.org"),
                Records.reminder("PB-C", email: "c@example.org"),
            ])
        let daemon = try sandbox.start(["serve"])
        try await eventually("C to be sent after the pause", timeout: .seconds(30)) { (try? await statuses(sandbox.ledger()))?["PB-C/email"] == "sent" }
        let all = try await statuses(sandbox.ledger())
        #expect(all["PB-A/email"] == "pending", "A waits for its retry")
        #expect(all["PB-B/email"] == "cancelled")
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0)
    }

    /// The generic webhook committed its id as seen before applying the status: when the apply
    /// failed (503), the gateway's retry was answered "duplicate" and the status was lost.
    @Test func aWebhookWhoseApplyFailedIsAppliedOnItsRetry() async throws {
        let live = try await LiveDaemon.start()
        let body = #"{"message_id":"GEN-RETRY","status":"delivered"}"#
        let headers = LiveDaemon.standardWebhooks(id: "msg_retry", body)
        let ledger = try DatabaseQueue(path: live.sandbox.ledgerPath)
        try await ledger.write { db in
            try db.execute(sql: "CREATE TRIGGER fail_callbacks BEFORE INSERT ON callback BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        }
        #expect(try await live.post("/webhooks/generic", headers: headers, json: Data(body.utf8)).status == 503)
        try await ledger.write { db in try db.execute(sql: "DROP TRIGGER fail_callbacks") }
        let retry = try await live.post("/webhooks/generic", headers: headers, json: Data(body.utf8))
        #expect(retry.status == 200)
        #expect(!String(decoding: retry.body, as: UTF8.self).contains("duplicate"), "the retry is applied: \(String(decoding: retry.body, as: UTF8.self))")
        let kept = try await ledger.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM callback WHERE message_id = 'GEN-RETRY'") }
        #expect(kept == 1)
        await live.stop()
    }

    /// Vonage receipts were accepted unsigned when no signature secret was set.
    @Test func aVonageConfigurationWithoutSignatureSecretIsRefused() async throws {
        let sandbox = try Sandbox()
        let sms = """
            sms:
              provider: vonage
              sender: EXEMPLE
              vonage: { api_key: vonage-key, api_secret: vonage-secret }
            """
        try sandbox.writeConfig(sms: sms)
        let check = try await sandbox.relance(["check"])
        #expect(check.status == 2, "\(check.stdout)\(check.stderr)")
        #expect(check.stderr.contains("sms.vonage.signature_secret"), "\(check.stderr)")
        let serve = try await sandbox.relance(["serve", "--once"])
        #expect(serve.status == 2, "\(serve.stderr)")
    }

    /// A gateway that is not configured answers 404, whatever the request.
    @Test func anUnconfiguredGatewayAnswers404() async throws {
        let live = try await LiveDaemon.start()
        let unsigned = try JSONSerialization.data(withJSONObject: ["messageId": "X", "status": "delivered"])
        #expect(try await live.post("/webhooks/vonage", json: unsigned).status == 404, "vonage is not the configured gateway")
        #expect(try await live.post("/webhooks/brevo?token=anything", json: Data("{}".utf8)).status == 404)
        await live.stop()
    }

    /// An SMTP timeout after the whole message was uploaded was a transient failure, and the
    /// message went again: the duplicate window DESIGN.md's in-doubt rule exists for.
    @Test(arguments: ["hang-after-data", "drop-after-data"])
    func noReplyAfterTheWholeMessageIsInDoubtNeverResent(_ behaviour: String) async throws {
        let sandbox = try Sandbox()
        let server = try await SMTPServer(sandbox: sandbox)
        try sandbox.writeConfig(smtpPort: server.port, retryFirst: "0s")
        try String(contentsOfFile: sandbox.configPath, encoding: .utf8).replacingOccurrences(of: "timeout: 20s", with: "timeout: 2s")
            .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        try sandbox.dropLines("a.jsonl", [Records.reminder("DOUBT", email: "\(behaviour)-x@example.org")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let received = ((try? FileManager.default.contentsOfDirectory(atPath: server.out)) ?? []).filter { $0.hasSuffix(".received-no-reply") }
        #expect(received.count == 1, "the relay got the message once: \(received)")
        #expect(try await statuses(sandbox.ledger()) == ["DOUBT/email": "unknown"])
    }

    /// SIGHUP swapped the templates and the policy but not the webhook secrets: a rotated Twilio
    /// auth token was silently not in force.
    @Test func aRotatedTwilioTokenIsInForceAfterSIGHUP() async throws {
        let live = try await LiveDaemon.start(token: "old-token")
        let params = [("MessageSid", "SM-ROTATE"), ("MessageStatus", "delivered")]
        func signed(_ token: String) -> [String: String] {
            ["X-Twilio-Signature": LiveDaemon.twilioSignature(token: token, url: live.base + "/webhooks/twilio", params)]
        }
        #expect(try await live.post("/webhooks/twilio", headers: signed("old-token"), form: params).status == 200)
        // The token rotates; the listen address changes too, which only a restart can apply.
        try String(contentsOfFile: live.sandbox.configPath, encoding: .utf8).replacingOccurrences(of: "auth_token: old-token", with: "auth_token: new-token")
            .replacingOccurrences(of: "listen: \"127.0.0.1:", with: "listen: \"127.0.0.2:")
            .write(toFile: live.sandbox.configPath, atomically: true, encoding: .utf8)
        live.daemon.signal(SIGHUP)
        try await eventually("the reload") { live.daemon.stderr.contains("reloaded configuration") }
        #expect(try await live.post("/webhooks/twilio", headers: signed("old-token"), form: params).status == 403)
        #expect(try await live.post("/webhooks/twilio", headers: signed("new-token"), form: params).status == 200)
        #expect(live.daemon.stderr.contains("reloaded; these changes take effect at the next restart relance.keys=webhooks.listen"), "\(live.daemon.stderr)")
        await live.stop()
    }

    /// A YAML syntax error quoted the offending line, which can be `password: …`.
    @Test(arguments: [
        ("email: { transport: smtp, smtp: { url: \"smtp://a:25\" } }\nemail_smtp:\n  password: \"s3cr3t-value-1\n", "password"),
        ("sms:\n  provider: twilio\n  twilio:\n    account_sid: AC1\n    auth_token: 's3cr3t-value-2\n", "auth_token"),
        ("webhooks:\n  secret: [s3cr3t-value-3\n", "secret"),
        ("webhooks:\n  api_token: \"s3cr3t-value-4\"\"\n", "api_token"),
        ("sms:\n  brevo:\n    api_key: {s3cr3t-value-5\n", "api_key"),
        ("sms:\n  vonage:\n    signature_secret: \"s3cr3t-value-6\n    api_secret: x\n", "signature_secret"),
    ])
    func configurationErrorsNeverEchoASecret(_ yaml: String, _ key: String) async throws {
        let sandbox = try Sandbox()
        try yaml.write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        let check = try await sandbox.relance(["check"])
        #expect(check.status == 2)
        #expect(!(check.stdout + check.stderr).contains("s3cr3t-value"), "\(check.stderr)")
        #expect(check.stderr.contains(sandbox.configPath), "names the file: \(check.stderr)")
        #expect(check.stderr.contains("line "), "names the line: \(check.stderr)")
    }

    /// A cancellation file that could not be moved away was applied again on every pass, adding a
    /// row each time.
    @Test func aCancellationFileThatCannotBeMovedIsAppliedOnce() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        try FileManager.default.createDirectory(atPath: sandbox.spool + "/cancel", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: sandbox.spool + "/done", withIntermediateDirectories: true)
        try Data(#"{"cancel": {"debtor": "C-NOBODY", "reason": "paid"}}"#.utf8).write(to: URL(fileURLWithPath: sandbox.spool + "/cancel/stuck.json"))
        func chattr(_ flag: String) async throws -> Int32 {
            try await Child("/usr/bin/env", ["chattr", flag, sandbox.spool + "/done"], directory: sandbox.root).wait()
        }
        guard try await chattr("+i") == 0 else {
            Issue.record("chattr +i is not available here; cannot make done/ refuse the move")
            return
        }
        defer { _ = Task { try? await chattr("-i") } }
        for _ in 0..<3 { #expect(try await sandbox.relance(["serve", "--once"]).status == 0) }
        #expect(try await chattr("-i") == 0)
        #expect(sandbox.files("cancel") == ["stuck.json"], "the file could not be moved")
        let rows = try await DatabaseQueue(path: sandbox.ledgerPath).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM cancellation") }
        #expect(rows == 1)
    }

    /// `/metrics` kept the last value of a status gauge that dropped to zero.
    @Test func aStatusGaugeThatDropsToZeroReadsZero() async throws {
        let live = try await LiveDaemon.start()
        let later = Timestamp.format(Date().addingTimeInterval(3600))
        try live.sandbox.dropLines("a.jsonl", [Records.reminder("M-1", extra: ["not_before": later])])
        let pending = #"relance_deliveries{channel="email",status="pending"}"#
        try await eventually("one pending delivery in /metrics") {
            String(decoding: try await live.get("/metrics").body, as: UTF8.self).contains(pending + " 1")
        }
        #expect(try await live.sandbox.relance(["cancel", "--reminder", "M-1", "--reason", "paid"]).status == 0)
        let metrics = String(decoding: try await live.get("/metrics").body, as: UTF8.self)
        #expect(metrics.contains(pending + " 0"), "\(metrics.split(separator: "\n").filter { $0.contains("relance_deliveries{") })")
        await live.stop()
    }
}

/// A daemon with its webhook server, Twilio as the SMS provider and a Standard Webhooks secret.
struct LiveDaemon {
    let sandbox: Sandbox
    let daemon: Child
    let base: String
    let client: HTTPClient
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    static func start(token: String = "twilio-test-token") async throws -> LiveDaemon {
        let sandbox = try Sandbox()
        let port = WebhookIntegrationTests.freePort()
        let base = "http://127.0.0.1:\(port)"
        let sms = """
            sms:
              provider: twilio
              sender: EXEMPLE
              base_url: "http://127.0.0.1:9"
              twilio: { account_sid: AC00000000000000000000000000000000, auth_token: \(token) }
            """
        try sandbox.writeConfig(sms: sms, webhooks: "public_base_url: \"\(base)\", secret: \"\(secret)\"", listen: "127.0.0.1:\(port)")
        let daemon = try sandbox.start(["serve"])
        try await eventually("the webhook server") { daemon.stderr.contains("webhook server listening") }
        return LiveDaemon(sandbox: sandbox, daemon: daemon, base: base, client: try HTTPClient(configuration: .init(connections: 2)))
    }

    func post(_ path: String, headers: [String: String] = [:], form: [(String, String)]? = nil, json: Data? = nil) async throws -> HTTPClient.Response {
        var h = headers
        var body = Data()
        if let form {
            h["Content-Type"] = "application/x-www-form-urlencoded"
            body = FormEncoding.body(form)
        } else if let json {
            h["Content-Type"] = "application/json"
            body = json
        }
        return try await client.execute(HTTPClient.Request(method: "POST", url: base + path, headers: h, body: body)).get()
    }

    func get(_ path: String) async throws -> HTTPClient.Response {
        try await client.execute(HTTPClient.Request(method: "GET", url: base + path)).get()
    }

    func stop() async {
        daemon.signal(SIGTERM)
        _ = try? await daemon.wait()
    }

    /// Standard Webhooks headers for `body`, signed now.
    static func standardWebhooks(id: String, _ body: String) -> [String: String] {
        let ts = "\(Int(Date().timeIntervalSince1970))"
        let key = Data(base64Encoded: String(secret.dropFirst("whsec_".count))) ?? Data()
        let mac = HMACSHA256.mac(key: key, message: Data("\(id).\(ts).\(body)".utf8))
        return ["webhook-id": id, "webhook-timestamp": ts, "webhook-signature": "v1," + mac.base64EncodedString()]
    }

    /// Twilio's `X-Twilio-Signature` of a form POST to `url`.
    static func twilioSignature(token: String, url: String, _ params: [(String, String)]) -> String {
        let payload = url + params.sorted { $0.0 < $1.0 }.map { $0.0 + $0.1 }.joined()
        return HMACSHA256.sha1(key: Data(token.utf8), message: Data(payload.utf8)).base64EncodedString()
    }
}

/// HMACs computed here, independently of the code under test.
enum HMACSHA256 {
    static func mac(key: Data, message: Data) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
    static func sha1(key: Data, message: Data) -> Data {
        Data(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}
