import Foundation
import HTTPTypes
import Hummingbird
import RelanceCore
import RelanceStore

extension WebhookRoutes {
    /// `POST /api/cancellations`: a cancellation record (`{"cancel": {…}}`), bearer token from
    /// `webhooks.api_token`. Applied and committed before the answer: a 200 means no delivery it
    /// matches will be marked `sending` afterwards.
    func cancellation(_ request: WebhookRequest, settings: WebhookSettings) async throws -> (HTTPResponse.Status, String) {
        guard let token = settings.apiToken else { throw HTTPError(.notFound, message: "webhooks.api_token is not set") }
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), WebhookSignatures.constantTimeEqual(String(header.dropFirst("Bearer ".count)), token) else {
            throw HTTPError(.unauthorized, message: "a valid bearer token is required")
        }
        guard request.contentType == "application/json" else { throw HTTPError(.unsupportedMediaType, message: "expected JSON") }
        switch CancellationRequest.validate(request.body) {
        case .failure(let issues):
            throw HTTPError(
                .unprocessableContent, message: issues.issues.map { "\($0.field.isEmpty ? "body" : $0.field): \($0.reason)" }.joined(separator: "; "))
        case .success(let cancel):
            if let until = cancel.until, until <= clock() {
                throw HTTPError(.unprocessableContent, message: "cancel.until: a pause must end in the future")
            }
            let result = try await ledger.cancel(cancel, source: "api", now: clock())
            logger.notice(
                "cancellation applied",
                metadata: ["relance.cancel": "\(cancel.summary)", "relance.cancelled": "\(result.cancelled)", "relance.paused": "\(result.paused)"])
            return (.ok, "{\"matched\":\(result.matched),\"cancelled\":\(result.cancelled),\"paused\":\(result.paused),\"settled\":\(result.settled)}")
        }
    }
}
