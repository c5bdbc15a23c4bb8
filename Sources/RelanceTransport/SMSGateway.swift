import Foundation
import RelanceCore

/// What differs between SMS gateways: how to ask, and how to read the answer.
public protocol SMSProvider: Sendable {
    /// Short name for receipts and logs (`twilio`, `vonage`, …).
    var name: String { get }
    func request(for message: SMSMessage) throws -> HTTPClient.Request
    /// Reads a 2xx response: the provider's message id(s), or why the gateway refused after all.
    func accepted(_ response: HTTPClient.Response) -> SendOutcome
    /// Reads the provider's error code and message from a non-2xx body, if it has them.
    func errorDetail(_ response: HTTPClient.Response) -> (code: String?, message: String?)
}

/// Sends SMS through one provider over HTTP and classifies the outcome the same way for all:
/// 2xx → the provider decides; 408, 429 and 5xx → transient (`Retry-After` honoured); other 4xx →
/// permanent, with the provider's code and message; a connection error or timeout → transient.
public final class SMSGateway: Sendable {
    public let provider: any SMSProvider
    let client: HTTPClient
    /// Strings that must never appear in a receipt (API secrets, tokens).
    let secrets: [String]

    public init(provider: any SMSProvider, client: HTTPClient, secrets: [String]) {
        self.provider = provider
        self.client = client
        self.secrets = secrets.filter { !$0.isEmpty }
    }

    public func send(_ message: SMSMessage) async -> SendOutcome {
        let request: HTTPClient.Request
        do { request = try provider.request(for: message) } catch { return .permanent(code: nil, detail: "cannot build the request: \(error)") }
        switch await client.execute(request) {
        case .failure(let error) where error.afterRequestSent:
            return .inDoubt(detail: scrub("\(provider.name): no answer after the whole request was sent: \(error.message) (curl \(error.code))"))
        case .failure(let error):
            return .transient(code: nil, detail: scrub("\(provider.name): \(error.message) (curl \(error.code))"), retryAfter: nil)
        case .success(let response):
            return classify(response)
        }
    }

    func classify(_ response: HTTPClient.Response) -> SendOutcome {
        switch response.status {
        case 200..<300:
            switch provider.accepted(response) {
            case .sent(let id, _, let detail): return .sent(providerID: id, code: response.status, detail: scrub(detail))
            case .transient(let code, let detail, let retry): return .transient(code: code, detail: scrub(detail), retryAfter: retry)
            case .permanent(let code, let detail): return .permanent(code: code, detail: scrub(detail))
            case .inDoubt(let detail): return .inDoubt(detail: scrub(detail))
            }
        case 408, 429, 500..<600:
            return .transient(code: response.status, detail: scrub(describe(response)), retryAfter: response.retryAfter())
        case 401, 403:
            // Our credentials were refused: our problem, not the recipient's. Keep the reminder.
            return .transient(code: response.status, detail: scrub(describe(response) + " (check the provider credentials)"), retryAfter: nil)
        default:
            return .permanent(code: response.status, detail: scrub(describe(response)))
        }
    }

    func describe(_ response: HTTPClient.Response) -> String {
        let (code, message) = provider.errorDetail(response)
        if code != nil || message != nil {
            return "\(provider.name) HTTP \(response.status): \([code.map { "code \($0)" }, message].compactMap { $0 }.joined(separator: ": "))"
        }
        return "\(provider.name) HTTP \(response.status): \(Self.firstBytes(response.body))"
    }

    /// The start of a body, printable, for a receipt.
    public static func firstBytes(_ body: Data, limit: Int = 200) -> String {
        if body.isEmpty { return "(empty body)" }
        let text = String(decoding: body.prefix(limit), as: UTF8.self).replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
        return "unparseable body: \(text)\(body.count > limit ? "…" : "")"
    }

    func scrub(_ text: String) -> String {
        // Most answers hold no secret: an ASCII secret whose bytes are absent is not searched for
        // again with Foundation's (Unicode-aware, much slower) replacement.
        secrets.reduce(text) { text, secret in
            secret.utf8.allSatisfy { $0 < 0x80 } && !text.utf8.containsBytes(of: secret.utf8) ? text : text.replacingOccurrences(of: secret, with: "***")
        }
    }
}

