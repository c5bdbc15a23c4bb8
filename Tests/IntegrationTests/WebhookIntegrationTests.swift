import Foundation
import RelanceCore
import RelanceStore
import RelanceTransport
import Testing

@testable import RelanceConfig
@testable import RelanceDaemon
@testable import RelanceDispatch
@testable import RelanceHTTP
@testable import RelanceSpool

/// The daemon's HTTP side, live: callbacks from the simulator and forged ones, STOP, health, metrics.
@Suite(.serialized) struct WebhookIntegrationTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    /// A free loopback port (bound, read, released).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    struct Live {
        let sandbox: Sandbox
        let sim: GatewaySimulator
        let daemon: Child
        let base: String
        let client: HTTPClient

        func post(_ path: String, headers: [String: String] = [:], form: [(String, String)]? = nil, json: Data? = nil) async throws -> HTTPClient.Response {
            var h = headers
            var body: Data?
            if let form {
                h["Content-Type"] = "application/x-www-form-urlencoded"
                body = FormEncoding.body(form)
            } else if let json {
                h["Content-Type"] = h["Content-Type"] ?? "application/json"
                body = json
            }
            return try await client.execute(HTTPClient.Request(method: "POST", url: base + path, headers: h, body: body ?? Data())).get()
        }

        func get(_ path: String) async throws -> HTTPClient.Response {
            try await client.execute(HTTPClient.Request(method: "GET", url: base + path)).get()
        }

        func status(_ id: String) async throws -> String? { try await sandbox.ledger().deliveries(reminderID: id).first?.status }
    }

    func start(provider: String = "twilio", simArguments: [String] = [], extra: String = "") async throws -> Live {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox, arguments: simArguments)
        let port = Self.freePort()
        let base = "http://127.0.0.1:\(port)"
        let sms = """
            sms:
              provider: \(provider)
              sender: EXEMPLE
              base_url: "\(sim.baseURL)"
              twilio: { account_sid: \(GatewaySimulator.twilioSID), auth_token: \(GatewaySimulator.twilioToken) }
              vonage: { api_key: vonage-key, api_secret: vonage-secret, signature_secret: vsig, signature_method: md5hash }
            """
        // The daemon listens where gateways are told to call back.
        try sandbox.writeConfig(
            extra: extra, sms: sms, webhooks: "public_base_url: \"\(base)\", secret: \"\(Self.secret)\", brevo_token: tok3n", listen: "127.0.0.1:\(port)")
        let daemon = try sandbox.start(["serve"])
        try await eventually("the webhook server") { daemon.stderr.contains("webhook server listening") }
        return Live(sandbox: sandbox, sim: sim, daemon: daemon, base: base, client: try HTTPClient(configuration: .init(connections: 2)))
    }

    func smsReminder(_ id: String, phone: String) -> [String: Any] { SMSIntegrationTests.smsReminder(id, phone: phone) }

    @Test func simulatorCallbacksDuplicatedAndOutOfOrderEndRight() async throws {
        let live = try await start(simArguments: ["--duplicate-callbacks", "--shuffle-callbacks"])
        try live.sandbox.dropLines("a.jsonl", [smsReminder("W-OK", phone: "+33612345678"), smsReminder("W-FAIL", phone: "+33612340013")])
        try await eventually("final statuses from callbacks") {
            let ok = try await live.status("W-OK")
            let failed = try await live.status("W-FAIL")
            return ok == "delivered" && failed == "undelivered"
        }
        // Duplicated and reversed: delivered, delivered, sent, sent — wait for all four.
        try await eventually("every callback to be kept") { try await live.sandbox.ledger().callbacks(reminderID: "W-OK").count >= 4 }
        let kept = try await live.sandbox.ledger().callbacks(reminderID: "W-OK")
        #expect(kept.count == 4, "every callback is kept: \(kept.map(\.result))")
        #expect(try await live.status("W-OK") == "delivered", "the late 'sent' did not regress it")
        #expect(kept.map(\.result).filter { $0.hasSuffix("applied") }.count == 1, "applied, or late-applied when the callback beat our commit")
        let history = try await live.sandbox.relance(["receipts", "--reminder", "W-OK"])
        #expect(history.status == 0)
        #expect(history.stdout.contains("callbacks:"))
        #expect(history.stdout.components(separatedBy: " twilio SM").count - 1 == 4, "every callback is listed: \(history.stdout)")
        #expect(history.stdout.contains("sent → delivered: twilio reported delivered"))
        live.daemon.signal(SIGTERM)
        #expect(try await live.daemon.wait() == 0)
    }

    @Test func signedVonageReceiptsOfEveryPartMakeOneStatus() async throws {
        let live = try await start(provider: "vonage", simArguments: ["--vonage-signature-secret", "vsig"], extra: "creditor: { name: \"Hôtel Exemple\" }")
        try live.sandbox.dropLines("a.jsonl", [SMSIntegrationTests.smsReminder("V-LONG", phone: "+33612345678", stage: "final_notice")])
        try await eventually("the long SMS to be delivered") { try await live.status("V-LONG") == "delivered" }
        let sent = try #require(try await receipts(try live.sandbox.ledger(), reminderID: "V-LONG").first)
        let parts = try #require(sent.providerID?.split(separator: ","))
        #expect(parts.count >= 2, "a UCS-2 final notice takes several segments")
        let kept = try await live.sandbox.ledger().callbacks(reminderID: "V-LONG")
        #expect(kept.count == parts.count)
        #expect(kept.map(\.result).filter { $0.hasSuffix("applied") }.count == 1, "one status for the whole message")
        // An unsigned or mis-signed receipt is refused.
        let forged = ["messageId": String(parts[0]), "status": "failed", "timestamp": "\(Int(Date().timeIntervalSince1970))", "sig": "00"]
        let response = try await live.post("/webhooks/vonage", json: try JSONSerialization.data(withJSONObject: forged))
        #expect(response.status == 403)
        #expect(try await live.status("V-LONG") == "delivered")
        live.daemon.signal(SIGTERM)
        _ = try await live.daemon.wait()
    }

    @Test func forgedCallbacksAreRefusedAndChangeNothing() async throws {
        let live = try await start()
        try live.sandbox.dropLines("a.jsonl", [smsReminder("F1", phone: "+33612345678")])
        try await eventually("the SMS to be delivered") { try await live.status("F1") == "delivered" }
        let sid = try #require(try await receipts(try live.sandbox.ledger(), reminderID: "F1").first?.providerID)
        let params = [("MessageSid", sid), ("MessageStatus", "undelivered"), ("To", "+33612345678")]
        let good = WebhookSignatures.twilio(token: GatewaySimulator.twilioToken, url: live.base + "/webhooks/twilio", parameters: params)
        let wrongURL = WebhookSignatures.twilio(token: GatewaySimulator.twilioToken, url: "https://evil.example/webhooks/twilio", parameters: params)
        let before = try await live.sandbox.ledger().callbacks(reminderID: "F1").count

        #expect(try await live.post("/webhooks/twilio", form: params).status == 403, "missing signature")
        #expect(try await live.post("/webhooks/twilio", headers: ["X-Twilio-Signature": "AAAA"], form: params).status == 403, "wrong signature")
        #expect(try await live.post("/webhooks/twilio", headers: ["X-Twilio-Signature": wrongURL], form: params).status == 403, "signed for another URL")
        var tampered = params
        tampered[1].1 = "failed"
        #expect(try await live.post("/webhooks/twilio", headers: ["X-Twilio-Signature": good], form: tampered).status == 403, "tampered parameter")
        #expect(try await live.post("/webhooks/twilio", headers: ["X-Twilio-Signature": good], json: Data("{}".utf8)).status == 415)
        #expect(
            try await live.post("/webhooks/brevo?token=wrong", json: Data(#"{"event":"delivered","messageId":1}"#.utf8)).status == 403,
            "with webhooks.brevo_token set, the Brevo endpoint (its email events) exists, and a wrong token is refused")
        #expect(try await live.status("F1") == "delivered")
        #expect(try await live.sandbox.ledger().callbacks(reminderID: "F1").count == before, "nothing was recorded")

        // Correctly signed: recorded, but no regress after delivered.
        let accepted = try await live.post("/webhooks/twilio", headers: ["X-Twilio-Signature": good], form: params)
        #expect(accepted.status == 200)
        #expect(try await live.status("F1") == "delivered")

        // Too large.
        #expect(
            try await live.post("/webhooks/twilio", headers: ["X-Twilio-Signature": good], form: [("Body", String(repeating: "x", count: 70_000))]).status
                == 413)
        live.daemon.signal(SIGTERM)
        _ = try await live.daemon.wait()
    }

    @Test func standardWebhooksEndpoint() async throws {
        let live = try await start()
        try live.sandbox.dropLines("a.jsonl", [smsReminder("S1", phone: "+33612345678")])
        try await eventually("the send") { try await live.status("S1") == "delivered" }
        func signed(_ id: String, _ body: String, at time: Date = Date()) -> [String: String] {
            let ts = "\(Int(time.timeIntervalSince1970))"
            return [
                "webhook-id": id, "webhook-timestamp": ts,
                "webhook-signature": WebhookSignatures.standardWebhooks(secret: Self.secret, id: id, timestamp: ts, body: Data(body.utf8))!,
            ]
        }
        let body = #"{"message_id":"GEN-1","status":"delivered","error_code":null,"occurred_at":"2026-11-29T10:00:00Z"}"#
        let first = try await live.post("/webhooks/generic", headers: signed("msg_1", body), json: Data(body.utf8))
        #expect(first.status == 200)
        #expect(String(decoding: first.body, as: UTF8.self).contains("orphan"), "unknown ids answer 200 and are kept")
        let replay = try await live.post("/webhooks/generic", headers: signed("msg_1", body), json: Data(body.utf8))
        #expect(replay.status == 200)
        #expect(String(decoding: replay.body, as: UTF8.self).contains("duplicate webhook-id"))
        #expect(try await live.sandbox.ledger().callbacks(reminderID: nil).filter { $0.messageID == "GEN-1" }.count == 1, "a replay has no second effect")
        let stale = try await live.post("/webhooks/generic", headers: signed("msg_2", body, at: Date().addingTimeInterval(-600)), json: Data(body.utf8))
        #expect(stale.status == 403)
        var bad = signed("msg_3", body)
        bad["webhook-signature"] = "v1,AAAA"
        #expect(try await live.post("/webhooks/generic", headers: bad, json: Data(body.utf8)).status == 403)
        let malformed = #"{"status":"delivered"}"#
        #expect(try await live.post("/webhooks/generic", headers: signed("msg_4", malformed), json: Data(malformed.utf8)).status == 400)
        live.daemon.signal(SIGTERM)
        _ = try await live.daemon.wait()
    }

    @Test func stopReplySuppressesTheNumber() async throws {
        let live = try await start()
        let inbound = [("From", "+33612345678"), ("To", "+33700000000"), ("Body", "Arrêt"), ("MessageSid", "SMin1"), ("SmsStatus", "received")]
        let signature = WebhookSignatures.twilio(token: GatewaySimulator.twilioToken, url: live.base + "/webhooks/twilio", parameters: inbound)
        let response = try await live.post("/webhooks/twilio", headers: ["X-Twilio-Signature": signature], form: inbound)
        #expect(response.status == 200)
        #expect(try await live.sandbox.ledger().isSuppressed("+33612345678"))
        // The opted-out debtor's reminder allows email as a fallback: it goes by email instead.
        var stopped = smsReminder("STOP1", phone: "06 12 34 56 78")
        stopped["fallback"] = ["email"]
        try live.sandbox.dropLines("a.jsonl", [stopped, smsReminder("OTHER", phone: "+33698765432")])
        try await eventually("both deliveries decided") {
            let all = try await statuses(try live.sandbox.ledger())
            return all["STOP1/sms"] == "suppressed" && all["STOP1/email"] == "sent" && ["sent", "delivered"].contains(all["OTHER/sms"] ?? "")
        }
        let events = try await live.sandbox.ledger().events(reminderID: "STOP1").map(\.reason)
        #expect(events.contains { $0.hasPrefix("fallback from sms: +33612345678 opted out") }, "\(events)")
        #expect(live.sim.requests.allSatisfy { ($0["form"] as? [String: String])?["To"] != "+33612345678" }, "never sent to the opted-out number")
        live.daemon.signal(SIGTERM)
        _ = try await live.daemon.wait()
    }

    @Test func healthTurns503WhenTheLedgerIsReadOnlyAndBack() async throws {
        let live = try await start()
        let up = await live.client.execute(HTTPClient.Request(method: "GET", url: live.base + "/healthz"))
        #expect((try? up.get().status) == 200, "\(up) \(live.daemon.stderr.suffix(2000))")
        // The database and its WAL become immutable (the -shm stays: SQLite maps it in memory).
        let files = ["ledger.sqlite", "ledger.sqlite-wal"].map { live.sandbox.root + "/" + $0 }.filter { FileManager.default.fileExists(atPath: $0) }
        func chattr(_ flag: String) async throws -> Int32 { try await Child("/usr/bin/env", ["chattr", flag] + files, directory: live.sandbox.root).wait() }
        guard try await chattr("+i") == 0 else {
            Issue.record("chattr +i is not available here; cannot make the ledger read-only")
            return
        }
        defer { _ = Task { try? await chattr("-i") } }
        let down = try await live.get("/healthz")
        #expect(down.status == 503, "\(live.daemon.stderr.suffix(2000))")
        #expect(String(decoding: down.body, as: UTF8.self).contains("not writable"))
        #expect(try await chattr("-i") == 0)
        try await eventually("healthz back to 200") { (try? await live.get("/healthz").status) == 200 }
        #expect(live.daemon.process.isRunning, "\(live.daemon.stderr.suffix(3000))")
        #expect(try await live.post("/webhooks/twilio", form: [("MessageSid", "SM1"), ("MessageStatus", "delivered")]).status == 403)
        let metrics = String(decoding: try await live.get("/metrics").body, as: UTF8.self)
        #expect(metrics.contains(#"relance_webhook_requests_total{endpoint="twilio",status="403"} 1"#), "\(metrics)")
        #expect(metrics.contains("relance_spool_waiting_files 0"))
        live.daemon.signal(SIGTERM)
        _ = try await live.daemon.wait()
    }
}
