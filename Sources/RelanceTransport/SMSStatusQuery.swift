import Foundation
import RelanceCore

/// What a provider's status API says of one message it accepted.
public enum ProviderStatus: Sendable, Hashable {
    /// Still on its way (queued, sent to the carrier, buffered…): `text` is the provider's word.
    case pending(String)
    case delivered(String)
    /// Did not reach the phone (undelivered, failed, expired, rejected…).
    case undelivered(String)
    /// Hard-bounced (Brevo's `hardBounce`).
    case bounced(String)
    /// The provider does not know this id (yet).
    case notFound

    /// The provider's own word for it.
    public var text: String {
        switch self {
        case .pending(let t), .delivered(let t), .undelivered(let t), .bounced(let t): t
        case .notFound: "not found"
        }
    }

    public var isFinal: Bool {
        switch self {
        case .delivered, .undelivered, .bounced: true
        case .pending, .notFound: false
        }
    }
}

/// How to ask one provider for the status of a message it accepted (SMS reconciliation, DESIGN.md
/// "Bounces and reconciliation"), and how to read its answer.
public protocol SMSStatusQuery: Sendable {
    var name: String { get }
    /// `recipient`: E.164; `sentAt`: when the message was accepted (APIs that search by date need it).
    func request(messageID: String, recipient: String, sentAt: Date) -> HTTPClient.Request
    /// Reads a 2xx (or 404) answer; nil when it cannot be read.
    func read(_ response: HTTPClient.Response, messageID: String) -> ProviderStatus?
    /// The messages sent to `recipient` since `since`, for an operator settling an in-doubt SMS
    /// (its send got no answer, so no message id is known).
    func search(recipient: String, since: Date) -> HTTPClient.Request
    func readSearch(_ response: HTTPClient.Response) -> [FoundMessage]?
}

/// A message a gateway says it sent to a number.
public struct FoundMessage: Sendable, Hashable {
    public var id: String
    public var status: ProviderStatus
    /// When the gateway took it, as it says (its own format).
    public var at: String

    public init(id: String, status: ProviderStatus, at: String) {
        self.id = id
        self.status = status
        self.at = at
    }
}

/// Asks a provider's status API with the shared HTTP client, classifying failures alike: a 429
/// or 5xx says "later" (with its `Retry-After`), anything unreadable is an error for the log.
public struct SMSStatusClient: Sendable {
    public let query: any SMSStatusQuery
    let client: HTTPClient
    let secrets: [String]

    public init(query: any SMSStatusQuery, client: HTTPClient, secrets: [String]) {
        self.query = query
        self.client = client
        self.secrets = secrets.filter { !$0.isEmpty }
    }

    public enum Answer: Sendable, Hashable {
        case status(ProviderStatus)
        /// Rate-limited or unavailable: stop asking until then.
        case later(retryAfter: Duration?, detail: String)
        case failed(String)
    }

    public func status(messageID: String, recipient: String, sentAt: Date) async -> Answer {
        switch await client.execute(query.request(messageID: messageID, recipient: recipient, sentAt: sentAt)) {
        case .failure(let error):
            return .later(retryAfter: nil, detail: scrub("\(query.name): \(error.message) (curl \(error.code))"))
        case .success(let response):
            switch response.status {
            case 429, 500..<600:
                return .later(retryAfter: response.retryAfter(), detail: "\(query.name) answered \(response.status)")
            case 200..<300, 404:
                guard let status = query.read(response, messageID: messageID) else {
                    return .failed(scrub("\(query.name) answered \(response.status) with what cannot be read: \(SMSGateway.firstBytes(response.body))"))
                }
                return .status(status)
            default:
                return .failed(scrub("\(query.name) answered \(response.status): \(SMSGateway.firstBytes(response.body))"))
            }
        }
    }

    /// The messages the gateway sent to `recipient` since `since` (`relance resolve --check`).
    public func search(recipient: String, since: Date) async -> Result<[FoundMessage], CurlError> {
        switch await client.execute(query.search(recipient: recipient, since: since)) {
        case .failure(let error): return .failure(CurlError(code: error.code, message: scrub(error.message)))
        case .success(let response):
            guard (200..<300).contains(response.status), let found = query.readSearch(response) else {
                return .failure(CurlError(code: -1, message: scrub("\(query.name) answered \(response.status): \(SMSGateway.firstBytes(response.body))")))
            }
            return .success(found)
        }
    }

    func scrub(_ text: String) -> String {
        secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: "[secret]") }
    }
}

