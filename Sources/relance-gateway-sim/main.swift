import ArgumentParser
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import RelanceCore
import RelanceTransport
import Synchronization

/// A faithful stand-in for the Twilio, Vonage and Brevo SMS APIs, for tests and staging.
///
/// It speaks each provider's send API (paths, auth, fields, success and error bodies), records
/// every request as a JSON line, chooses outcomes from the recipient number, and posts status
/// callbacks the way each provider does (Twilio's signed with `X-Twilio-Signature`).
@main
struct GatewaySim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relance-gateway-sim",
        abstract: "An SMS gateway simulator speaking the Twilio, Vonage and Brevo APIs.",
        discussion: """
            Recipient numbers choose the outcome, by their last four digits:
              0000  invalid number (Twilio 21211, Vonage status 3, Brevo invalid_parameter)
              0001  landline, cannot receive SMS (Twilio 21614, Vonage status 6, Brevo invalid_parameter)
              0429  HTTP 429 with Retry-After (the first time for that number; accepted afterwards)
              0500  HTTP 500 (the first time for that number; accepted afterwards)
              0999  slow: answers after --slow-ms
              0013  accepted, then the status callback reports a failure (undelivered)
              0777  accepted, then only "sent": no final status ever comes
            anything else: accepted, then callbacks report sent and delivered.
            Status APIs (for reconciliation): Twilio GET /2010-04-01/Accounts/{sid}/Messages/{sid}.json, Vonage GET \
            /v2/reports/records?id=…, Brevo GET /v3/transactionalSMS/statistics/events?phoneNumber=…; a message reads as sent \
            until its callback delay has passed, then as its final status. --drop-callbacks drops that share of the status \
            callbacks (seeded: --seed), each recorded as dropped.
            Prints "READY <port>" once listening.
            """)

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port, printed on the READY line).") var port = 0
    @Option(help: "Append every request received here, as JSON lines.") var record: String?
    @Option(help: "Twilio Account SID accepted.") var twilioSid = "AC00000000000000000000000000000000"
    @Option(help: "Twilio auth token (Basic auth password, and the key that signs callbacks).") var twilioToken = "twilio-test-token"
    @Option(help: "Vonage API key accepted.") var vonageKey = "vonage-key"
    @Option(help: "Vonage API secret accepted.") var vonageSecret = "vonage-secret"
    @Option(help: "Brevo API key accepted.") var brevoKey = "brevo-key"
    @Option(help: "Sign Vonage delivery receipts (md5hash `sig`, with `timestamp`) with this signature secret.") var vonageSignatureSecret: String?
    @Option(help: "Retry-After seconds sent with 429.") var retryAfter = 2
    @Option(help: "Delay of the 'slow' numbers, in milliseconds.") var slowMs = 2000
    @Option(help: "Delay before status callbacks, in milliseconds.") var callbackDelayMs = 50
    @Flag(help: "Send every status callback twice.") var duplicateCallbacks = false
    @Flag(help: "Send status callbacks in reverse order (delivered before sent).") var shuffleCallbacks = false
    @Option(help: "Share of status callbacks never sent (0 to 1), to test reconciliation.") var dropCallbacks = 0.0
    @Option(help: "Seed of the callback drops.") var seed: UInt64 = 1
    @Option(help: "Status API requests a second per provider before answering 429 (0: unlimited).") var statusRateLimit = 0.0

    func validate() throws {
        guard (0...1).contains(dropCallbacks) else { throw ValidationError("--drop-callbacks is a share between 0 and 1") }
        guard statusRateLimit >= 0 else { throw ValidationError("--status-rate-limit is 0 or a positive rate") }
    }

    func run() async throws {
        let settings = Settings(
            twilioSID: twilioSid, twilioToken: twilioToken, vonageKey: vonageKey, vonageSecret: vonageSecret, vonageSignatureSecret: vonageSignatureSecret,
            brevoKey: brevoKey,
            retryAfter: retryAfter, slow: .milliseconds(slowMs), callbackDelay: .milliseconds(callbackDelayMs), duplicateCallbacks: duplicateCallbacks,
            shuffleCallbacks: shuffleCallbacks, dropCallbacks: dropCallbacks, seed: seed, statusRateLimit: statusRateLimit)
        let simulator = try Simulator(settings: settings, recordPath: record)
        let router = Router()
        router.post("/2010-04-01/Accounts/:sid/Messages.json") { request, context in try await simulator.twilio(request, context: context) }
        router.post("/sms/json") { request, context in try await simulator.vonage(request, context: context) }
        router.post("/v3/transactionalSMS/send") { request, context in try await simulator.brevo(request, context: context) }
        router.get("/2010-04-01/Accounts/:sid/Messages.json") { request, context in simulator.twilioList(request, context: context) }
        router.get("/2010-04-01/Accounts/:sid/Messages/:message") { request, context in simulator.twilioStatus(request, context: context) }
        router.get("/v2/reports/records") { request, _ in simulator.vonageStatus(request) }
        router.get("/v3/transactionalSMS/statistics/events") { request, _ in simulator.brevoStatus(request) }
        // A bare endpoint, the baseline of load tests: reads the body, answers 200.
        router.post("/bare") { request, _ -> HTTPTypes.HTTPResponse.Status in
            var request = request
            _ = try await request.collectBody(upTo: 64 * 1024)
            return .ok
        }
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "relance-gateway-sim"),
            onServerRunning: { channel in
                FileHandle.standardOutput.write(Data("READY \(channel.localAddress?.port ?? 0)\n".utf8))
            })
        try await app.runService()
    }
}

