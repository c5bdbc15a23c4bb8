import Foundation
import Logging
import RelanceCore
import RelanceStore
import RelanceTransport
import Testing

@testable import RelanceConfig
@testable import RelanceDaemon
@testable import RelanceDispatch
@testable import RelanceHTTP
@testable import RelanceSpool

/// `relance serve` against the gateway simulator: the exact requests, the receipts, the callbacks.
@Suite struct SMSIntegrationTests {
    static func smsReminder(_ id: String, phone: String, stage: String = "reminder_1") -> [String: Any] {
        var r = Records.reminder(id, stage: stage, channels: ["sms"])
        r["debtor"] = Records.debtor("C-" + id).merging(["phone": phone]) { _, new in new }
        return r
    }

    func smsSection(_ provider: String, _ sim: GatewaySimulator, extra: String = "") -> String {
        """
        sms:
          provider: \(provider)
          sender: EXEMPLE
          base_url: "\(sim.baseURL)"
          twilio: { account_sid: \(GatewaySimulator.twilioSID), auth_token: \(GatewaySimulator.twilioToken) }
          vonage: { api_key: vonage-key, api_secret: vonage-secret, signature_secret: vsig }
          brevo: { api_key: brevo-key }
        \(extra)
        """
    }

    /// Runs one pass with `provider` over: a mobile, an invalid number, the simulator's landline
    /// pattern, and a real French landline (refused before any request).
    func runProvider(_ provider: String) async throws -> (Sandbox, GatewaySimulator, CallbackSink, [Receipt]) {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox)
        let sink = try await CallbackSink(sandbox: sandbox)
        try sandbox.writeConfig(sms: smsSection(provider, sim), webhooks: "public_base_url: \"\(sink.baseURL)/\", brevo_token: tok3n")
        // With an email fallback, a landline passes intake and fails on its SMS channel without a request.
        var landline = Self.smsReminder("LANDLINE", phone: "01 45 67 89 10")
        landline["fallback"] = ["email"]
        try sandbox.dropLines(
            "sms.jsonl",
            [
                Self.smsReminder("OK", phone: "06 12 34 56 78"), Self.smsReminder("INVALID", phone: "+33612340000"),
                Self.smsReminder("SIMLANDLINE", phone: "+33612340001"), landline,
            ])
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        return (sandbox, sim, sink, try await receipts(try sandbox.ledger()))
    }

    static let expectedText = "Exemple SAS : sauf erreur, la facture INV-OK (1 234,50 €) reste à régler."

    @Test func twilio() async throws {
        let (_, sim, sink, all) = try await runProvider("twilio")
        let requests = sim.requests
        #expect(requests.count == 3, "the landline never reaches the gateway")
        let ok = try #require(requests.first { ($0["form"] as? [String: String])?["To"] == "+33612345678" })
        #expect(ok["method"] as? String == "POST")
        #expect(ok["path"] as? String == "/2010-04-01/Accounts/\(GatewaySimulator.twilioSID)/Messages.json")
        #expect(ok["auth"] as? String == "ok")
        #expect(ok["content_type"] as? String == "application/x-www-form-urlencoded")
        #expect(
            ok["form"] as? [String: String] == [
                "To": "+33612345678", "From": "EXEMPLE", "Body": Self.expectedText, "StatusCallback": "\(sink.baseURL)/webhooks/twilio",
            ])
        let sent = try #require(all.first { $0.reminderID == "OK" })
        #expect(sent.outcome == "sent")
        #expect(sent.status == "sent")
        #expect(sent.providerID == ok["id"] as? String)
        #expect(sent.providerID?.hasPrefix("SM") == true)
        let invalid = try #require(all.first { $0.reminderID == "INVALID" })
        #expect(invalid.outcome == "permanent")
        #expect(invalid.code == 400)
        #expect(invalid.detail == "twilio HTTP 400: code 21211: The 'To' number +33612340000 is not a valid phone number.")
        #expect(all.first { $0.reminderID == "SIMLANDLINE" }?.detail == "twilio HTTP 400: code 21614: 'To' number is not a valid mobile number")
        let landline = try #require(all.first { $0.reminderID == "LANDLINE" && $0.channel == "sms" })
        #expect(landline.outcome == "not_sent")
        #expect(landline.status == "failed")
        #expect(landline.detail?.contains("+33145678910 is a French landline") == true)

        // Status callbacks, signed the way Twilio signs them (checked with Python's hmac).
        try await eventually("two status callbacks") { sink.callbacks.count >= 2 }
        let callbacks = sink.callbacks
        #expect(callbacks.allSatisfy { $0["path"] as? String == "/webhooks/twilio" && $0["twilio_signature_valid"] as? Bool == true })
        #expect(callbacks.compactMap { ($0["form"] as? [String: String])?["MessageStatus"] } == ["sent", "delivered"])
        #expect(callbacks.allSatisfy { ($0["form"] as? [String: String])?["MessageSid"] == sent.providerID })
    }

    @Test func vonage() async throws {
        let (_, sim, sink, all) = try await runProvider("vonage")
        let requests = sim.requests
        #expect(requests.count == 3)
        let ok = try #require(requests.first { ($0["form"] as? [String: String])?["to"] == "33612345678" })
        #expect(ok["path"] as? String == "/sms/json")
        #expect(ok["auth"] as? String == "ok")
        #expect(
            ok["form"] as? [String: String] == [
                "api_key": "vonage-key", "from": "EXEMPLE", "to": "33612345678", "text": Self.expectedText, "type": "text",
                "callback": "\(sink.baseURL)/webhooks/vonage", "client-ref": "OK/sms",
            ], "api_secret is sent (the simulator checks it) but not recorded")
        let sent = try #require(all.first { $0.reminderID == "OK" })
        #expect(sent.providerID == ok["id"] as? String)
        #expect(sent.code == 200)
        #expect(all.first { $0.reminderID == "INVALID" }?.detail == "vonage status 3: Invalid to parameter")
        #expect(all.first { $0.reminderID == "SIMLANDLINE" }?.code == 6)
        try await eventually("a delivery receipt") { !sink.callbacks.isEmpty }
        let dlr = try #require(sink.callbacks.first?["json"] as? [String: Any])
        #expect(dlr["messageId"] as? String == sent.providerID)
        #expect(dlr["status"] as? String == "delivered")
        #expect(dlr["client-ref"] as? String == "OK/sms")
    }

    @Test func brevo() async throws {
        let (_, sim, sink, all) = try await runProvider("brevo")
        let ok = try #require(sim.requests.first { ($0["json"] as? [String: Any])?["recipient"] as? String == "33612345678" })
        #expect(ok["path"] as? String == "/v3/transactionalSMS/send")
        #expect(ok["auth"] as? String == "ok")
        #expect(ok["content_type"] as? String == "application/json")
        let json = try #require(ok["json"] as? [String: Any])
        #expect(json["sender"] as? String == "EXEMPLE")
        #expect(json["content"] as? String == Self.expectedText)
        #expect(json["type"] as? String == "transactional")
        #expect(json["unicodeEnabled"] as? Bool == false)
        #expect(json["webUrl"] as? String == "\(sink.baseURL)/webhooks/brevo?token=tok3n")
        let sent = try #require(all.first { $0.reminderID == "OK" })
        #expect(sent.providerID == ok["id"] as? String)
        #expect(all.first { $0.reminderID == "INVALID" }?.detail == "brevo HTTP 400: code invalid_parameter: Invalid phone number")
        try await eventually("two events") { sink.callbacks.count >= 2 }
        #expect(sink.callbacks.compactMap { ($0["json"] as? [String: Any])?["event"] as? String } == ["sent", "delivered"])
        #expect(sink.callbacks.allSatisfy { $0["path"] as? String == "/webhooks/brevo?token=tok3n" })
    }

    @Test func unicodeAndTransliteration() async throws {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox)
        let creditor = "creditor: { name: \"Château Exemple\", phone: \"01 23 45 67 89\" }"
        try sandbox.writeConfig(extra: creditor, sms: smsSection("vonage", sim))
        try sandbox.dropLines("a.jsonl", [Self.smsReminder("U1", phone: "+33612345678")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let unicode = try #require(sim.requests.first?["form"] as? [String: String])
        #expect(unicode["type"] == "unicode", "â is not GSM-7: the whole message is UCS-2")
        #expect(unicode["text"]?.hasPrefix("Château Exemple : sauf erreur") == true)

        try sandbox.writeConfig(extra: creditor, sms: smsSection("vonage", sim, extra: "  encoding: gsm7"))
        try sandbox.dropLines("b.jsonl", [Self.smsReminder("U2", phone: "+33612345678")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let gsm = try #require(sim.requests.last?["form"] as? [String: String])
        #expect(gsm["type"] == "text")
        #expect(gsm["text"] == "Chateau Exemple : sauf erreur, la facture INV-U2 (1 234,50 €) reste à régler.")
    }

    @Test func overMaxSegmentsIsARenderErrorNeverTruncated() async throws {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox)
        try sandbox.writeConfig(extra: "creditor: { name: \"Hôtel Exemple\" }", sms: smsSection("twilio", sim, extra: "  max_segments: 1"))
        try sandbox.dropLines("a.jsonl", [Self.smsReminder("LONG", phone: "+33612345678", stage: "final_notice")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(sim.requests.isEmpty)
        let receipt = try #require(try await receipts(try sandbox.ledger()).first)
        #expect(receipt.status == "failed")
        #expect(receipt.detail?.contains("over sms.max_segments (1)") == true, "\(receipt.detail ?? "")")
        #expect(receipt.detail?.contains("UCS-2") == true)
    }

    @Test func genericProviderEscapesJSON() async throws {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox)
        let generic = """
            sms:
              provider: generic
              sender: EXEMPLE
              generic:
                url: "\(sim.baseURL)/v3/transactionalSMS/send"
                headers: { api-key: brevo-key }
                body: '{"sender":"{{from}}","recipient":"{{to_digits}}","content":"{{text}}","tag":"{{reference}}"}'
                escaping: json
                message_id_pointer: /messageId
            """
        try sandbox.writeConfig(extra: "creditor: { name: \"Dupont \\\"& Fils\\\"\" }", sms: generic)
        try sandbox.dropLines("a.jsonl", [Self.smsReminder("G1", phone: "+33612345678")])
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        let request = try #require(sim.requests.first)
        #expect(request["auth"] as? String == "ok")
        let json = try #require(request["json"] as? [String: Any], "the body is valid JSON: quotes were escaped")
        #expect(json["content"] as? String == "Dupont \"& Fils\" : sauf erreur, la facture INV-G1 (1 234,50 €) reste à régler.")
        #expect(json["recipient"] as? String == "33612345678")
        let receipt = try #require(try await receipts(try sandbox.ledger()).first)
        #expect(receipt.providerID == request["id"] as? String)
        #expect(receipt.transport == "generic")
    }

    @Test func callbacksCanComeTwiceAndOutOfOrder() async throws {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox, arguments: ["--duplicate-callbacks", "--shuffle-callbacks"])
        let sink = try await CallbackSink(sandbox: sandbox)
        try sandbox.writeConfig(sms: smsSection("twilio", sim), webhooks: "public_base_url: \"\(sink.baseURL)\"")
        try sandbox.dropLines("a.jsonl", [Self.smsReminder("D1", phone: "+33612345678")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        try await eventually("four callbacks") { sink.callbacks.count >= 4 }
        #expect(sink.callbacks.compactMap { ($0["form"] as? [String: String])?["MessageStatus"] } == ["delivered", "delivered", "sent", "sent"])
        #expect(sink.callbacks.allSatisfy { $0["twilio_signature_valid"] as? Bool == true })
    }

    /// The gateway read the whole request and then did not answer in time: it may have accepted
    /// the SMS, so it is in doubt, never resent by itself (it used to be retried: a duplicate).
    @Test func aGatewayThatTimesOutAfterTheWholeRequestLeavesTheDeliveryInDoubt() async throws {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox, arguments: ["--slow-ms", "3000"])
        try sandbox.writeConfig(sms: smsSection("brevo", sim, extra: "  timeout: 500ms"))
        try sandbox.dropLines("a.jsonl", [Self.smsReminder("SLOW", phone: "+33612340999")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let receipt = try #require(try await receipts(try sandbox.ledger()).first)
        #expect(receipt.outcome == "unknown")
        #expect(receipt.status == "unknown")
        #expect(receipt.detail?.contains("no answer after the whole request was sent") == true, "\(receipt.detail ?? "")")
        #expect(receipt.detail?.contains("curl 28") == true, "\(receipt.detail ?? "")")
        // A second pass leaves it alone: only an operator settles it.
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try await receipts(try sandbox.ledger()).count == 1)
    }

    /// `relance resolve --check` shows the operator what the gateway says it sent to the number of an
    /// in-doubt SMS (reconciliation never settles it), for each provider; then --as sent settles it.
    @Test(arguments: ["twilio", "vonage", "brevo"]) func resolveCheckShowsTheGatewaysAnswerForAnInDoubtSMS(_ provider: String) async throws {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox, arguments: ["--slow-ms", "1500"])
        try sandbox.writeConfig(sms: smsSection(provider, sim, extra: "  timeout: 500ms"))
        try sandbox.dropLines("a.jsonl", [Self.smsReminder("SLOW", phone: "+33612340999")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try await statuses(try sandbox.ledger())["SLOW/sms"] == "unknown")
        // The gateway did take it, after our timeout.
        try await eventually("the gateway to take the slow message") { sim.requests.contains { $0["outcome"] as? String == "accepted" } }
        let check = try await sandbox.relance(["resolve", "--reminder", "SLOW", "--channel", "sms", "--check"])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("SLOW/sms: unknown; attempt 1 via \(provider) to +33612340999"), "\(check.stdout)")
        #expect(check.stdout.contains("it did go out: --as sent records it"), "\(check.stdout)")
        #expect(try await statuses(try sandbox.ledger())["SLOW/sms"] == "unknown", "a check changes nothing")
        #expect(try await sandbox.relance(["resolve", "--reminder", "SLOW", "--channel", "sms"]).status == 2, "--check or --as")
        #expect(try await sandbox.relance(["resolve", "--reminder", "SLOW", "--channel", "sms", "--as", "sent"]).status == 0)
        #expect(try await statuses(try sandbox.ledger())["SLOW/sms"] == "sent")
    }

    /// `in_doubt: resend` after a crash mid-send: the gateway is asked first. The message whose
    /// request reached it is recorded as sent, not sent again; the one it never got is resent.
    @Test func inDoubtResendAsksTheGatewayFirst() async throws {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox)
        try sandbox.writeConfig(sms: smsSection("twilio", sim), delivery: "in_doubt: resend")
        // Both taken in while SMS are on hold, then the hold lifted: pending, nothing sent yet.
        #expect(try await sandbox.relance(["pause", "--all", "--channel", "sms"]).status == 0)
        try sandbox.dropLines("a.jsonl", [Self.smsReminder("WENT", phone: "+33612345601"), Self.smsReminder("NEVER", phone: "+33612345602")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        #expect(try await sandbox.relance(["resume", "--all"]).status == 0)
        // The crash: both claimed; only WENT's request reached the gateway.
        do {
            let ledger = try Ledger(path: sandbox.ledgerPath)
            for (id, phone) in [("WENT", "+33612345601"), ("NEVER", "+33612345602")] {
                #expect(try await ledger.markSending(DeliveryKey(reminderID: id, channel: .sms), transport: "twilio", recipient: phone, now: Date()) == 1)
            }
        }
        let client = try HTTPClient(configuration: .init(connections: 1))
        let form = "To=%2B33612345601&From=EXEMPLE&Body=Exemple"
        let posted = try await client.execute(
            HTTPClient.Request(
                method: "POST", url: sim.baseURL + "/2010-04-01/Accounts/\(GatewaySimulator.twilioSID)/Messages.json",
                headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Data(form.utf8),
                basicAuth: .init(user: GatewaySimulator.twilioSID, password: GatewaySimulator.twilioToken))
        ).get()
        #expect(posted.status == 201)
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        let ledger = try sandbox.ledger()
        #expect(try await statuses(ledger) == ["WENT/sms": "sent", "NEVER/sms": "sent"])
        let accepted = sim.requests.filter { $0["outcome"] as? String == "accepted" }.compactMap { ($0["form"] as? [String: String])?["To"] }
        #expect(accepted.sorted() == ["+33612345601", "+33612345602"], "WENT once (before the crash), NEVER once (resent): \(accepted)")
        let went = try await ledger.events(reminderID: "WENT").map(\.reason)
        #expect(went.contains { $0.hasPrefix("in doubt, not resent: twilio says it sent SM") && $0.hasSuffix("to the number since the attempt") }, "\(went)")
        let never = try await ledger.events(reminderID: "NEVER").map(\.reason)
        #expect(never.contains("in doubt, resent: twilio sent nothing to the number since the attempt (delivery.in_doubt: resend)"), "\(never)")
    }

    /// Nothing listens: the request never left, so the failure is transient and retried later.
    @Test func anUnreachableGatewayIsTransient() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig(
            sms: """
                sms:
                  provider: brevo
                  sender: EXEMPLE
                  base_url: "http://127.0.0.1:9"
                  brevo: { api_key: brevo-key }
                """)
        try sandbox.dropLines("a.jsonl", [Self.smsReminder("DOWN", phone: "+33612340999")])
        #expect(try await sandbox.relance(["serve", "--once"]).status == 0)
        let receipt = try #require(try await receipts(try sandbox.ledger()).first)
        #expect(receipt.outcome == "transient")
        #expect(receipt.status == "pending")
    }

    /// 429 with Retry-After, 500 and 400, with an injected clock: no sleeping.
    @Test func retryAfterIsHonouredWithAnInjectedClock() async throws {
        let sandbox = try Sandbox()
        let sim = try await GatewaySimulator(sandbox: sandbox)
        var configuration = RelanceConfiguration()
        configuration.policy = .unrestricted
        configuration.templates.path = Package.templates
        configuration.sms.provider = .twilio
        configuration.sms.baseURL = sim.baseURL
        configuration.sms.twilio.accountSID = GatewaySimulator.twilioSID
        configuration.sms.twilio.authToken = GatewaySimulator.twilioToken
        configuration.sms.sender = "EXEMPLE"
        configuration.delivery.retry = try ConfigurationLoader.load(file: nil, yaml: "delivery: { retry: { first: 1s, jitter: 0 } }", environment: [:]).0
            .delivery.retry
        let components = try Components(configuration)
        let ledger = try Ledger(path: sandbox.root + "/ledger.sqlite")
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let clock = ManualClock(t0)
        let validator = components.parser.validator
        let reminders = try ["+33612340429", "+33612340500", "+33612340000"].enumerated().map { i, phone in
            try validator.validate(try JSONSerialization.data(withJSONObject: Self.smsReminder("R\(i)", phone: phone))).get()
        }
        _ = try await ledger.ingest(reminders, sourceFile: "f", queue: "default", priority: 0, now: t0)
        let dispatcher = Dispatcher(
            ledger: ledger, components: components, transports: try Transports.make(configuration), logger: testLogger("test"), clock: { clock.now })
        await dispatcher.run(untilIdle: true, shouldStop: { false })

        var byID = Dictionary(uniqueKeysWithValues: try await ledger.deliveries().map { ($0.reminderID, $0) })
        #expect(byID["R0"]?.status == "pending")
        #expect(byID["R0"]?.dueAt == t0.addingTimeInterval(2), "429 waits Retry-After (2 s), longer than retry.first (1 s)")
        #expect(byID["R1"]?.status == "pending")
        #expect(byID["R1"]?.dueAt == t0.addingTimeInterval(1), "500 waits retry.first")
        #expect(byID["R2"]?.status == "failed", "400 is permanent")

        clock.now = t0.addingTimeInterval(1)
        await dispatcher.run(untilIdle: true, shouldStop: { false })
        byID = Dictionary(uniqueKeysWithValues: try await ledger.deliveries().map { ($0.reminderID, $0) })
        #expect(byID["R0"]?.status == "pending", "not before Retry-After")
        #expect(byID["R1"]?.status == "sent")

        clock.now = t0.addingTimeInterval(2)
        await dispatcher.run(untilIdle: true, shouldStop: { false })
        #expect(try await ledger.deliveries(reminderID: "R0").first?.status == "sent")
        #expect(try await receipts(ledger, reminderID: "R0").map(\.code) == [429, 201])
    }
}

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    // @unchecked: `now` is set by the test between dispatcher runs, never concurrently with them.
    var now: Date
    init(_ now: Date) { self.now = now }
}

@Suite struct GenericProviderTests {
    func provider(_ escaping: RelanceConfiguration.SMS.Generic.Escaping, body: String, pointer: String = "/id") throws -> GenericProvider {
        var configuration = RelanceConfiguration.SMS.Generic()
        configuration.url = "https://gw.example/send?to={{to_digits}}"
        configuration.headers = ["Authorization": "Bearer {{reference}}"]
        configuration.body = body
        configuration.escaping = escaping
        configuration.messageIDPointer = pointer
        return try GenericProvider(
            configuration: .init(
                method: configuration.method, url: configuration.url, headers: configuration.headers, body: configuration.body,
                json: configuration.escaping == .json, messageIDPointer: configuration.messageIDPointer), callbackURL: "https://r.example/webhooks/generic")
    }

    let message = SMSMessage(to: "+33612345678", from: "EXEMPLE", text: "Dupont \"& Fils\"\nligne 2 = 1 234,50 € ?", reference: "R1/sms")

    @Test func formEscaping() throws {
        let request = try provider(.form, body: "to={{to}}&text={{text}}&cb={{callback_url}}").request(for: message)
        #expect(request.url == "https://gw.example/send?to=33612345678")
        #expect(request.headers["Authorization"] == "Bearer R1/sms")
        #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded")
        #expect(
            String(decoding: request.body!, as: UTF8.self)
                == "to=%2B33612345678&text=Dupont+%22%26+Fils%22%0Aligne+2+%3D+1+234%2C50+%E2%82%AC+%3F&cb=https%3A%2F%2Fr.example%2Fwebhooks%2Fgeneric")
    }

    @Test func jsonEscapingMakesValidJSON() throws {
        let request = try provider(.json, body: #"{"text":"{{text}}","unicode":{{unicode}}}"#).request(for: message)
        let json = try JSONSerialization.jsonObject(with: request.body!) as! [String: Any]
        #expect(json["text"] as? String == message.text)
        #expect(json["unicode"] as? Bool == false)
    }

    @Test func messageIDPointer() throws {
        let p = try provider(.json, body: "{}", pointer: "/data/messages/0/id")
        let response = HTTPClient.Response(status: 200, headers: [:], body: Data(#"{"data":{"messages":[{"id":42}]}}"#.utf8))
        #expect(p.accepted(response) == .sent(providerID: "42", code: 200, detail: "generic gateway accepted"))
        guard case .permanent = p.accepted(HTTPClient.Response(status: 200, headers: [:], body: Data("{}".utf8))) else {
            Issue.record("a missing id is not resent")
            return
        }
        #expect(JSONPointer.resolve("/a~1b/c~0d", in: ["a/b": ["c~d": "x"]]) == "x")
    }
}