/// `YYYY-MM-DD` of `date` in UTC (the gateways' date filters).
func utcDay(_ date: Date) -> String { String(Timestamp.format(date).prefix(10)) }

/// Twilio: `GET {base}/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json`.
public struct TwilioStatusQuery: SMSStatusQuery {
    public var baseURL: String
    public var accountSID: String
    public var authToken: String

    public init(baseURL: String = "https://api.twilio.com", accountSID: String, authToken: String) {
        self.baseURL = baseURL
        self.accountSID = accountSID
        self.authToken = authToken
    }

    public var name: String { "twilio" }

    public func request(messageID: String, recipient: String, sentAt: Date) -> HTTPClient.Request {
        let sid = FormEncoding.encode(messageID)
        return HTTPClient.Request(
            method: "GET", url: "\(baseURL)/2010-04-01/Accounts/\(accountSID)/Messages/\(sid).json", headers: ["Accept": "application/json"],
            basicAuth: .init(user: accountSID, password: authToken))
    }

    public func read(_ response: HTTPClient.Response, messageID: String) -> ProviderStatus? {
        if response.status == 404 { return .notFound }
        guard let json = JSONBody.object(response.body), let status = JSONBody.string(json["status"]) else { return nil }
        let code = JSONBody.string(json["error_code"]).map { " (error \($0))" } ?? ""
        return Self.status(status, code: code)
    }

    static func status(_ status: String, code: String) -> ProviderStatus {
        switch status {
        case "delivered": return .delivered(status)
        case "undelivered", "failed", "canceled": return .undelivered(status + code)
        default: return .pending(status)  // queued, accepted, scheduled, sending, sent (to the carrier), read
        }
    }

    /// `GET …/Messages.json?To=…&DateSent>=YYYY-MM-DD`.
    public func search(recipient: String, since: Date) -> HTTPClient.Request {
        let query = FormEncoding.body([("To", recipient), ("DateSent>", utcDay(since)), ("PageSize", "50")])
        return HTTPClient.Request(
            method: "GET", url: "\(baseURL)/2010-04-01/Accounts/\(accountSID)/Messages.json?\(String(decoding: query, as: UTF8.self))",
            headers: ["Accept": "application/json"], basicAuth: .init(user: accountSID, password: authToken))
    }

    public func readSearch(_ response: HTTPClient.Response) -> [FoundMessage]? {
        guard let json = JSONBody.object(response.body), let messages = JSONBody.objects(json["messages"]) else { return nil }
        return messages.compactMap { m in
            guard let sid = JSONBody.string(m["sid"]), let status = JSONBody.string(m["status"]) else { return nil }
            let code = JSONBody.string(m["error_code"]).map { " (error \($0))" } ?? ""
            return FoundMessage(id: sid, status: Self.status(status, code: code), at: JSONBody.string(m["date_created"]) ?? "")
        }
    }
}

/// Vonage's Reports API: `GET {base}/v2/reports/records?account_id=…&product=SMS&direction=outbound&id=…`,
/// Basic auth with the API key and secret.
public struct VonageStatusQuery: SMSStatusQuery {
    public var baseURL: String
    public var apiKey: String
    public var apiSecret: String

    public init(baseURL: String = "https://api.nexmo.com", apiKey: String, apiSecret: String) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.apiSecret = apiSecret
    }

    public var name: String { "vonage" }

    public func request(messageID: String, recipient: String, sentAt: Date) -> HTTPClient.Request {
        let query = FormEncoding.body([("account_id", apiKey), ("product", "SMS"), ("direction", "outbound"), ("id", messageID)])
        return HTTPClient.Request(
            method: "GET", url: "\(baseURL)/v2/reports/records?\(String(decoding: query, as: UTF8.self))", headers: ["Accept": "application/json"],
            basicAuth: .init(user: apiKey, password: apiSecret))
    }

    public func read(_ response: HTTPClient.Response, messageID: String) -> ProviderStatus? {
        if response.status == 404 { return .notFound }
        guard let json = JSONBody.object(response.body), let records = JSONBody.objects(json["records"]) else { return nil }
        guard let record = records.first(where: { JSONBody.string($0["message_id"])?.lowercased() == messageID.lowercased() }) ?? records.first,
            let status = JSONBody.string(record["status"])?.lowercased()
        else { return .notFound }
        return Self.status(status)
    }

    static func status(_ status: String) -> ProviderStatus {
        switch status {
        case "delivered": return .delivered(status)
        case "failed", "expired", "rejected", "undeliverable": return .undelivered(status)
        default: return .pending(status)  // submitted, accepted, buffered, unknown
        }
    }

    /// The Reports API by recipient and start date.
    public func search(recipient: String, since: Date) -> HTTPClient.Request {
        let query = FormEncoding.body([
            ("account_id", apiKey), ("product", "SMS"), ("direction", "outbound"), ("to", String(recipient.filter(\.isNumber))),
            ("date_start", Timestamp.format(since)), ("date_end", Timestamp.format(Date())),
        ])
        return HTTPClient.Request(
            method: "GET", url: "\(baseURL)/v2/reports/records?\(String(decoding: query, as: UTF8.self))", headers: ["Accept": "application/json"],
            basicAuth: .init(user: apiKey, password: apiSecret))
    }

    public func readSearch(_ response: HTTPClient.Response) -> [FoundMessage]? {
        guard let json = JSONBody.object(response.body), let records = JSONBody.objects(json["records"]) else { return nil }
        return records.compactMap { r in
            guard let id = JSONBody.string(r["message_id"]), let status = JSONBody.string(r["status"])?.lowercased() else { return nil }
            return FoundMessage(id: id, status: Self.status(status), at: JSONBody.string(r["date_received"]) ?? "")
        }
    }
}