struct Settings: Sendable {
    var twilioSID: String
    var twilioToken: String
    var vonageKey: String
    var vonageSecret: String
    var vonageSignatureSecret: String?
    var brevoKey: String
    var retryAfter: Int
    var slow: Duration
    var callbackDelay: Duration
    var duplicateCallbacks: Bool
    var shuffleCallbacks: Bool
    var dropCallbacks = 0.0
    var seed: UInt64 = 1
    var statusRateLimit = 0.0
}

/// A message the simulator accepted, as its status API reports it.
struct SimMessage: Sendable {
    var provider: String
    var to: String
    var acceptedAt: Date
    /// The provider's word once delivery is over (`delivered`, `undelivered`, `failed`, `hardBounce`…).
    var final: String
    var tag: String
}

/// What a number asks the simulator to do.
enum Behaviour {
    case accept, invalid, landline, throttle, serverError, slow, failLater, neverFinal

    init(number: String) {
        switch String(number.suffix(4)) {
        case "0000": self = .invalid
        case "0001": self = .landline
        case "0429": self = .throttle
        case "0500": self = .serverError
        case "0999": self = .slow
        case "0013": self = .failLater
        case "0777": self = .neverFinal
        default: self = .accept
        }
    }
}

final class Simulator: Sendable {
    let settings: Settings
    let recordHandle: Mutex<FileHandle?>
    /// Numbers that already got their one-off 429 or 500.
    let failedOnce = Mutex<Set<String>>([])
    let counter = Atomic<Int>(0)
    let callbacks: HTTPClient
    /// Every accepted message by id, for the status APIs.
    let messages = Mutex<[String: SimMessage]>([:])
    /// SplitMix64 state of the callback drops.
    let dropState: Mutex<UInt64>
    let statusBuckets = Mutex<[String: TokenBucket]>([:])

    init(settings: Settings, recordPath: String?) throws {
        self.settings = settings
        var handle: FileHandle?
        if let recordPath {
            if !FileManager.default.fileExists(atPath: recordPath) { _ = FileManager.default.createFile(atPath: recordPath, contents: nil) }
            handle = FileHandle(forWritingAtPath: recordPath)
            _ = try handle?.seekToEnd()
        }
        recordHandle = Mutex(handle)
        dropState = Mutex(settings.seed)
        callbacks = try HTTPClient(configuration: HTTPClientConfiguration(connections: 4, timeout: .seconds(10)))
    }

    func nextID() -> Int { counter.add(1, ordering: .relaxed).newValue }

    /// Decides whether this request fails once (429/500) for its number.
    func firstTime(_ provider: String, _ number: String) -> Bool {
        failedOnce.withLock { $0.insert(provider + ":" + number).inserted }
    }

    func write(record: [String: Any]) {
        var record = record
        record["at"] = Timestamp.format(Date())
        guard var data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(UInt8(ascii: "\n"))
        recordHandle.withLock { $0?.write(data) }
    }

