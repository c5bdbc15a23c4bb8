import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import RelanceCore
import RelanceStore
import RelanceTransport
import Synchronization

/// Whether each long-lived service is running, for `/healthz`.
public final class ServiceHealth: Sendable {
    private let running = Mutex<[String: Bool]>([:])
    public init() {}
    public func set(_ name: String, running value: Bool) { running.withLock { $0[name] = value } }
    /// Names of registered services that are not running.
    public var stopped: [String] { running.withLock { $0.filter { !$0.value }.map(\.key).sorted() } }
    public func register(_ names: [String]) { running.withLock { for n in names where $0[n] == nil { $0[n] = false } } }
}

/// The daemon's HTTP side: gateway status callbacks, `/healthz`, `/metrics`.
/// TLS is a reverse proxy's job; signatures are checked against `webhooks.public_base_url`.
public struct WebhookHandlers: Sendable {
    public var ledger: Ledger
    public var configuration: RelanceConfiguration
    public var health: ServiceHealth
    public var registry: PrometheusCollectorRegistry
    public var layout: SpoolLayout
    public var logger: Logger
    public var clock: @Sendable () -> Date

    static let maxBody = 64 * 1024

    public init(
        ledger: Ledger, configuration: RelanceConfiguration, health: ServiceHealth, registry: PrometheusCollectorRegistry, layout: SpoolLayout, logger: Logger,
        clock: @escaping @Sendable () -> Date
    ) {
        self.ledger = ledger
        self.configuration = configuration
        self.health = health
        self.registry = registry
        self.layout = layout
        self.logger = logger
        self.clock = clock
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/webhooks/twilio") { request, _ in await self.handle("twilio", request, self.twilio) }
        router.post("/webhooks/vonage") { request, _ in await self.handle("vonage", request, self.vonage) }
        router.post("/webhooks/brevo") { request, _ in await self.handle("brevo", request, self.brevo) }
        router.post("/webhooks/generic") { request, _ in await self.handle("generic", request, self.generic) }
        router.post("/api/cancellations") { request, _ in await self.handle("cancellations", request, self.cancellation) }
        router.get("/healthz") { _, _ in await self.healthz() }
        router.get("/metrics") { _, _ in await self.metrics() }
        return router
    }

    /// A refusal with its status and a short reason (never a secret).
    struct Refusal: Error {
        var status: HTTPResponse.Status
        var reason: String
    }

