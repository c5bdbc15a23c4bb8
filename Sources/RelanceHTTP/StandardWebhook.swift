import Foundation
import Hummingbird
import RelanceCore
import RelanceStore

/// `POST /webhooks/generic`: any gateway that signs the Standard Webhooks way (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`, secret `whsec_…`), JSON `{message_id, status}`.
public struct StandardWebhook: WebhookProvider {
    let secret: String

    public init(secret: String) { self.secret = secret }

    public var name: String { "generic" }

    public func verify(_ request: WebhookRequest, now: Date) throws {
        let verdict = WebhookSignatures.verifyStandardWebhooks(
            secret: secret, id: request.header("webhook-id"), timestamp: request.header("webhook-timestamp"),
            signatureHeader: request.header("webhook-signature"), body: request.body, now: now)
        switch verdict {
        case .valid: return
        case .malformed: throw HTTPError(.forbidden, message: "missing webhook-id, webhook-timestamp or webhook-signature")
        case .staleTimestamp: throw HTTPError(.forbidden, message: "webhook-timestamp outside ±5 minutes")
        case .badSignature: throw HTTPError(.forbidden, message: "bad webhook-signature")
        }
    }

    public func parse(_ request: WebhookRequest) throws -> WebhookEvent {
        let json = try request.jsonObject()
        guard let messageID = json["message_id"], !messageID.isEmpty, let status = json["status"] else {
            throw HTTPError(.badRequest, message: "JSON with message_id and status is required")
        }
        let mapped: StatusCallback.Status
        switch status {
        case "delivered": mapped = .delivered
        case "undelivered", "failed": mapped = .undelivered
        case "bounced": mapped = .bounced
        case "queued", "sent", "accepted": mapped = .inFlight
        default:
            throw HTTPError(.badRequest, message: "unknown status '\(status.debugQuoted)' (delivered, undelivered, failed, bounced, queued, sent, accepted)")
        }
        var raw: [String: String] = ["message_id": messageID, "status": status]
        if let id = request.header("webhook-id") { raw["webhook_id"] = id }
        for key in ["error_code", "occurred_at"] { if let v = json[key] { raw[key] = v } }
        return .status(StatusCallback(provider: name, messageID: messageID, status: mapped, raw: raw))
    }

    /// A retried webhook keeps its `webhook-id`; checked after the signature, so nobody can burn ids.
    public func replayID(_ request: WebhookRequest) -> String? { request.header("webhook-id").map { "generic:" + $0 } }
}
