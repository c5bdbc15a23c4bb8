import Foundation
import Hummingbird
import RelanceBounces
import RelanceCore
import RelanceStore

/// `POST /webhooks/brevo?token=…`: Brevo signs nothing, so its URL carries a secret token
/// (`webhooks.brevo_token`), compared in constant time. JSON events of both of Brevo's webhooks:
/// transactional SMS (delivery, bounces, replies, unsubscriptions; `messageId`) and transactional
/// email (`hard_bounce`, `soft_bounce`, `blocked`, `invalid_email`, `unsubscribed`; `email` and
/// `message-id`). An email event names its delivery by the Message-ID Relance set (Brevo keeps it
/// for messages relayed over SMTP, which have no provider id), or by a VERP token in
/// `X-Mailin-custom` or `X-Relance-Delivery`.
public struct BrevoWebhook: WebhookProvider {
    let token: String?
    let verp: VERP?

    public init(token: String?, verp: VERP? = nil) {
        self.token = token
        self.verp = verp
    }

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
        if let email = json["email"], json["message-id"] != nil || json["event"] == "unsubscribed" {
            return try emailEvent(json, email: email)
        }
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

    /// A transactional-email event: a bounce goes through the bounce rules, an unsubscription
    /// suppresses the address, anything else (delivered, opened, clicked, deferred…) changes nothing.
    func emailEvent(_ json: [String: String], email: String) throws -> WebhookEvent {
        let event = json["event"] ?? ""
        guard EmailAddress.isValid(email) else { throw HTTPError(.badRequest, message: "email is not an address") }
        if event == "unsubscribed" { return .emailOptOut(address: email) }
        let kind: BounceClassifier.Kind
        switch event {
        case "hard_bounce", "invalid_email", "blocked": kind = .hard
        case "soft_bounce": kind = .soft
        default: return .ignored("email event '\(event.prefix(32))': nothing to apply")
        }
        let messageID = json["message-id"] ?? ""
        var key: DeliveryKey?
        for field in ["X-Mailin-custom", "X-Relance-Delivery"] {
            if let value = json[field], let verp, case .success(let verified) = verp.verify(value) { key = verified }
        }
        if key == nil, let named = MIME.deliveryKey(fromMessageID: messageID), named.channel == Channel.email.rawValue {
            key = DeliveryKey(reminderID: named.reminderID, channel: .email)
        }
        guard let key else { return .ignored("email event for a message Relance did not send (message-id \(messageID.prefix(64)))") }
        let reason = json["reason"].map { "\(event): \($0)" } ?? event
        let recipient = BounceClassifier.Recipient(address: email, kind: kind, status: nil, diagnostic: reason)
        let reference = "brevo:\(messageID):\(event):\(json["ts_event"] ?? json["ts_epoch"] ?? json["ts"] ?? "")"
        return .bounce(BounceNotice(key: key, recipients: [recipient], source: name, reference: reference))
    }
}
