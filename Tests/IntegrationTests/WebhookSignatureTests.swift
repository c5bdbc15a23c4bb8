import Foundation
import Testing

@testable import RelanceConfig
@testable import RelanceDaemon
@testable import RelanceDispatch
@testable import RelanceHTTP
@testable import RelanceSpool

@Suite struct WebhookSignatureTests {
    /// Runs Python to compute a value independently of our Swift code.
    func python(_ script: String, _ arguments: [String]) async throws -> String {
        let dir = NSTemporaryDirectory()
        let child = try Child("/usr/bin/env", ["python3", "-c", script] + arguments, directory: dir)
        #expect(try await child.wait() == 0, "\(child.stderr)")
        return child.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func twilioMatchesPythonHMAC() async throws {
        let url = "https://relance.example.fr/webhooks/twilio"
        let params = [("MessageSid", "SM0123"), ("MessageStatus", "delivered"), ("To", "+33612345678"), ("AccountSid", "AC1"), ("Body", "é & = +")]
        let script = """
            import base64, hashlib, hmac, sys, json
            token, url, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
            payload = url + "".join(k + v for k, v in sorted(params))
            print(base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode())
            """
        let json = String(decoding: try JSONSerialization.data(withJSONObject: params.map { [$0.0, $0.1] }), as: UTF8.self)
        let expected = try await python(script, ["s3cr3t", url, json])
        #expect(WebhookSignatures.twilio(token: "s3cr3t", url: url, parameters: params) == expected)
        #expect(WebhookSignatures.twilio(token: "s3cr3t", url: url + "x", parameters: params) != expected, "the URL is signed")
    }

    /// The example of the Standard Webhooks specification.
    @Test func standardWebhooksSpecificationVector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let body = Data(#"{"test": 2432232314}"#.utf8)
        #expect(
            WebhookSignatures.standardWebhooks(secret: secret, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: "1614265330", body: body)
                == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        let now = Date(timeIntervalSince1970: 1_614_265_330)
        func verify(_ header: String?, at time: Date = now, body: Data = body) -> WebhookSignatures.StandardWebhooksResult {
            WebhookSignatures.verifyStandardWebhooks(
                secret: secret, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: "1614265330", signatureHeader: header, body: body, now: time)
        }
        #expect(verify("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") == .valid)
        #expect(verify("v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") == .valid, "any of several signatures")
        #expect(verify("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", body: Data(#"{"test": 2432232315}"#.utf8)) == .badSignature)
        #expect(verify("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", at: now.addingTimeInterval(301)) == .staleTimestamp)
        #expect(verify(nil) == .malformed)
    }

    @Test func vonageMatchesPython() async throws {
        let params = ["messageId": "0A00000012345678", "status": "delivered", "msisdn": "33612345678", "timestamp": "1614265330", "text": "a&b=c"]
        let script = """
            import hashlib, hmac, sys, json
            secret, params = sys.argv[1], json.loads(sys.argv[2])
            canonical = "".join("&%s=%s" % (k, v.replace("&", "_").replace("=", "_")) for k, v in sorted(params.items()))
            print(hashlib.md5((canonical + secret).encode()).hexdigest())
            print(hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest())
            """
        let json = String(decoding: try JSONSerialization.data(withJSONObject: params), as: UTF8.self)
        let lines = try await python(script, ["sigsecret", json]).split(separator: "\n").map(String.init)
        #expect(WebhookSignatures.vonage(secret: "sigsecret", method: .md5hash, parameters: params) == lines[0])
        #expect(WebhookSignatures.vonage(secret: "sigsecret", method: .sha256, parameters: params) == lines[1])
        var signed = params
        signed["sig"] = lines[0]
        #expect(WebhookSignatures.vonage(secret: "sigsecret", method: .md5hash, parameters: signed) == lines[0], "sig itself is not signed")
    }

    @Test(arguments: ["STOP", "stop", " Stop ", "STOP SMS", "Arrêt", "ARRET", "arret.", "UNSUBSCRIBE", "cancel", "End", "QUIT"])
    func optOutKeywords(_ text: String) { #expect(WebhookSignatures.isOptOut(text)) }

    @Test(arguments: ["STOPPED", "Please stop calling", "merci", "", "arrêtez"])
    func notOptOut(_ text: String) { #expect(!WebhookSignatures.isOptOut(text)) }

    @Test func constantTimeEquality() {
        #expect(WebhookSignatures.constantTimeEqual("abc", "abc"))
        #expect(!WebhookSignatures.constantTimeEqual("abc", "abd"))
        #expect(!WebhookSignatures.constantTimeEqual("abc", "abcd"))
        #expect(!WebhookSignatures.constantTimeEqual("", "a"))
    }
}
