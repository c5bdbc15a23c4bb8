import Foundation
import RelanceBounces
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
    /// How provider-reported email bounces count (`email.bounce.soft_limit`, `soft_window`).
    public var bounceRules: BounceRules

    public init(providers: [String: any WebhookProvider], apiToken: String?, orphanTTL: Duration, bounceRules: BounceRules = BounceRules()) {
        self.providers = providers
        self.apiToken = apiToken
        self.orphanTTL = orphanTTL
        self.bounceRules = bounceRules
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
            case .brevo, .generic, .outbox: break
            }
        }
        let verp = configuration.email.bounce.map { VERP(domain: $0.domain, secret: $0.secret) }
        // Brevo's SMS webhook, and its email webhook for mail relayed through Brevo's SMTP: either needs the token.
        if sms.providersInUse.contains(.brevo) || !(webhooks.brevoToken ?? "").isEmpty {
            providers["brevo"] = BrevoWebhook(token: webhooks.brevoToken, verp: verp)
        }
        // The Standard Webhooks endpoint serves any gateway that signs that way, once a secret is set.
        if let secret = webhooks.secret, !secret.isEmpty { providers["generic"] = StandardWebhook(secret: secret) }
        self.init(
            providers: providers, apiToken: webhooks.apiToken.flatMap { $0.isEmpty ? nil : $0 }, orphanTTL: webhooks.orphanTTL.value,
            bounceRules: configuration.email.bounce?.rules ?? BounceRules())
    }
}