    static func json(_ status: HTTPTypes.HTTPResponse.Status, _ object: Any, headers: HTTPFields = [:]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The form's fields (the last of repeated names); empty when the encoding is malformed.
    static func form(_ body: String) -> [String: String] {
        Dictionary(FormEncoding.pairs(body) ?? [], uniquingKeysWith: { _, last in last })
    }

    func body(_ request: Request) async throws -> String {
        var request = request
        let buffer = try await request.collectBody(upTo: 1 << 20)
        return String(buffer: buffer)
    }

    // MARK: Twilio

    func twilio(_ request: Request, context: some RequestContext) async throws -> Response {
        let sid = context.parameters.get("sid") ?? ""
        let text = try await body(request)
        let form = Self.form(text)
        let expected = "Basic " + Data("\(settings.twilioSID):\(settings.twilioToken)".utf8).base64EncodedString()
        let authOK = request.headers[.authorization] == expected && sid == settings.twilioSID
        var record: [String: Any] = [
            "provider": "twilio", "method": "\(request.method)", "path": request.uri.path, "auth": authOK ? "ok" : "bad",
            "content_type": request.headers[.contentType] ?? "", "form": form,
        ]
        func error(_ status: HTTPTypes.HTTPResponse.Status, _ code: Int, _ message: String) -> Response {
            record["outcome"] = "error \(code)"
            write(record: record)
            return Self.json(status, ["code": code, "message": message, "more_info": "https://www.twilio.com/docs/errors/\(code)", "status": Int(status.code)])
        }
        guard authOK else { return error(.unauthorized, 20003, "Authenticate") }
        guard let to = form["To"], to.hasPrefix("+") else { return error(.badRequest, 21604, "A 'To' phone number is required.") }
        guard form["From"] != nil || form["MessagingServiceSid"] != nil else { return error(.badRequest, 21603, "A 'From' phone number is required.") }
        guard let bodyText = form["Body"], !bodyText.isEmpty else { return error(.badRequest, 21602, "Message body is required.") }
        if bodyText.count > 1600 { return error(.badRequest, 21617, "The concatenated message body exceeds the 1600 character limit.") }
        switch Behaviour(number: to) {
        case .invalid: return error(.badRequest, 21211, "The 'To' number \(to) is not a valid phone number.")
        case .landline: return error(.badRequest, 21614, "'To' number is not a valid mobile number")
        case .throttle where firstTime("twilio", to):
            record["outcome"] = "429"
            write(record: record)
            return Self.json(
                .tooManyRequests, ["code": 20429, "message": "Too Many Requests", "status": 429], headers: [.retryAfter: "\(settings.retryAfter)"])
        case .serverError where firstTime("twilio", to): return error(.internalServerError, 20500, "Internal Server Error")
        case .slow: try await Task.sleep(for: settings.slow)
        default: break
        }
        let messageSID = String(format: "SM%032x", nextID())
        record["outcome"] = "accepted"
        record["id"] = messageSID
        write(record: record)
        remember(messageSID, provider: "twilio", to: to, final: Self.final(to, failed: "undelivered", delivered: "delivered"))
        if let callback = form["StatusCallback"] {
            let fail = Behaviour(number: to) == .failLater
            let statuses = Behaviour(number: to) == .neverFinal ? ["sent"] : fail ? ["sent", "undelivered"] : ["sent", "delivered"]
            let params = statuses.map { status -> [(String, String)] in
                var p: [(String, String)] = [
                    ("AccountSid", settings.twilioSID), ("ApiVersion", "2010-04-01"), ("From", form["From"] ?? ""), ("MessageSid", messageSID),
                    ("MessageStatus", status), ("SmsSid", messageSID), ("SmsStatus", status), ("To", to),
                ]
                if status == "undelivered" { p.append(("ErrorCode", "30003")) }
                return p
            }
            scheduleCallbacks(params.map { p in { await self.postTwilio(url: callback, params: p) } })
        }
        return Self.json(
            .created,
            [
                "sid": messageSID, "account_sid": settings.twilioSID, "to": to, "from": form["From"].map { $0 as Any } ?? NSNull(), "body": bodyText,
                "status": "queued",
                "num_segments": "\(SMSAnalysis(bodyText).segments)", "direction": "outbound-api", "api_version": "2010-04-01",
                "messaging_service_sid": form["MessagingServiceSid"].map { $0 as Any } ?? NSNull(), "error_code": NSNull(), "error_message": NSNull(),
                "uri": "/2010-04-01/Accounts/\(settings.twilioSID)/Messages/\(messageSID).json",
            ])
    }

    /// Twilio's signature: base64(HMAC-SHA1(auth token, URL + every POST parameter name+value, sorted by name)).
    static func twilioSignature(token: String, url: String, params: [(String, String)]) -> String {
        let payload = url + params.sorted { $0.0 < $1.0 }.map { $0.0 + $0.1 }.joined()
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(payload.utf8), using: SymmetricKey(data: Data(token.utf8)))
        return Data(mac).base64EncodedString()
    }

