import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus
import RelanceBounces
import RelanceConfig
import RelanceCore
import RelanceStore
import Testing

@testable import RelanceHTTP
@testable import RelanceSpool

/// The HTTP side through Hummingbird's router test framework: every provider's verify-then-parse,
/// the refusals as HTTP errors, the cancellation API and health, on a real ledger file.
@Suite struct WebhookRoutesTests {
    static let base = "https://relance.example.fr"
    static let twilioToken = "twilio-token"
    static let vonageSecret = "vonage-signature-secret"
    static let whsecKey = Data("standard-webhooks-key-0123456789".utf8)
    static let apiToken = "api-token-0123456789abcdefghij"
    static let brevoToken = "brevo-token-0123456789"
    static let verpSecret = "verp-secret-for-the-http-tests-0"

    /// A signature computed by an independent implementation (Python's `hmac`, parameters sorted
    /// with `sorted()`: by code point, so `body` after the capitalised names).
    @Test func theTwilioSignatureMatchesAnIndependentImplementation() {
        let parameters = [
            ("To", "+18005551212"), ("body", "é"), ("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
            ("From", "+12349013030"),
        ]
        #expect(
            WebhookSignatures.twilio(token: "12345", url: "https://example.com/myapp.php?foo=1&bar=2", parameters: parameters)
                == "5SS6y+kv/rDtXa0rMXKi1p3RuNo=")
    }

    struct Fixture {
        let ledger: Ledger
        let routes: WebhookRoutes
        var app: some ApplicationProtocol { Application(router: routes.router()) }
    }

    func fixture(acceptUnsignedVonage: Bool = false, vonageSecret: String = vonageSecret) throws -> Fixture {
        let dir = NSTemporaryDirectory() + "relance-http-" + UUID().uuidString
        let ledger = try Ledger(path: dir + "/ledger.sqlite")
        let settings = WebhookSettings(
            providers: [
                "twilio": TwilioWebhook(authToken: Self.twilioToken, publicBaseURL: Self.base),
                "vonage": VonageWebhook(signatureSecret: vonageSecret, method: .md5hash, acceptUnsigned: acceptUnsignedVonage),
                "generic": StandardWebhook(secret: "whsec_" + Self.whsecKey.base64EncodedString()),
                "brevo": BrevoWebhook(token: Self.brevoToken, verp: VERP(domain: "relances.example.fr", secret: Self.verpSecret)),
            ], apiToken: Self.apiToken, orphanTTL: .seconds(3600), bounceRules: BounceRules(softLimit: 2))
        let health = ServiceHealth()
        let routes = WebhookRoutes(
            ledger: ledger, settings: { settings }, health: health, registry: PrometheusCollectorRegistry(), spool: SpoolLayout(root: dir + "/spool"),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, clock: { Date() })
        return Fixture(ledger: ledger, routes: routes)
    }

    static func form(_ pairs: [(String, String)]) -> ByteBuffer { ByteBuffer(data: FormEncoding.body(pairs)) }
    static let formType: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
    static let jsonType: HTTPFields = [.contentType: "application/json"]

    static func twilioSignature(_ path: String, _ pairs: [(String, String)], token: String = twilioToken) -> String {
        WebhookSignatures.twilio(token: token, url: base + path, parameters: pairs)
    }

    func text(_ response: TestResponse) -> String { String(buffer: response.body) }

    @Test func anUnconfiguredGatewayAnswers404() async throws {
        let f = try fixture()
        try await f.app.test(.router) { client in
            let response = try await client.execute(uri: "/webhooks/plivo?token=x", method: .post, headers: Self.jsonType, body: ByteBuffer(string: "{}"))
            #expect(response.status == .notFound)
        }
    }

