import Foundation
import Hummingbird
import RelanceCore
import RelanceStore

/// `POST /webhooks/twilio`: status callbacks and inbound messages (STOP), form-encoded, signed with
/// `X-Twilio-Signature` (HMAC-SHA1 of the public URL and the sorted parameters, auth token as key).
public struct TwilioWebhook: WebhookProvider {
    let authToken: String
    let publicBaseURL: String?

    public init(authToken: String, publicBaseURL: String?) {
        self.authToken = authToken
        self.publicBaseURL = publicBaseURL
    }

    public var name: String { "twilio" }

    public func verify(_ request: WebhookRequest, now: Date) throws {
        let pairs = try request.formBody()
        guard !authToken.isEmpty else { throw HTTPError(.forbidden, message: "sms.twilio.auth_token is not configured") }
        let url = try request.publicURL(base: publicBaseURL)
        guard let signature = request.header("X-Twilio-Signature"),
            WebhookSignatures.constantTimeEqual(signature, WebhookSignatures.twilio(token: authToken, url: url, parameters: pairs))
        else { throw HTTPError(.forbidden, message: "bad or missing X-Twilio-Signature") }
    }

    public func parse(_ request: WebhookRequest) throws -> WebhookEvent {
        let params = Dictionary(try request.formBody(), uniquingKeysWith: { _, last in last })
        if let status = params["MessageStatus"] ?? params["SmsStatus"], status != "received" {
            guard let sid = params["MessageSid"] ?? params["SmsSid"], !sid.isEmpty else { throw HTTPError(.badRequest, message: "MessageSid is missing") }
            let mapped: StatusCallback.Status =
                switch status {
                case "delivered", "read": .delivered
                case "undelivered", "failed", "canceled": .undelivered
                default: .inFlight
                }
            var raw = params.filter { ["MessageSid", "MessageStatus", "ErrorCode", "To", "From", "ApiVersion", "AccountSid"].contains($0.key) }
            raw["signature"] = "valid"
            return .status(StatusCallback(provider: name, messageID: sid, status: mapped, raw: raw))
        }
        guard let from = params["From"], !from.isEmpty else { throw HTTPError(.badRequest, message: "neither MessageStatus nor an inbound From") }
        return WebhookSignatures.isOptOut(params["Body"] ?? "") ? .optOut(number: from) : .ignored("inbound message ignored")
    }

    /// Twilio sends the same `I-Twilio-Idempotency-Token` when it retries a callback.
    public func replayID(_ request: WebhookRequest) -> String? {
        request.header("I-Twilio-Idempotency-Token").map { "twilio:" + $0 }
    }
}