/// Small JSON helpers for provider responses.
/// Reads gateways' JSON answers with the project's parser (Foundation's JSONSerialization, bridging
/// every value to NSObject, cost more than the rest of reading the answer).
enum JSONBody {
    static func object(_ data: Data) -> [String: JSONValue]? {
        guard case .object(let object)? = try? JSONParser.parse(data) else { return nil }
        return object
    }

    /// The members named in `keys` of an object (the others checked, not built): an acceptance
    /// reads one or two fields of an answer of twenty.
    static func object(_ data: Data, keeping keys: Set<String>) -> [String: JSONValue]? {
        try? JSONParser.object(data, keeping: keys)
    }

    /// The objects of an array value (Vonage's `messages`).
    static func objects(_ value: JSONValue?) -> [[String: JSONValue]]? {
        guard case .array(let items)? = value else { return nil }
        var objects: [[String: JSONValue]] = []
        for item in items {
            guard case .object(let object) = item else { return nil }
            objects.append(object)
        }
        return objects
    }

    static func string(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let s)?: return s
        case .number(let n)?: return "\(n)"
        default: return nil
        }
    }
}

/// Twilio Programmable Messaging: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`.
public struct TwilioProvider: SMSProvider {
    public var baseURL: String
    public var accountSID: String
    public var authToken: String
    /// Where Twilio posts status callbacks (`{public_base_url}/webhooks/twilio`), if configured.
    public var statusCallback: String?

    public init(baseURL: String = "https://api.twilio.com", accountSID: String, authToken: String, statusCallback: String?) {
        self.baseURL = baseURL
        self.accountSID = accountSID
        self.authToken = authToken
        self.statusCallback = statusCallback
    }

    public var name: String { "twilio" }

    public func request(for message: SMSMessage) throws -> HTTPClient.Request {
        var form: [(String, String)] = [("To", message.to)]
        // A Messaging Service SID (MG…) replaces the sender.
        if message.from.hasPrefix("MG") && message.from.count == 34 {
            form.append(("MessagingServiceSid", message.from))
        } else {
            form.append(("From", message.from))
        }
        form.append(("Body", message.text))
        if let statusCallback { form.append(("StatusCallback", statusCallback)) }
        return HTTPClient.Request(
            method: "POST", url: "\(baseURL)/2010-04-01/Accounts/\(accountSID)/Messages.json",
            headers: ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"], body: FormEncoding.body(form),
            basicAuth: .init(user: accountSID, password: authToken))
    }

    public func accepted(_ response: HTTPClient.Response) -> SendOutcome {
        guard let json = JSONBody.object(response.body, keeping: ["sid", "status"]), let sid = JSONBody.string(json["sid"]) else {
            return .permanent(
                code: response.status, detail: "twilio accepted the request but its answer cannot be read (not resent): \(SMSGateway.firstBytes(response.body))"
            )
        }
        return .sent(providerID: sid, code: response.status, detail: "twilio \(JSONBody.string(json["status"]) ?? "accepted")")
    }

    public func errorDetail(_ response: HTTPClient.Response) -> (code: String?, message: String?) {
        guard let json = JSONBody.object(response.body) else { return (nil, nil) }
        return (JSONBody.string(json["code"]), JSONBody.string(json["message"]))
    }
}

/// Vonage SMS API: `POST {base}/sms/json`, form-encoded, credentials in the form.
public struct VonageProvider: SMSProvider {
    public var baseURL: String
    public var apiKey: String
    public var apiSecret: String
    /// Delivery receipt URL (`{public_base_url}/webhooks/vonage`), if configured.
    public var callback: String?

