import Foundation
import Hummingbird
import RelanceCore
import RelanceStore

/// `POST /webhooks/brevo?token=…`: Brevo signs nothing, so its URL carries a secret token
/// (`webhooks.brevo_token`), compared in constant time. JSON events: delivery, bounces, replies,
/// unsubscriptions.
public struct BrevoWebhook: WebhookProvider {
    let token: String?

    public init(token: String?) { self.token = token }

    public var name: String { "brevo" }

    public func verify(_ request: WebhookRequest, now: Date) throws {
        guard let expected = token, !expected.isEmpty else { throw HTTPError(.forbidden, message: "webhooks.brevo_token is not configured") }
        let query = Dictionary(try request.queryPairs(), uniquingKeysWith: { _, last in last })
        guard let given = query["token"], WebhookSignatures.constantTimeEqual(given, expected) else {
            throw HTTPError(.forbidden, message: "bad or missing token")
        }
    }

    public func parse(_ request: WebhookRequest) throws -> WebhookEvent {
        let json = try request.jsonObject()
        let event = json["event"] ?? json["msg_status"] ?? ""
        if ["unsubscribe", "unsubscribed"].contains(event) || (event == "replied" && WebhookSignatures.isOptOut(json["reply"] ?? "")) {
            guard let to = json["to"], !to.isEmpty else { throw HTTPError(.badRequest, message: "to is missing") }
            return .optOut(number: to)
        }
        guard let messageID = json["messageId"] ?? json["message_id"], !messageID.isEmpty, !event.isEmpty else {
            throw HTTPError(.badRequest, message: "messageId and event are required")
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
        for key in ["date", "ts_event", "tag", "description", "sms_count"] { if let v = json[key] { raw[key] = v } }
        return .status(StatusCallback(provider: name, messageID: messageID, status: mapped, raw: raw))
    }
}
