import Foundation
import RelanceCore
import Testing

@testable import RelanceTransport

@Suite struct SMSGatewayTests {
    let message = SMSMessage(to: "+33612345678", from: "EXEMPLE", text: "Bonjour Élodie, 1 234,50 €", reference: "F1/sms")

    func gateway(_ provider: any SMSProvider, secrets: [String] = []) throws -> SMSGateway {
        SMSGateway(provider: provider, client: try HTTPClient(configuration: .init(connections: 1)), secrets: secrets)
    }

    func response(_ status: Int, _ body: String, headers: [String: String] = [:]) -> HTTPClient.Response {
        HTTPClient.Response(status: status, headers: headers, body: Data(body.utf8))
    }

    var twilio: TwilioProvider {
        TwilioProvider(baseURL: "http://sim", accountSID: "AC1", authToken: "tok-secret", statusCallback: "https://r.example/webhooks/twilio")
    }

    @Test func twilioRequest() throws {
        let request = try twilio.request(for: message)
        #expect(request.method == "POST")
        #expect(request.url == "http://sim/2010-04-01/Accounts/AC1/Messages.json")
        #expect(request.basicAuth == .init(user: "AC1", password: "tok-secret"))
        #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded")
        let body = String(decoding: request.body!, as: UTF8.self)
        #expect(
            body == "To=%2B33612345678&From=EXEMPLE&Body=Bonjour+%C3%89lodie%2C+1+234%2C50+%E2%82%AC&StatusCallback=https%3A%2F%2Fr.example%2Fwebhooks%2Ftwilio"
        )
    }

    @Test func twilioMessagingServiceReplacesFrom() throws {
        var m = message
        m.from = "MG" + String(repeating: "0", count: 32)
        let body = String(decoding: try twilio.request(for: m).body!, as: UTF8.self)
        #expect(body.contains("MessagingServiceSid=MG000"))
        #expect(!body.contains("From="))
    }

    @Test func classification() throws {
        let g = try gateway(twilio, secrets: ["tok-secret"])
        #expect(g.classify(response(201, #"{"sid":"SM1","status":"queued"}"#)) == .sent(providerID: "SM1", code: 201, detail: "twilio queued"))
        #expect(
            g.classify(response(429, "{}", headers: ["retry-after": "2"]))
                == .transient(code: 429, detail: "twilio HTTP 429: unparseable body: {}", retryAfter: .seconds(2)))
        guard case .transient(503, _, nil) = g.classify(response(503, "oops")) else {
            Issue.record("503 is transient")
            return
        }
        #expect(
            g.classify(response(400, #"{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"x","status":400}"#))
                == .permanent(code: 400, detail: "twilio HTTP 400: code 21211: The 'To' number is not a valid phone number."))
        guard case .permanent(201, let detail) = g.classify(response(201, "<html>accepted tok-secret</html>")) else {
            Issue.record("an unreadable acceptance is not resent")
            return
        }
        #expect(detail.contains("unparseable body: <html>accepted ***</html>"), "\(detail)")
        #expect(!detail.contains("tok-secret"), "secrets are scrubbed from receipts")
        guard case .transient(401, let authDetail, _) = g.classify(response(401, #"{"code":20003,"message":"Authenticate"}"#)) else {
            Issue.record("refused credentials are our problem: transient")
            return
        }
        #expect(authDetail.contains("check the provider credentials"))
        guard case .transient(408, _, _) = g.classify(response(408, "")) else {
            Issue.record("408 is transient")
            return
        }
    }

    @Test func retryAfterAsHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let r = response(503, "", headers: ["retry-after": "Fri, 15 Jan 2027 08:00:10 GMT"])
        #expect(r.retryAfter(now: now) == .seconds(10))
        #expect(response(503, "", headers: ["retry-after": "soon"]).retryAfter(now: now) == nil)
    }

    @Test func vonageRequestAndStatuses() throws {
        let vonage = VonageProvider(baseURL: "http://sim", apiKey: "k", apiSecret: "s3", callback: "https://r.example/webhooks/vonage")
        var unicode = message
        unicode.text = "Tête"
        unicode.analysis = SMSAnalysis(unicode.text)
        let body = String(decoding: try vonage.request(for: unicode).body!, as: UTF8.self)
        #expect(
            body
                == "api_key=k&api_secret=s3&from=EXEMPLE&to=33612345678&text=T%C3%AAte&type=unicode&callback=https%3A%2F%2Fr.example%2Fwebhooks%2Fvonage&client-ref=F1%2Fsms"
        )
        let g = try gateway(vonage, secrets: ["s3"])
        #expect(
            g.classify(response(200, #"{"message-count":"2","messages":[{"message-id":"A","status":"0"},{"message-id":"B","status":"0"}]}"#))
                == .sent(providerID: "A,B", code: 200, detail: "vonage accepted 2 parts"))
        #expect(
            g.classify(response(200, #"{"messages":[{"status":"3","error-text":"Invalid to parameter"}]}"#))
                == .permanent(code: 3, detail: "vonage status 3: Invalid to parameter"))
        #expect(
            g.classify(response(200, #"{"messages":[{"status":"1","error-text":"Throttled"}]}"#))
                == .transient(code: 1, detail: "vonage status 1: Throttled", retryAfter: nil))
    }

    @Test func brevoRequest() throws {
        let brevo = BrevoProvider(baseURL: "http://sim", apiKey: "xkeysib", webURL: "https://r.example/webhooks/brevo?token=t")
        let request = try brevo.request(for: message)
        #expect(request.headers["api-key"] == "xkeysib")
        #expect(request.url == "http://sim/v3/transactionalSMS/send")
        let json = try JSONSerialization.jsonObject(with: request.body!) as! [String: Any]
        #expect(json["sender"] as? String == "EXEMPLE")
        #expect(json["recipient"] as? String == "33612345678")
        #expect(json["content"] as? String == "Bonjour Élodie, 1 234,50 €")
        #expect(json["type"] as? String == "transactional")
        #expect(json["unicodeEnabled"] as? Bool == false)
        #expect(json["webUrl"] as? String == "https://r.example/webhooks/brevo?token=t")
        let g = try gateway(brevo)
        #expect(
            g.classify(response(201, #"{"reference":"r","messageId":1511882900176220,"smsCount":1}"#))
                == .sent(providerID: "1511882900176220", code: 201, detail: "brevo accepted (1 SMS)"))
    }
}
