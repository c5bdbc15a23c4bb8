import Foundation
import RelanceConfig
import RelanceCore

/// What the HTTP side takes from the configuration, built whole and swapped whole by a reload: a
/// rotated secret is in force for the next request.
public struct WebhookSettings: Sendable {
    /// The callback endpoints of the configured gateways, by name; any other name answers 404.
    public var providers: [String: any WebhookProvider]
    /// Bearer token of `POST /api/cancellations` (nil: the endpoint answers 404).
    public var apiToken: String?
    public var orphanTTL: Duration

    public init(providers: [String: any WebhookProvider], apiToken: String?, orphanTTL: Duration) {
        self.providers = providers
        self.apiToken = apiToken
        self.orphanTTL = orphanTTL
    }

    public init(_ configuration: RelanceConfiguration) {
        let sms = configuration.sms
        let webhooks = configuration.webhooks
        var providers: [String: any WebhookProvider] = [:]
        for provider in sms.providersInUse {
            switch provider {
            case .twilio: providers["twilio"] = TwilioWebhook(authToken: sms.twilio.authToken, publicBaseURL: webhooks.publicBaseURL)
            case .vonage:
                providers["vonage"] = VonageWebhook(
                    signatureSecret: sms.vonage.signatureSecret, method: sms.vonage.signatureMethod, acceptUnsigned: sms.vonage.insecureUnsigned)
            case .brevo: providers["brevo"] = BrevoWebhook(token: webhooks.brevoToken)
            case .generic, .outbox: break
            }
        }
        // The Standard Webhooks endpoint serves any gateway that signs that way, once a secret is set.
        if let secret = webhooks.secret, !secret.isEmpty { providers["generic"] = StandardWebhook(secret: secret) }
        self.init(providers: providers, apiToken: webhooks.apiToken.flatMap { $0.isEmpty ? nil : $0 }, orphanTTL: webhooks.orphanTTL.value)
    }
}
