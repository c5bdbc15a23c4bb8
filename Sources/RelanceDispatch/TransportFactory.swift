import Foundation
import RelanceConfig
import RelanceCore
import RelanceSpool
import RelanceTransport

extension Transports {
    /// The configured transports, each behind a failover when a secondary is configured. Built at
    /// start and again by every reload, so rotated credentials are in force for the next send.
    public static func make(_ configuration: RelanceConfiguration) throws -> Transports {
        let breaker = configuration.delivery.breaker.breaker
        typealias EmailSend = @Sendable ((String, String, Data)) async -> SendOutcome
        let email: (String, EmailSend)
        var secondaryEmail: (String, EmailSend)?
        switch configuration.email.transport {
        case .outbox:
            let outbox = try MaildirOutbox(directory: configuration.email.outbox.maildir)
            email = ("outbox", { await outbox.send(message: $0.2, returnPath: $0.0) })
        case .smtp:
            email = ("smtp", try smtp(configuration.email.smtp))
            if let secondary = configuration.email.secondarySMTP { secondaryEmail = ("smtp-secondary", try smtp(secondary)) }
        }
        let emailFailover = Failover(primary: email, secondary: secondaryEmail, breaker: breaker)
        let sms = try smsTransport(configuration, provider: configuration.sms.provider, baseURL: configuration.sms.baseURL)
        let secondarySMS = try configuration.sms.secondary.map { try smsTransport(configuration, provider: $0.provider, baseURL: $0.baseURL) }
        let smsFailover = Failover<(SMSMessage, String)>(primary: sms, secondary: secondarySMS, breaker: breaker)
        return Transports(
            emailName: email.0, smsName: sms.0, routedEmail: { from, to, data in await emailFailover.send((from, to, data)) },
            routedSMS: { message, reminderID in await smsFailover.send((message, reminderID)) })
    }

    static func smtp(_ smtp: RelanceConfiguration.Email.SMTP) throws -> @Sendable ((String, String, Data)) async -> SendOutcome {
        let transport = try SMTPTransport(
            configuration: SMTPConfiguration(
                url: smtp.url, startTLS: smtp.starttls == .required ? .required : .none, caFile: smtp.caFile, username: smtp.username,
                password: smtp.password, connections: smtp.connections, connectTimeout: smtp.connectTimeout.value, timeout: smtp.timeout.value,
                heloName: smtp.helo))
        return { await transport.send(from: $0.0, to: $0.1, message: $0.2) }
    }

    /// One SMS provider (or the outbox).
    static func smsTransport(
        _ configuration: RelanceConfiguration, provider kind: RelanceConfiguration.SMS.Provider, baseURL: String?
    ) throws -> (String, @Sendable ((SMSMessage, String)) async -> SendOutcome) {
        let sms = configuration.sms
        let publicBase = configuration.webhooks.publicBaseURL
        let provider: any SMSProvider
        var secrets: [String] = []
        switch kind {
        case .outbox:
            let outbox = try SMSOutbox(path: sms.outbox.path)
            return ("outbox", { item in await outbox.send(to: item.0.to, from: item.0.from, text: item.0.text, reminderID: item.1) })
        case .twilio:
            provider = TwilioProvider(
                baseURL: baseURL ?? "https://api.twilio.com", accountSID: sms.twilio.accountSID, authToken: sms.twilio.authToken,
                statusCallback: publicBase.map { $0 + "/webhooks/twilio" })
            secrets = [sms.twilio.authToken]
        case .vonage:
            provider = VonageProvider(
                baseURL: baseURL ?? "https://rest.nexmo.com", apiKey: sms.vonage.apiKey, apiSecret: sms.vonage.apiSecret,
                callback: publicBase.map { $0 + "/webhooks/vonage" })
            secrets = [sms.vonage.apiSecret, sms.vonage.signatureSecret]
        case .brevo:
            let token = configuration.webhooks.brevoToken
            provider = BrevoProvider(
                baseURL: baseURL ?? "https://api.brevo.com", apiKey: sms.brevo.apiKey,
                webURL: publicBase.map { base in base + "/webhooks/brevo" + (token.map { "?token=" + FormEncoding.encode($0) } ?? "") })
            secrets = [sms.brevo.apiKey] + (token.map { [$0] } ?? [])
        case .generic:
            let generic = sms.generic
            do {
                provider = try GenericProvider(
                    configuration: .init(
                        method: generic.method, url: generic.url, headers: generic.headers, body: generic.body, json: generic.escaping == .json,
                        messageIDPointer: generic.messageIDPointer), callbackURL: publicBase.map { $0 + "/webhooks/generic" })
            } catch let error as GenericProvider.TemplateError {
                throw UsageError(error.description)
            }
            secrets = Array(generic.headers.values)
        }
        let client = try HTTPClient(configuration: HTTPClientConfiguration(connections: sms.connections, timeout: sms.timeout.value))
        let gateway = SMSGateway(provider: provider, client: client, secrets: secrets)
        return (provider.name, { item in await gateway.send(item.0) })
    }
}
