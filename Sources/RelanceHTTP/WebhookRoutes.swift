import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import RelanceCore
import RelanceSpool
import RelanceStore

/// The daemon's HTTP side: gateway callbacks, the cancellation API, `/healthz`, `/metrics`.
/// TLS is a reverse proxy's job; signatures are checked against `webhooks.public_base_url`.
public struct WebhookRoutes: Sendable {
    public var ledger: any LedgerStore
    /// The settings in force: read once per request, so a reload applies to the next one.
    public var settings: @Sendable () -> WebhookSettings
    public var health: ServiceHealth
    public var registry: PrometheusCollectorRegistry
    public var spool: SpoolLayout
    public var logger: Logger
    public var clock: @Sendable () -> Date

    /// Bodies are small: a callback is a few hundred bytes.
    static let maxBody = 64 * 1024

    public init(
        ledger: any LedgerStore, settings: @escaping @Sendable () -> WebhookSettings, health: ServiceHealth, registry: PrometheusCollectorRegistry,
        spool: SpoolLayout, logger: Logger, clock: @escaping @Sendable () -> Date
    ) {
        self.ledger = ledger
        self.settings = settings
        self.health = health
        self.registry = registry
        self.spool = spool
        self.logger = logger
        self.clock = clock
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/webhooks/:provider") { request, context in
            let name = context.parameters.get("provider") ?? ""
            let settings = self.settings()
            guard let provider = settings.providers[name] else {
                // Not configured: nothing to verify against, and the metric label stays bounded.
                return await self.respond("unknown", request) { _ in throw HTTPError(.notFound, message: "no configured gateway '\(name.prefix(32))'") }
            }
            return await self.respond(provider.name, request) { webhook in
                try provider.verify(webhook, now: self.clock())
                let event = try provider.parse(webhook)
                return try await self.apply(event, replayID: provider.replayID(webhook), provider: provider.name, settings: settings)
            }
        }
        router.post("/api/cancellations") { request, _ in
            await self.respond("cancellations", request) { try await self.cancellation($0, settings: self.settings()) }
        }
        router.get("/healthz") { _, _ in await self.healthz() }
        router.get("/metrics") { _, _ in await self.metrics() }
        return router
    }

    /// Collects the body (64 KiB at most), runs the endpoint, answers its `HTTPError` with its
    /// status and a short reason (never a secret), counts and logs the result.
    func respond(_ endpoint: String, _ request: Request, _ body: (WebhookRequest) async throws -> (HTTPResponse.Status, String)) async -> Response {
        var request = request
        let status: HTTPResponse.Status
        let text: String
        do {
            let buffer: ByteBuffer
            do {
                buffer = try await request.collectBody(upTo: Self.maxBody)
            } catch is NIOTooManyBytesError {
                throw HTTPError(.contentTooLarge, message: "body over 64 KiB")
            } catch {
                // The client stopped before the end of its body: nothing to read, nothing applied.
                throw HTTPError(.badRequest, message: "incomplete body")
            }
            let webhook = WebhookRequest(path: request.uri.path, query: request.uri.query, headers: request.headers, body: Data(buffer: buffer))
            (status, text) = try await body(webhook)
        } catch let error as HTTPError {
            (status, text) = (error.status, error.body ?? error.status.reasonPhrase)
        } catch {
            // The ledger failed: the gateway should retry later.
            logger.error("webhook not applied", metadata: ["relance.webhook": "\(endpoint)", "error": "\(error)"])
            (status, text) = (.serviceUnavailable, "ledger unavailable, retry later")
        }
        Counter(label: "relance_webhook_requests_total", dimensions: [("endpoint", endpoint), ("status", "\(status.code)")]).increment()
        if status.code >= 400 {
            logger.warning("webhook refused", metadata: ["relance.webhook": "\(endpoint)", "relance.status": "\(status.code)", "relance.reason": "\(text)"])
        }
        return Self.text(status, text)
    }

    static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    /// Applies what a verified callback reports.
    func apply(_ event: WebhookEvent, replayID: String?, provider: String, settings: WebhookSettings) async throws -> (HTTPResponse.Status, String) {
        switch event {
        case .status(let callback):
            let result = try await ledger.apply(callback, replayID: replayID, now: clock(), orphanTTL: settings.orphanTTL)
            if result == .orphan {
                logger.notice(
                    "callback for an unknown message id kept as an orphan",
                    metadata: ["relance.provider": "\(provider)", "relance.message_id": "\(callback.messageID.prefix(64))"])
            }
            Counter(label: "relance_callbacks_total", dimensions: [("provider", provider), ("result", result.rawValue)]).increment()
            return (.ok, result == .replay ? "duplicate webhook-id ignored" : result.rawValue)
        case .optOut(let number):
            let e164 = number.hasPrefix("+") ? number : "+" + number
            guard PhoneNumber.isE164(e164) else { throw HTTPError(.badRequest, message: "the sender is not an E.164 number") }
            try await ledger.suppress(e164, reason: "STOP reply", source: provider, now: clock())
            logger.notice("opt-out: number suppressed", metadata: ["relance.provider": "\(provider)"])
            Counter(label: "relance_opt_outs_total", dimensions: [("provider", provider)]).increment()
            return (.ok, "suppressed")
        case .emailOptOut(let address):
            try await ledger.suppress(address, reason: "unsubscribed", source: provider, now: clock())
            logger.notice("opt-out: address suppressed", metadata: ["relance.provider": "\(provider)"])
            Counter(label: "relance_opt_outs_total", dimensions: [("provider", provider)]).increment()
            return (.ok, "suppressed")
        case .bounce(let notice):
            let result = try await ledger.applyBounce(notice, rules: settings.bounceRules, now: clock())
            logger.notice(
                "email bounce reported by the provider",
                metadata: ["relance.provider": "\(provider)", "relance.reminder.id": "\(notice.key.reminderID)", "relance.bounce.result": "\(result.label)"])
            Counter(label: "relance_bounces_total", dimensions: [("source", provider), ("result", result.label)]).increment()
            // Not recorded yet: a 503 makes the provider retry later.
            if result == .notYetRecorded { throw HTTPError(.serviceUnavailable, message: "the send is not recorded yet; retry later") }
            return (.ok, result.label)
        case .ignored(let reason):
            return (.ok, reason)
        }
    }
}