    public init(baseURL: String = "https://rest.nexmo.com", apiKey: String, apiSecret: String, callback: String?) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.apiSecret = apiSecret
        self.callback = callback
    }

    public var name: String { "vonage" }

    public func request(for message: SMSMessage) throws -> HTTPClient.Request {
        var form: [(String, String)] = [
            ("api_key", apiKey), ("api_secret", apiSecret), ("from", message.from), ("to", message.toDigits), ("text", message.text),
            ("type", message.analysis.encoding == .ucs2 ? "unicode" : "text"),
        ]
        if let callback { form.append(("callback", callback)) }
        form.append(("client-ref", String(message.reference.prefix(40))))
        return HTTPClient.Request(
            method: "POST", url: "\(baseURL)/sms/json", headers: ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"],
            body: FormEncoding.body(form))
    }

    /// Vonage answers 200 even when it refuses: each part has its own `status` ("0" = accepted).
    public func accepted(_ response: HTTPClient.Response) -> SendOutcome {
        guard let json = JSONBody.object(response.body, keeping: ["messages"]), let parts = JSONBody.objects(json["messages"]), !parts.isEmpty else {
            return .permanent(
                code: response.status, detail: "vonage accepted the request but its answer cannot be read (not resent): \(SMSGateway.firstBytes(response.body))"
            )
        }
        if let refused = parts.first(where: { JSONBody.string($0["status"]) != "0" }) {
            let status = JSONBody.string(refused["status"]) ?? "?"
            let detail = "vonage status \(status): \(JSONBody.string(refused["error-text"]) ?? "refused")"
            let code = Int(status)
            // 1 throttled, 5 internal error, 9 quota, 10 too many binds: try later. Credentials and
            // account problems (4, 8, 11, 14, 32) are ours, not the debtor's: try later too.
            if [1, 4, 5, 8, 9, 10, 11, 14, 32].contains(code ?? -1) { return .transient(code: code, detail: detail, retryAfter: nil) }
            return .permanent(code: code, detail: detail)
        }
        let ids = parts.compactMap { JSONBody.string($0["message-id"]) }
        return .sent(providerID: ids.joined(separator: ","), code: response.status, detail: "vonage accepted \(parts.count) part\(parts.count == 1 ? "" : "s")")
    }

    public func errorDetail(_ response: HTTPClient.Response) -> (code: String?, message: String?) {
        guard let json = JSONBody.object(response.body) else { return (nil, nil) }
        if let parts = JSONBody.objects(json["messages"]), let first = parts.first {
            return (JSONBody.string(first["status"]), JSONBody.string(first["error-text"]))
        }
        // Vonage's newer APIs answer errors as RFC 7807 problem details.
        return (nil, [JSONBody.string(json["title"]), JSONBody.string(json["detail"])].compactMap { $0 }.joined(separator: ": "))
    }
}

/// Brevo transactional SMS: `POST {base}/v3/transactionalSMS/send`, JSON, `api-key` header.
public struct BrevoProvider: SMSProvider {
    public var baseURL: String
    public var apiKey: String
    /// Event webhook URL, carrying its secret token (Brevo signs nothing), if configured.
    public var webURL: String?

    public init(baseURL: String = "https://api.brevo.com", apiKey: String, webURL: String?) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.webURL = webURL
    }

    public var name: String { "brevo" }

    public func request(for message: SMSMessage) throws -> HTTPClient.Request {
        var body: [String: Any] = [
            "sender": message.from, "recipient": message.toDigits, "content": message.text, "type": "transactional",
            "unicodeEnabled": message.analysis.encoding == .ucs2, "tag": message.reference,
        ]
        if let webURL { body["webUrl"] = webURL }
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])
        return HTTPClient.Request(
            method: "POST", url: "\(baseURL)/v3/transactionalSMS/send",
            headers: ["Content-Type": "application/json", "Accept": "application/json", "api-key": apiKey], body: data)
    }

    public func accepted(_ response: HTTPClient.Response) -> SendOutcome {
        guard let json = JSONBody.object(response.body, keeping: ["messageId", "smsCount"]), let id = JSONBody.string(json["messageId"]) else {
            return .permanent(
                code: response.status, detail: "brevo accepted the request but its answer cannot be read (not resent): \(SMSGateway.firstBytes(response.body))")
        }
        let count = JSONBody.string(json["smsCount"]).map { " (\($0) SMS)" } ?? ""
        return .sent(providerID: id, code: response.status, detail: "brevo accepted\(count)")
    }

    public func errorDetail(_ response: HTTPClient.Response) -> (code: String?, message: String?) {
        guard let json = JSONBody.object(response.body) else { return (nil, nil) }
        return (JSONBody.string(json["code"]), JSONBody.string(json["message"]))
    }
}