/// Brevo's transactional SMS events: `GET {base}/v3/transactionalSMS/statistics/events?phoneNumber=…`
/// (the API filters by number and dates, not by message id: the events of this id are picked out).
public struct BrevoStatusQuery: SMSStatusQuery {
    public var baseURL: String
    public var apiKey: String

    public init(baseURL: String = "https://api.brevo.com", apiKey: String) {
        self.baseURL = baseURL
        self.apiKey = apiKey
    }

    public var name: String { "brevo" }

    public func request(messageID: String, recipient: String, sentAt: Date) -> HTTPClient.Request {
        let day = { (date: Date) -> String in
            let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "Europe/Paris") ?? .gmt, from: date)
            return String(format: "%04d-%02d-%02d", c.year ?? 1970, c.month ?? 1, c.day ?? 1)
        }
        let digits = String(recipient.filter(\.isNumber))
        let query = FormEncoding.body([
            ("phoneNumber", digits), ("startDate", day(sentAt.addingTimeInterval(-86_400))), ("endDate", day(Date())), ("limit", "100"), ("sort", "desc"),
        ])
        return HTTPClient.Request(
            method: "GET", url: "\(baseURL)/v3/transactionalSMS/statistics/events?\(String(decoding: query, as: UTF8.self))",
            headers: ["Accept": "application/json", "api-key": apiKey])
    }

    public func read(_ response: HTTPClient.Response, messageID: String) -> ProviderStatus? {
        if response.status == 404 { return .notFound }
        guard let json = JSONBody.object(response.body) else { return nil }
        let events = (JSONBody.objects(json["events"]) ?? []).filter { JSONBody.string($0["messageId"]) == messageID }
        return Self.status(events.compactMap { JSONBody.string($0["event"]) })
    }

    /// The same events request, for every message to the number.
    public func search(recipient: String, since: Date) -> HTTPClient.Request {
        request(messageID: "", recipient: recipient, sentAt: since)
    }

    public func readSearch(_ response: HTTPClient.Response) -> [FoundMessage]? {
        guard let json = JSONBody.object(response.body), let events = JSONBody.objects(json["events"]) else { return nil }
        var order: [String] = []
        var byID: [String: (names: [String], at: String)] = [:]
        for event in events {
            guard let id = JSONBody.string(event["messageId"]), let name = JSONBody.string(event["event"]) else { continue }
            if byID[id] == nil { order.append(id) }
            byID[id, default: ([], JSONBody.string(event["date"]) ?? "")].names.append(name)
        }
        return order.map { FoundMessage(id: $0, status: Self.status(byID[$0]?.names ?? []), at: byID[$0]?.at ?? "") }
    }

    static func status(_ names: [String]) -> ProviderStatus {
        if names.isEmpty { return .notFound }
        if let bounce = names.first(where: { $0 == "hardBounce" || $0 == "hard_bounce" }) { return .bounced(bounce) }
        if let failure = names.first(where: { ["softBounce", "soft_bounce", "blocked", "rejected", "error", "skip"].contains($0) }) {
            return .undelivered(failure)
        }
        if names.contains("delivered") { return .delivered("delivered") }
        return .pending(names.first ?? "sent")
    }
}