    /// Collects the body (64 KiB at most), runs the endpoint, turns refusals into 4xx, counts the result.
    func handle(_ endpoint: String, _ request: Request, _ body: (Request, Data) async throws -> (HTTPResponse.Status, String)) async -> Response {
        var request = request
        let status: HTTPResponse.Status
        let text: String
        do {
            let buffer = try await request.collectBody(upTo: Self.maxBody)
            (status, text) = try await body(request, Data(buffer: buffer))
        } catch is NIOTooManyBytesError {
            (status, text) = (.contentTooLarge, "body over 64 KiB")
        } catch let refusal as Refusal {
            (status, text) = (refusal.status, refusal.reason)
        } catch {
            // The ledger failed: the gateway should retry later.
            logger.error("webhook not applied", metadata: ["relance.webhook": "\(endpoint)", "error": "\(error)"])
            (status, text) = (.serviceUnavailable, "ledger unavailable, retry later")
        }
        Counter(label: "relance_webhook_requests_total", dimensions: [("endpoint", endpoint), ("status", "\(status.code)")]).increment()
        if status.code >= 400 {
            logger.warning("webhook refused", metadata: ["relance.webhook": "\(endpoint)", "relance.status": "\(status.code)", "relance.reason": "\(text)"])
        }
        return Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    static func formPairs(_ text: String) throws -> [(String, String)] {
        guard let pairs = RelanceTransport.HTTPRequest.formPairs(text) else { throw Refusal(status: .badRequest, reason: "malformed form encoding") }
        return pairs
    }

    func requireContentType(_ request: Request, _ prefix: String) throws {
        guard (request.headers[.contentType] ?? "").lowercased().hasPrefix(prefix) else {
            throw Refusal(status: .unsupportedMediaType, reason: "expected \(prefix)")
        }
    }

    func publicURL(_ request: Request) throws -> String {
        guard let base = configuration.webhooks.publicBaseURL else {
            throw Refusal(status: .forbidden, reason: "webhooks.public_base_url is not configured: signatures cannot be checked")
        }
        return base + request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
    }

    func apply(_ callback: StatusCallback) async throws -> (HTTPResponse.Status, String) {
        let result = try await ledger.apply(callback, now: clock(), orphanTTL: configuration.webhooks.orphanTTL.value)
        if result == .orphan {
            logger.notice(
                "callback for an unknown message id kept as an orphan",
                metadata: ["relance.provider": "\(callback.provider)", "relance.message_id": "\(callback.messageID)"])
        }
        Counter(label: "relance_callbacks_total", dimensions: [("provider", callback.provider), ("result", result.rawValue)]).increment()
        return (.ok, result.rawValue)
    }

    func optOut(_ number: String, provider: String) async throws -> (HTTPResponse.Status, String) {
        let e164 = number.hasPrefix("+") ? number : "+" + number
        try await ledger.suppress(e164, reason: "STOP reply", source: provider, now: clock())
        logger.notice("opt-out: number suppressed", metadata: ["relance.provider": "\(provider)"])
        Counter(label: "relance_opt_outs_total", dimensions: [("provider", provider)]).increment()
        return (.ok, "suppressed")
    }

    // MARK: Twilio

    func twilio(_ request: Request, _ body: Data) async throws -> (HTTPResponse.Status, String) {
        try requireContentType(request, "application/x-www-form-urlencoded")
        let token = configuration.sms.twilio.authToken
        guard !token.isEmpty else { throw Refusal(status: .forbidden, reason: "sms.twilio.auth_token is not configured") }
        let url = try publicURL(request)
        let pairs = try Self.formPairs(String(decoding: body, as: UTF8.self))
        guard let signature = request.headers[HTTPField.Name("X-Twilio-Signature")!],
            WebhookSignatures.constantTimeEqual(signature, WebhookSignatures.twilio(token: token, url: url, parameters: pairs))
        else { throw Refusal(status: .forbidden, reason: "bad or missing X-Twilio-Signature") }
        let params = Dictionary(pairs, uniquingKeysWith: { _, last in last })
        if let status = params["MessageStatus"] ?? params["SmsStatus"], status != "received" {
            guard let sid = params["MessageSid"] ?? params["SmsSid"], !sid.isEmpty else { throw Refusal(status: .badRequest, reason: "MessageSid is missing") }
            let mapped: StatusCallback.Status =
                switch status {
                case "delivered", "read": .delivered
                case "undelivered", "failed", "canceled": .undelivered
                default: .inFlight
                }
            var raw = params.filter { ["MessageSid", "MessageStatus", "ErrorCode", "To", "From", "ApiVersion", "AccountSid"].contains($0.key) }
            raw["signature"] = "valid"
            return try await apply(StatusCallback(provider: "twilio", messageID: sid, status: mapped, raw: raw))
        }
        // An inbound message on the same endpoint.
        guard let from = params["From"] else { throw Refusal(status: .badRequest, reason: "neither MessageStatus nor an inbound From") }
        if WebhookSignatures.isOptOut(params["Body"] ?? "") { return try await optOut(from, provider: "twilio") }
        return (.ok, "inbound message ignored")
    }

    // MARK: Vonage

    func vonage(_ request: Request, _ body: Data) async throws -> (HTTPResponse.Status, String) {
        var params: [String: String] = [:]
        for (k, v) in try Self.formPairs(request.uri.query ?? "") { params[k] = v }
        let contentType = (request.headers[.contentType] ?? "").lowercased()
        if contentType.hasPrefix("application/json") {
            guard let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
                throw Refusal(status: .badRequest, reason: "malformed JSON")
            }
            for (k, v) in json { params[k] = "\(v)" }
        } else if contentType.hasPrefix("application/x-www-form-urlencoded") {
            for (k, v) in try Self.formPairs(String(decoding: body, as: UTF8.self)) { params[k] = v }
        } else if !body.isEmpty {
            throw Refusal(status: .unsupportedMediaType, reason: "expected JSON or a form")
        }
        let secret = configuration.sms.vonage.signatureSecret
        if !secret.isEmpty {
            guard let sig = params["sig"],
                WebhookSignatures.constantTimeEqual(
                    sig.lowercased(), WebhookSignatures.vonage(secret: secret, method: configuration.sms.vonage.signatureMethod, parameters: params))
            else { throw Refusal(status: .forbidden, reason: "bad or missing sig") }
            if let ts = params["timestamp"].flatMap(TimeInterval.init), abs(clock().timeIntervalSince1970 - ts) > 300 {
                throw Refusal(status: .forbidden, reason: "stale timestamp")
            }
        }
        if let messageID = params["messageId"], let status = params["status"] {
            let mapped: StatusCallback.Status =
                switch status {
                case "delivered": .delivered
                case "expired", "failed", "rejected": .undelivered
                default: .inFlight
                }
            let raw = params.filter { ["messageId", "status", "err-code", "network-code", "client-ref", "message-timestamp", "scts"].contains($0.key) }
            return try await apply(StatusCallback(provider: "vonage", messageID: messageID, status: mapped, raw: raw))
        }
        if let msisdn = params["msisdn"], let text = params["text"] {
            if WebhookSignatures.isOptOut(text) { return try await optOut(msisdn, provider: "vonage") }
            return (.ok, "inbound message ignored")
        }
        throw Refusal(status: .badRequest, reason: "neither a delivery receipt (messageId, status) nor an inbound message")
    }