    @Test func twilioIsVerifiedThenParsed() async throws {
        let f = try fixture()
        let status = [("MessageSid", "SM1"), ("MessageStatus", "delivered")]
        try await f.app.test(.router) { client in
            var headers = Self.formType
            #expect(try await client.execute(uri: "/webhooks/twilio", method: .post, headers: headers, body: Self.form(status)).status == .forbidden)
            headers[HTTPField.Name("X-Twilio-Signature")!] = Self.twilioSignature("/webhooks/twilio", status, token: "old-token")
            #expect(try await client.execute(uri: "/webhooks/twilio", method: .post, headers: headers, body: Self.form(status)).status == .forbidden)
            headers[HTTPField.Name("X-Twilio-Signature")!] = Self.twilioSignature("/webhooks/twilio", status)
            let ok = try await client.execute(uri: "/webhooks/twilio", method: .post, headers: headers, body: Self.form(status))
            #expect(ok.status == .ok)
            #expect(self.text(ok) == "orphan\n", "no such send yet: kept")
            var json = Self.jsonType
            json[HTTPField.Name("X-Twilio-Signature")!] = Self.twilioSignature("/webhooks/twilio", status)
            #expect(
                try await client.execute(uri: "/webhooks/twilio", method: .post, headers: json, body: ByteBuffer(string: "{}")).status == .unsupportedMediaType)

            let stop = [("From", "+33612345678"), ("Body", "Stop"), ("SmsStatus", "received")]
            headers[HTTPField.Name("X-Twilio-Signature")!] = Self.twilioSignature("/webhooks/twilio", stop)
            let suppressed = try await client.execute(uri: "/webhooks/twilio", method: .post, headers: headers, body: Self.form(stop))
            #expect(self.text(suppressed) == "suppressed\n")
            let bogus = [("From", "not a number"), ("Body", "STOP"), ("SmsStatus", "received")]
            headers[HTTPField.Name("X-Twilio-Signature")!] = Self.twilioSignature("/webhooks/twilio", bogus)
            #expect(try await client.execute(uri: "/webhooks/twilio", method: .post, headers: headers, body: Self.form(bogus)).status == .badRequest)
        }
        #expect(try await f.ledger.isSuppressed("+33612345678"))
    }

    @Test func vonageNeedsItsSignatureUnlessToldOtherwise() async throws {
        let f = try fixture()
        var signed = ["messageId": "V1", "status": "delivered", "timestamp": "\(Int(Date().timeIntervalSince1970))"]
        signed["sig"] = WebhookSignatures.vonage(secret: Self.vonageSecret, method: .md5hash, parameters: signed)
        let params = signed
        try await f.app.test(.router) { client in
            let body = try JSONSerialization.data(withJSONObject: params)
            #expect(try await client.execute(uri: "/webhooks/vonage", method: .post, headers: Self.jsonType, body: ByteBuffer(data: body)).status == .ok)
            var forged = params
            forged["status"] = "failed"
            let forgedBody = try JSONSerialization.data(withJSONObject: forged)
            #expect(
                try await client.execute(uri: "/webhooks/vonage", method: .post, headers: Self.jsonType, body: ByteBuffer(data: forgedBody)).status
                    == .forbidden)
            var stale = ["messageId": "V1", "status": "delivered", "timestamp": "1000000000"]
            stale["sig"] = WebhookSignatures.vonage(secret: Self.vonageSecret, method: .md5hash, parameters: stale)
            let staleBody = try JSONSerialization.data(withJSONObject: stale)
            #expect(
                try await client.execute(uri: "/webhooks/vonage", method: .post, headers: Self.jsonType, body: ByteBuffer(data: staleBody)).status == .forbidden
            )
        }
        let unsigned = try fixture(acceptUnsignedVonage: true, vonageSecret: "")
        try await unsigned.app.test(.router) { client in
            let body = try JSONSerialization.data(withJSONObject: ["messageId": "V2", "status": "delivered"])
            #expect(try await client.execute(uri: "/webhooks/vonage", method: .post, headers: Self.jsonType, body: ByteBuffer(data: body)).status == .ok)
        }
        let refusing = try fixture(acceptUnsignedVonage: false, vonageSecret: "")
        try await refusing.app.test(.router) { client in
            let body = try JSONSerialization.data(withJSONObject: ["messageId": "V3", "status": "delivered"])
            #expect(try await client.execute(uri: "/webhooks/vonage", method: .post, headers: Self.jsonType, body: ByteBuffer(data: body)).status == .forbidden)
        }
    }

    func standardWebhooks(_ id: String, _ body: String, at time: Date = Date()) -> HTTPFields {
        let ts = "\(Int(time.timeIntervalSince1970))"
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(id).\(ts).\(body)".utf8), using: SymmetricKey(data: Self.whsecKey))
        var headers = Self.jsonType
        headers[HTTPField.Name("webhook-id")!] = id
        headers[HTTPField.Name("webhook-timestamp")!] = ts
        headers[HTTPField.Name("webhook-signature")!] = "v1," + Data(mac).base64EncodedString()
        return headers
    }

    @Test func standardWebhooksReplaysStaleAndMalformed() async throws {
        let f = try fixture()
        let body = #"{"message_id":"G1","status":"delivered"}"#
        try await f.app.test(.router) { client in
            let first = try await client.execute(
                uri: "/webhooks/generic", method: .post, headers: self.standardWebhooks("w1", body), body: ByteBuffer(string: body))
            #expect(self.text(first) == "orphan\n")
            let replay = try await client.execute(
                uri: "/webhooks/generic", method: .post, headers: self.standardWebhooks("w1", body), body: ByteBuffer(string: body))
            #expect(self.text(replay) == "duplicate webhook-id ignored\n")
            let stale = self.standardWebhooks("w2", body, at: Date().addingTimeInterval(-600))
            #expect(try await client.execute(uri: "/webhooks/generic", method: .post, headers: stale, body: ByteBuffer(string: body)).status == .forbidden)
            let unknown = #"{"message_id":"G1","status":"exploded"}"#
            let odd = try await client.execute(
                uri: "/webhooks/generic", method: .post, headers: self.standardWebhooks("w3", unknown), body: ByteBuffer(string: unknown))
            #expect(odd.status == .badRequest)
            let twice = #"{"message_id":"G1","status":"failed","status":"delivered"}"#
            let ambiguous = try await client.execute(
                uri: "/webhooks/generic", method: .post, headers: self.standardWebhooks("w4", twice), body: ByteBuffer(string: twice))
            #expect(ambiguous.status == .badRequest)
            #expect(self.text(ambiguous).contains("appears twice"))
            let big = ByteBuffer(repeating: UInt8(ascii: "x"), count: 70_000)
            #expect(try await client.execute(uri: "/webhooks/generic", method: .post, headers: Self.jsonType, body: big).status == .contentTooLarge)
        }
    }

    @Test func theCancellationAPI() async throws {
        let f = try fixture()
        let record = #"{"cancel": {"invoice": "F1", "reason": "paid"}}"#
        try await f.app.test(.router) { client in
            #expect(
                try await client.execute(uri: "/api/cancellations", method: .post, headers: Self.jsonType, body: ByteBuffer(string: record)).status
                    == .unauthorized)
            var headers = Self.jsonType
            headers[.authorization] = "Bearer " + Self.apiToken
            let bad = try await client.execute(uri: "/api/cancellations", method: .post, headers: headers, body: ByteBuffer(string: #"{"cancel": {}}"#))
            #expect(bad.status == .unprocessableContent)
            let ok = try await client.execute(uri: "/api/cancellations", method: .post, headers: headers, body: ByteBuffer(string: record))
            #expect(ok.status == .ok)
            #expect(self.text(ok) == #"{"matched":0,"cancelled":0,"paused":0,"settled":0}"# + "\n")
        }
    }

    @Test func healthSaysWhatIsNotRunning() async throws {
        let f = try fixture()
        f.routes.health.register(["dispatcher"])
        try await f.app.test(.router) { client in
            let down = try await client.execute(uri: "/healthz", method: .get)
            #expect(down.status == .serviceUnavailable)
            #expect(self.text(down).contains("not running: dispatcher"))
            f.routes.health.set("dispatcher", running: true)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    /// Brevo's transactional-email webhook: bounces named by the Message-ID Relance set (or a
    /// verified token) go through the bounce rules; an unsubscription suppresses; the rest and
    /// strangers' messages change nothing; a wrong token is refused.
    @Test func brevoEmailEventsGoThroughTheBounceRules() async throws {
        let f = try fixture()
        let reminders = ["E1", "E2", "E3"].map { id in
            Reminder(
                id: id, stage: "reminder_1", channels: [.email], fallback: [.sms],
                debtor: Debtor(
                    id: "C-1", name: "Jean", email: "jean@example.org", phone: "+33612345678", country: "FR", locale: "fr-FR", timezone: "Europe/Paris",
                    kind: .consumer),
                invoices: [
                    Invoice(
                        number: "F-" + id, amount: "10.00", currency: "EUR", issuedOn: CivilDate(year: 2026, month: 10, day: 1),
                        dueOn: CivilDate(year: 2026, month: 10, day: 31))
                ])
        }
        _ = try await f.ledger.ingest(reminders, sourceFile: "f", queue: "default", priority: 0, now: Date())
        for r in reminders {
            let key = DeliveryKey(reminderID: r.id, channel: .email)
            let n = try #require(try await f.ledger.markSending(key, transport: "smtp", recipient: "jean@example.org", now: Date()))
            try await f.ledger.recordOutcome(key, attempt: n, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: Date())
        }
        @Sendable func event(_ name: String, _ id: String, extra: String = "") -> ByteBuffer {
            ByteBuffer(
                string: #"{"event":"\#(name)","email":"jean@example.org","id":1,"message-id":"<\#(MIME.messageID(reminderID: id, channel: "email", domain: "example.fr"))>","ts_event":1798000000,"reason":"mailbox full"\#(extra)}"#
            )
        }
        let uri = "/webhooks/brevo?token=\(Self.brevoToken)"
        try await f.app.test(.router) { client in
            #expect(try await client.execute(uri: "/webhooks/brevo?token=x", method: .post, headers: Self.jsonType, body: event("hard_bounce", "E1")).status == .forbidden)
            let delivered = try await client.execute(uri: uri, method: .post, headers: Self.jsonType, body: event("delivered", "E1"))
            #expect(delivered.status == .ok && self.text(delivered).contains("nothing to apply"))
            let soft = try await client.execute(uri: uri, method: .post, headers: Self.jsonType, body: event("soft_bounce", "E1"))
            #expect(self.text(soft) == "soft\n")
            #expect(self.text(try await client.execute(uri: uri, method: .post, headers: Self.jsonType, body: event("soft_bounce", "E1"))) == "duplicate\n")
            // A second message soft-bounces: the limit (2 here) makes it hard.
            #expect(self.text(try await client.execute(uri: uri, method: .post, headers: Self.jsonType, body: event("soft_bounce", "E2"))) == "bounced\n")
            #expect(try await f.ledger.isSuppressed("jean@example.org"))
            let stranger = try await client.execute(
                uri: uri, method: .post, headers: Self.jsonType,
                body: ByteBuffer(string: #"{"event":"hard_bounce","email":"x@example.org","message-id":"<abc@elsewhere>","ts_event":1}"#))
            #expect(stranger.status == .ok && self.text(stranger).contains("did not send"))
            // Named by a verified token in X-Mailin-custom (a forged one is not enough: the Message-ID decides then).
            let token = VERP(domain: "relances.example.fr", secret: Self.verpSecret).token(reminderID: "E3")
            let byToken = try await client.execute(
                uri: uri, method: .post, headers: Self.jsonType,
                body: ByteBuffer(string: #"{"event":"hard_bounce","email":"jean@example.org","message-id":"<x@y>","X-Mailin-custom":"\#(token)","ts_event":2}"#))
            #expect(self.text(byToken) == "bounced\n")
            let unsubscribed = try await client.execute(
                uri: uri, method: .post, headers: Self.jsonType, body: ByteBuffer(string: #"{"event":"unsubscribed","email":"Marie@Example.org","ts_event":3}"#))
            #expect(self.text(unsubscribed) == "suppressed\n")
            #expect(try await f.ledger.isSuppressed("marie@example.org"))
        }
        let statuses = Dictionary(uniqueKeysWithValues: try await f.ledger.deliveries().map { ("\($0.reminderID)/\($0.channel)", $0.status) })
        #expect(statuses == ["E1/email": "sent", "E2/email": "bounced", "E2/sms": "pending", "E3/email": "bounced", "E3/sms": "pending"])
    }
}