    func postTwilio(url: String, params: [(String, String)]) async {
        let signature = Self.twilioSignature(token: settings.twilioToken, url: url, params: params)
        _ = await callbacks.execute(
            HTTPClient.Request(
                method: "POST", url: url, headers: ["Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature],
                body: FormEncoding.body(params)))
    }

    // MARK: Vonage

    func vonage(_ request: Request, context: some RequestContext) async throws -> Response {
        let form = Self.form(try await body(request))
        let authOK = form["api_key"] == settings.vonageKey && form["api_secret"] == settings.vonageSecret
        var record: [String: Any] = [
            "provider": "vonage", "method": "\(request.method)", "path": request.uri.path, "auth": authOK ? "ok" : "bad",
            "content_type": request.headers[.contentType] ?? "", "form": form.filter { $0.key != "api_secret" },
        ]
        func refuse(_ status: String, _ text: String) -> Response {
            record["outcome"] = "status \(status)"
            write(record: record)
            return Self.json(.ok, ["message-count": "1", "messages": [["status": status, "error-text": text]]])
        }
        guard authOK else { return refuse("4", "Bad Credentials") }
        guard let to = form["to"], !to.isEmpty, to.allSatisfy(\.isNumber) else { return refuse("3", "Invalid to parameter") }
        guard let from = form["from"], !from.isEmpty else { return refuse("2", "Missing from param") }
        guard let text = form["text"], !text.isEmpty else { return refuse("2", "Missing text param") }
        let analysis = SMSAnalysis(text)
        if analysis.encoding == .ucs2 && form["type"] != "unicode" { return refuse("3", "Invalid message type: text needs type=unicode") }
        switch Behaviour(number: to) {
        case .invalid: return refuse("3", "Invalid to parameter")
        case .landline: return refuse("6", "Invalid message: destination is not a mobile number")
        case .throttle where firstTime("vonage", to):
            record["outcome"] = "429"
            write(record: record)
            return Self.json(
                .tooManyRequests, ["type": "https://developer.vonage.com/api-errors#throttled", "title": "Throttled"],
                headers: [.retryAfter: "\(settings.retryAfter)"])
        case .serverError where firstTime("vonage", to):
            record["outcome"] = "500"
            write(record: record)
            return Self.json(.internalServerError, ["type": "https://developer.vonage.com/api-errors#internal", "title": "Internal Error"])
        case .slow: try await Task.sleep(for: settings.slow)
        default: break
        }
        let parts = (0..<analysis.segments).map { _ in String(format: "%016X", nextID()) }
        record["outcome"] = "accepted"
        record["id"] = parts.joined(separator: ",")
        write(record: record)
        for part in parts { remember(part, provider: "vonage", to: to, final: Self.final(to, failed: "failed", delivered: "delivered")) }
        if let callback = form["callback"], Behaviour(number: to) != .neverFinal {
            let fail = Behaviour(number: to) == .failLater
            let secret = settings.vonageSignatureSecret
            let receipts = parts.map { id -> [String: Any] in
                var receipt: [String: String] = [
                    "msisdn": to, "to": from, "network-code": "20801", "messageId": id, "price": "0.03330000", "status": fail ? "failed" : "delivered",
                    "scts": "2601011200", "err-code": fail ? "5" : "0", "client-ref": form["client-ref"] ?? "", "message-timestamp": "2026-01-01 12:00:00",
                ]
                if let secret {
                    receipt["timestamp"] = "\(Int(Date().timeIntervalSince1970))"
                    receipt["sig"] = Self.vonageSignature(secret: secret, parameters: receipt)
                }
                return receipt
            }
            scheduleCallbacks(receipts.map { Self.encode($0) }.map { data in { await self.postJSON(url: callback, data) } })
        }
        return Self.json(
            .ok,
            [
                "message-count": "\(parts.count)",
                "messages": parts.map {
                    [
                        "to": to, "message-id": $0, "status": "0", "remaining-balance": "10.00000000", "message-price": "0.03330000", "network": "20801",
                        "client-ref": form["client-ref"] ?? "",
                    ]
                },
            ])
    }

    /// Vonage's default `md5hash` signature: MD5 of the sorted `&name=value` pairs (`&` and `=` in
    /// values replaced by `_`) followed by the signature secret, in hex.
    static func vonageSignature(secret: String, parameters: [String: String]) -> String {
        let canonical = parameters.filter { $0.key != "sig" }.sorted { $0.key < $1.key }.map { name, value in
            "&\(name)=" + value.replacingOccurrences(of: "&", with: "_").replacingOccurrences(of: "=", with: "_")
        }.joined()
        return Insecure.MD5.hash(data: Data((canonical + secret).utf8)).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: Brevo

    func brevo(_ request: Request, context: some RequestContext) async throws -> Response {
        let text = try await body(request)
        let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
        let authOK = request.headers.first { $0.name.canonicalName == "api-key" }?.value == settings.brevoKey
        var record: [String: Any] = [
            "provider": "brevo", "method": "\(request.method)", "path": request.uri.path, "auth": authOK ? "ok" : "bad",
            "content_type": request.headers[.contentType] ?? "", "json": json ?? ["unparseable": text],
        ]
        func error(_ status: HTTPTypes.HTTPResponse.Status, _ code: String, _ message: String) -> Response {
            record["outcome"] = "error \(code)"
            write(record: record)
            return Self.json(status, ["code": code, "message": message])
        }
        guard authOK else { return error(.unauthorized, "unauthorized", "Key not found") }
        guard let json else { return error(.badRequest, "bad_request", "Input must be a valid JSON object") }
        guard let recipient = json["recipient"] as? String, recipient.allSatisfy(\.isNumber), !recipient.isEmpty else {
            return error(.badRequest, "invalid_parameter", "recipient is not valid")
        }
        guard let sender = json["sender"] as? String, !sender.isEmpty, sender.count <= 15 else {
            return error(.badRequest, "invalid_parameter", "sender is not valid")
        }
        guard let content = json["content"] as? String, !content.isEmpty else { return error(.badRequest, "missing_parameter", "content is missing") }
        switch Behaviour(number: recipient) {
        case .invalid: return error(.badRequest, "invalid_parameter", "Invalid phone number")
        case .landline: return error(.badRequest, "invalid_parameter", "The recipient is not a mobile number")
        case .throttle where firstTime("brevo", recipient):
            record["outcome"] = "429"
            write(record: record)
            return Self.json(.tooManyRequests, ["code": "too_many_requests", "message": "Too many requests"], headers: [.retryAfter: "\(settings.retryAfter)"])
        case .serverError where firstTime("brevo", recipient): return error(.internalServerError, "internal_error", "Internal error")
        case .slow: try await Task.sleep(for: settings.slow)
        default: break
        }
        let id = 1_511_882_900_000_000 + nextID()
        record["outcome"] = "accepted"
        record["id"] = "\(id)"
        write(record: record)
        remember(
            "\(id)", provider: "brevo", to: recipient, final: Self.final(recipient, failed: "hardBounce", delivered: "delivered"),
            tag: json["tag"] as? String ?? "")
        let segments = SMSAnalysis(content).segments
        if let webURL = json["webUrl"] as? String {
            let fail = Behaviour(number: recipient) == .failLater
            let names = Behaviour(number: recipient) == .neverFinal ? ["sent"] : fail ? ["sent", "hardBounce"] : ["sent", "delivered"]
            let events = names.map { event -> [String: Any] in
                let now = Date()
                return [
                    "event": event, "messageId": id, "to": recipient, "tag": json["tag"] ?? "", "sms_count": segments,
                    "date": Self.parisTime(now), "ts_event": Int(now.timeIntervalSince1970),
                ]
            }
            scheduleCallbacks(events.map { Self.encode($0) }.map { data in { await self.postJSON(url: webURL, data) } })
        }
        return Self.json(
            .created,
            [
                "reference": String(format: "%019x", id), "messageId": id, "smsCount": segments, "usedCredits": Double(segments) * 0.35,
                "remainingCredits": 100.0,
            ])
    }

    /// Brevo's `date` field is local time in Paris (CET/CEST), without an offset.
    static func parisTime(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "Europe/Paris")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return f.string(from: date)
    }

    // MARK: Callbacks

    static func encode(_ object: [String: Any]) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    func postJSON(url: String, _ data: Data) async {
        _ = await callbacks.execute(HTTPClient.Request(method: "POST", url: url, headers: ["Content-Type": "application/json"], body: data))
    }

    func scheduleCallbacks(_ calls: [@Sendable () async -> Void]) {
        // Each callback is lost with the configured probability (a gateway or network that drops them).
        let kept = calls.filter { _ in
            guard settings.dropCallbacks > 0 else { return true }
            let drop = nextRandom() < settings.dropCallbacks
            if drop { write(record: ["dropped_callback": true]) }
            return !drop
        }
        var ordered = settings.shuffleCallbacks ? Array(kept.reversed()) : kept
        if settings.duplicateCallbacks { ordered = ordered.flatMap { [$0, $0] } }
        let delay = settings.callbackDelay
        let sequence = ordered
        Task {
            try? await Task.sleep(for: delay)
            for call in sequence { await call() }
        }
    }

    // MARK: Status APIs

    /// A uniform number in [0, 1) from the seeded SplitMix64.
    func nextRandom() -> Double {
        dropState.withLock { state in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Double(z >> 11) / Double(1 << 53)
        }
    }

    /// The final status a number gets (`sent` for one that never gets any).
    static func final(_ number: String, failed: String, delivered: String) -> String {
        switch Behaviour(number: number) {
        case .failLater: failed
        case .neverFinal: "sent"
        default: delivered
        }
    }

    func remember(_ id: String, provider: String, to: String, final: String, tag: String = "") {
        messages.withLock { $0[id] = SimMessage(provider: provider, to: to, acceptedAt: Date(), final: final, tag: tag) }
    }

    /// What the message's status is now: `sent` until its callbacks' delay has passed, then its final status.
    func currentStatus(_ message: SimMessage) -> String {
        Date().timeIntervalSince(message.acceptedAt) >= settings.callbackDelay.seconds ? message.final : "sent"
    }

    /// Nil when the provider's status API may answer now; else the 429 to send.
    func rateLimited(_ provider: String) -> Response? {
        guard settings.statusRateLimit > 0 else { return nil }
        let refused = statusBuckets.withLock { buckets -> Bool in
            var bucket = buckets[provider] ?? TokenBucket(rate: settings.statusRateLimit)
            defer { buckets[provider] = bucket }
            return bucket.take(now: Date()) != nil
        }
        guard refused else { return nil }
        write(record: ["provider": provider, "method": "GET", "outcome": "429"])
        return Self.json(.tooManyRequests, ["code": 20429, "message": "Too Many Requests", "status": 429], headers: [.retryAfter: "1"])
    }

    func twilioStatus(_ request: Request, context: some RequestContext) -> Response {
        let sid = context.parameters.get("sid") ?? ""
        var id = context.parameters.get("message") ?? ""
        if id.hasSuffix(".json") { id.removeLast(5) }
        let expected = "Basic " + Data("\(settings.twilioSID):\(settings.twilioToken)".utf8).base64EncodedString()
        guard request.headers[.authorization] == expected && sid == settings.twilioSID else {
            write(record: ["provider": "twilio", "method": "GET", "id": id, "outcome": "error 20003"])
            return Self.json(.unauthorized, ["code": 20003, "message": "Authenticate", "status": 401])
        }
        if let limited = rateLimited("twilio") { return limited }
        guard let message = messages.withLock({ $0[id] }), message.provider == "twilio" else {
            write(record: ["provider": "twilio", "method": "GET", "id": id, "outcome": "404"])
            return Self.json(.notFound, ["code": 20404, "message": "The requested resource was not found", "status": 404])
        }
        let status = currentStatus(message)
        write(record: ["provider": "twilio", "method": "GET", "id": id, "outcome": "status \(status)"])
        return Self.json(
            .ok,
            [
                "sid": id, "account_sid": settings.twilioSID, "to": message.to, "status": status,
                "error_code": status == "undelivered" ? 30003 as Any : NSNull(), "direction": "outbound-api", "api_version": "2010-04-01",
            ])
    }

    /// `GET Messages.json?To=…`: the messages to that number, newest first.
    func twilioList(_ request: Request, context: some RequestContext) -> Response {
        let expected = "Basic " + Data("\(settings.twilioSID):\(settings.twilioToken)".utf8).base64EncodedString()
        guard request.headers[.authorization] == expected && context.parameters.get("sid") == settings.twilioSID else {
            return Self.json(.unauthorized, ["code": 20003, "message": "Authenticate", "status": 401])
        }
        let to = Self.form(request.uri.query ?? "")["To"] ?? ""
        let found = messages.withLock { $0.filter { $0.value.provider == "twilio" && $0.value.to == to } }.sorted { $0.value.acceptedAt > $1.value.acceptedAt }
        write(record: ["provider": "twilio", "method": "GET", "phone": to, "outcome": "\(found.count) messages"])
        return Self.json(
            .ok,
            [
                "messages": found.map { ["sid": $0.key, "to": to, "status": currentStatus($0.value), "date_created": Self.rfc2822($0.value.acceptedAt)] },
                "page": 0, "page_size": 50,
            ])
    }

    /// Twilio's dates: RFC 2822, in GMT.
    static func rfc2822(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return f.string(from: date)
    }

    func vonageStatus(_ request: Request) -> Response {
        let query = Self.form(request.uri.query ?? "")
        let expected = "Basic " + Data("\(settings.vonageKey):\(settings.vonageSecret)".utf8).base64EncodedString()
        let id = query["id"] ?? ""
        guard request.headers[.authorization] == expected, query["account_id"] == settings.vonageKey else {
            write(record: ["provider": "vonage", "method": "GET", "id": id, "outcome": "401"])
            return Self.json(.unauthorized, ["type": "https://developer.vonage.com/api-errors#unauthorized", "title": "Unauthorized"])
        }
        if let limited = rateLimited("vonage") { return limited }
        if id.isEmpty, let to = query["to"] {
            // A search by recipient (no id): every message to that number.
            let found = messages.withLock { $0.filter { $0.value.provider == "vonage" && $0.value.to == to } }
            write(record: ["provider": "vonage", "method": "GET", "phone": to, "outcome": "\(found.count) records"])
            return Self.json(
                .ok,
                [
                    "request_id": UUID().uuidString, "request_status": "SUCCESS", "product": "SMS",
                    "records": found.map { ["message_id": $0.key, "to": to, "status": currentStatus($0.value), "date_received": Timestamp.format($0.value.acceptedAt)] },
                ])
        }
        guard query["product"] == "SMS", let message = messages.withLock({ $0[id] }), message.provider == "vonage" else {
            write(record: ["provider": "vonage", "method": "GET", "id": id, "outcome": "no record"])
            return Self.json(.ok, ["request_id": UUID().uuidString, "request_status": "SUCCESS", "records": [] as [Any]])
        }
        let status = currentStatus(message)
        write(record: ["provider": "vonage", "method": "GET", "id": id, "outcome": "status \(status)"])
        return Self.json(
            .ok,
            [
                "request_id": UUID().uuidString, "request_status": "SUCCESS", "product": "SMS",
                "records": [["message_id": id, "to": message.to, "status": status, "direction": "outbound", "account_id": settings.vonageKey]],
            ])
    }

    func brevoStatus(_ request: Request) -> Response {
        let query = Self.form(request.uri.query ?? "")
        guard request.headers.first(where: { $0.name.canonicalName == "api-key" })?.value == settings.brevoKey else {
            write(record: ["provider": "brevo", "method": "GET", "outcome": "401"])
            return Self.json(.unauthorized, ["code": "unauthorized", "message": "Key not found"])
        }
        if let limited = rateLimited("brevo") { return limited }
        let number = query["phoneNumber"] ?? ""
        let found = messages.withLock { $0.filter { $0.value.provider == "brevo" && $0.value.to == number } }
        var events: [[String: Any]] = []
        for (id, message) in found {
            let status = currentStatus(message)
            events.append(["phoneNumber": number, "messageId": Int(id) ?? 0, "event": "sent", "tag": message.tag, "date": Self.parisTime(message.acceptedAt)])
            if status != "sent" {
                events.append(["phoneNumber": number, "messageId": Int(id) ?? 0, "event": status, "tag": message.tag, "date": Self.parisTime(Date())])
            }
        }
        write(record: ["provider": "brevo", "method": "GET", "phone": number, "outcome": "\(events.count) events"])
        return Self.json(.ok, ["events": events])
    }
}