    // MARK: Brevo

    func brevo(_ request: Request, _ body: Data) async throws -> (HTTPResponse.Status, String) {
        let query = Dictionary(try Self.formPairs(request.uri.query ?? ""), uniquingKeysWith: { _, last in last })
        guard let expected = configuration.webhooks.brevoToken, !expected.isEmpty else {
            throw Refusal(status: .forbidden, reason: "webhooks.brevo_token is not configured")
        }
        guard let token = query["token"], WebhookSignatures.constantTimeEqual(token, expected) else {
            throw Refusal(status: .forbidden, reason: "bad or missing token")
        }
        try requireContentType(request, "application/json")
        guard let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else { throw Refusal(status: .badRequest, reason: "malformed JSON") }
        let event = (json["event"] ?? json["msg_status"]).map { "\($0)" } ?? ""
        let to = json["to"].map { "\($0)" }
        if ["unsubscribe", "unsubscribed"].contains(event) || (event == "replied" && WebhookSignatures.isOptOut(json["reply"].map { "\($0)" } ?? "")) {
            guard let to else { throw Refusal(status: .badRequest, reason: "to is missing") }
            return try await optOut(to, provider: "brevo")
        }
        guard let messageID = (json["messageId"] ?? json["message_id"]).map({ "\($0)" }), !event.isEmpty else {
            throw Refusal(status: .badRequest, reason: "messageId and event are required")
        }
        let mapped: StatusCallback.Status =
            switch event {
            case "delivered": .delivered
            case "hardBounce", "hard_bounce": .bounced
            case "softBounce", "soft_bounce", "blocked", "rejected", "error", "skip": .undelivered
            default: .inFlight
            }
        var raw: [String: String] = ["event": event, "messageId": messageID]
        // `date` is Paris local time (CET/CEST) without an offset; `ts_event` is UTC Unix time.
        for key in ["date", "ts_event", "tag", "description", "sms_count"] { if let v = json[key] { raw[key] = "\(v)" } }
        return try await apply(StatusCallback(provider: "brevo", messageID: messageID, status: mapped, raw: raw))
    }

    // MARK: Generic (Standard Webhooks)

