import Foundation
import Hummingbird
import RelanceConfig
import RelanceCore
import RelanceStore

/// `POST /webhooks/vonage`: delivery receipts (one per part) and inbound messages, as JSON, a form
/// or a query string, signed with `sig` (Vonage signed requests). Unsigned receipts are accepted
/// only with `sms.vonage.insecure_unsigned: true`.
public struct VonageWebhook: WebhookProvider {
    let signatureSecret: String
    let method: RelanceConfiguration.SMS.Vonage.SignatureMethod
    let acceptUnsigned: Bool

    public init(signatureSecret: String, method: RelanceConfiguration.SMS.Vonage.SignatureMethod, acceptUnsigned: Bool) {
        self.signatureSecret = signatureSecret
        self.method = method
        self.acceptUnsigned = acceptUnsigned
    }

    public var name: String { "vonage" }

    /// Every parameter: the query's, then the body's (JSON or form).
    func parameters(_ request: WebhookRequest) throws -> [String: String] {
        var params = Dictionary(try request.queryPairs(), uniquingKeysWith: { _, last in last })
        switch request.contentType {
        case "application/json": params.merge(try request.jsonObject()) { _, body in body }
        case "application/x-www-form-urlencoded": params.merge(try request.formBody(), uniquingKeysWith: { _, body in body })
        default:
            guard request.body.isEmpty else { throw HTTPError(.unsupportedMediaType, message: "expected JSON or a form") }
        }
        return params
    }

    public func verify(_ request: WebhookRequest, now: Date) throws {
        let params = try parameters(request)
        if signatureSecret.isEmpty {
            guard acceptUnsigned else { throw HTTPError(.forbidden, message: "sms.vonage.signature_secret is not configured") }
            return
        }
        guard let sig = params["sig"],
            WebhookSignatures.constantTimeEqual(sig.lowercased(), WebhookSignatures.vonage(secret: signatureSecret, method: method, parameters: params))
        else { throw HTTPError(.forbidden, message: "bad or missing sig") }
        guard let timestamp = params["timestamp"].flatMap(ASCIIDigits.integer), abs(now.timeIntervalSince1970 - Double(timestamp)) <= 300 else {
            throw HTTPError(.forbidden, message: "missing or stale timestamp")
        }
    }

    public func parse(_ request: WebhookRequest) throws -> WebhookEvent {
        let params = try parameters(request)
        if let messageID = params["messageId"], !messageID.isEmpty, let status = params["status"] {
            let mapped: StatusCallback.Status =
                switch status {
                case "delivered": .delivered
                case "expired", "failed", "rejected": .undelivered
                default: .inFlight
                }
            let raw = params.filter { ["messageId", "status", "err-code", "network-code", "client-ref", "message-timestamp", "scts"].contains($0.key) }
            return .status(StatusCallback(provider: name, messageID: messageID, status: mapped, raw: raw))
        }
        if let msisdn = params["msisdn"], !msisdn.isEmpty, let text = params["text"] {
            return WebhookSignatures.isOptOut(text) ? .optOut(number: msisdn) : .ignored("inbound message ignored")
        }
        throw HTTPError(.badRequest, message: "neither a delivery receipt (messageId, status) nor an inbound message")
    }
}