    func generic(_ request: Request, _ body: Data) async throws -> (HTTPResponse.Status, String) {
        guard let secret = configuration.webhooks.secret, !secret.isEmpty else {
            throw Refusal(status: .forbidden, reason: "webhooks.secret is not configured")
        }
        let id = request.headers[HTTPField.Name("webhook-id")!]
        let verdict = WebhookSignatures.verifyStandardWebhooks(
            secret: secret, id: id, timestamp: request.headers[HTTPField.Name("webhook-timestamp")!],
            signatureHeader: request.headers[HTTPField.Name("webhook-signature")!], body: body, now: clock())
        switch verdict {
        case .valid: break
        case .malformed: throw Refusal(status: .forbidden, reason: "missing webhook-id, webhook-timestamp or webhook-signature")
        case .staleTimestamp: throw Refusal(status: .forbidden, reason: "webhook-timestamp outside ±5 minutes")
        case .badSignature: throw Refusal(status: .forbidden, reason: "bad webhook-signature")
        }
        try requireContentType(request, "application/json")
        guard let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any],
            let messageID = json["message_id"].map({ "\($0)" }), let status = json["status"] as? String
        else { throw Refusal(status: .badRequest, reason: "JSON with message_id and status is required") }
        let mapped: StatusCallback.Status
        switch status {
        case "delivered": mapped = .delivered
        case "undelivered", "failed": mapped = .undelivered
        case "bounced": mapped = .bounced
        case "queued", "sent", "accepted": mapped = .inFlight
        default: throw Refusal(status: .badRequest, reason: "unknown status '\(status)'")
        }
        // A replayed webhook-id has no second effect (checked after the signature, so nobody can burn ids).
        guard try await ledger.firstSeen(webhookID: id!, now: clock()) else { return (.ok, "duplicate webhook-id ignored") }
        var raw: [String: String] = ["message_id": messageID, "status": status, "webhook_id": id!]
        for key in ["error_code", "occurred_at"] { if let v = json[key] { raw[key] = "\(v)" } }
        return try await apply(StatusCallback(provider: "generic", messageID: messageID, status: mapped, raw: raw))
    }

    // MARK: Health and metrics

    /// `POST /api/cancellations`: a cancellation record (`{"cancel": {…}}`), bearer token from
    /// `webhooks.api_token`. Applied and committed before the answer: a 200 means no delivery it
    /// matches will be marked `sending` afterwards.
    func cancellation(_ request: Request, _ body: Data) async throws -> (HTTPResponse.Status, String) {
        guard let token = configuration.webhooks.apiToken, !token.isEmpty else { throw Refusal(status: .notFound, reason: "webhooks.api_token is not set") }
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), WebhookSignatures.constantTimeEqual(String(header.dropFirst("Bearer ".count)), token) else {
            throw Refusal(status: .unauthorized, reason: "a valid bearer token is required")
        }
        try requireContentType(request, "application/json")
        switch CancellationRequest.validate(body) {
        case .failure(let issues):
            throw Refusal(
                status: .unprocessableContent, reason: issues.issues.map { "\($0.field.isEmpty ? "body" : $0.field): \($0.reason)" }.joined(separator: "; "))
        case .success(let cancel):
            if let until = cancel.until, until <= clock() {
                throw Refusal(status: .unprocessableContent, reason: "cancel.until: a pause must end in the future")
            }
            let result = try await ledger.cancel(cancel, source: "api", now: clock())
            logger.notice(
                "cancellation applied",
                metadata: ["relance.cancel": "\(cancel.summary)", "relance.cancelled": "\(result.cancelled)", "relance.paused": "\(result.paused)"])
            return (
                .ok,
                "{\"matched\":\(result.matched),\"cancelled\":\(result.cancelled),\"paused\":\(result.paused),\"settled\":\(result.settled)}"
            )
        }
    }

    func healthz() async -> Response {
        var problems: [String] = []
        if let problem = await ledger.writeProblem(now: clock()) { problems.append(problem) }
        let stopped = health.stopped
        if !stopped.isEmpty { problems.append("not running: \(stopped.joined(separator: ", "))") }
        let (status, text) = problems.isEmpty ? (HTTPResponse.Status.ok, "ok") : (.serviceUnavailable, problems.joined(separator: "; "))
        return Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    func metrics() async -> Response {
        // Queue depths are read at scrape time.
        if let counts = try? await ledger.statusCounts() {
            for row in counts { Gauge(label: "relance_deliveries", dimensions: [("channel", row.channel), ("status", row.status)]).record(row.count) }
        }
        Gauge(label: "relance_spool_waiting_files").record(layout.waitingFiles().count)
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }
}
