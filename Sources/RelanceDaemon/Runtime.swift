import Foundation
import Logging
import RelanceCore
import RelanceStore
import RelanceTemplates
import RelanceTransport
import ServiceLifecycle
import Synchronization

/// An error the operator must fix before the daemon can run (exit code 2: bad usage or input).
public struct UsageError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The resolved configuration and where it came from.
public struct ResolvedConfiguration: Sendable {
    public var configuration: RelanceConfiguration
    public var provenance: ConfigurationLoader.Provenance
    /// Set when no file was given and `/etc/relance/relance.yaml` does not exist.
    public var embeddedStateDirectory: String?

    public static let systemPath = "/etc/relance/relance.yaml"

    /// `--config PATH` (must exist), else `/etc/relance/relance.yaml`, else the embedded default:
    /// state under `$STATE_DIRECTORY` or `./relance-data`, templates from `./templates` or the installed ones.
    public static func resolve(configPath: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ResolvedConfiguration {
        if let configPath {
            guard FileManager.default.fileExists(atPath: configPath) else { throw UsageError("--config \(configPath): no such file") }
            do {
                let (c, p) = try ConfigurationLoader.load(file: configPath, environment: environment)
                return ResolvedConfiguration(configuration: c, provenance: p)
            } catch { throw UsageError("\(error)") }
        }
        if FileManager.default.fileExists(atPath: systemPath) {
            do {
                let (c, p) = try ConfigurationLoader.load(file: systemPath, environment: environment)
                return ResolvedConfiguration(configuration: c, provenance: p)
            } catch { throw UsageError("\(error)") }
        }
        let state =
            environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) }
            ?? (FileManager.default.currentDirectoryPath + "/relance-data")
        let templates =
            FileManager.default.fileExists(atPath: "templates") ? FileManager.default.currentDirectoryPath + "/templates" : "/usr/share/relance/templates"
        let yaml = """
            spool: { root: "\(state)/spool", attachments_root: "\(state)/attachments" }
            store: { path: "\(state)/ledger.sqlite" }
            templates: { path: "\(templates)" }
            email: { transport: outbox, outbox: { maildir: "\(state)/outbox/mail" } }
            sms: { provider: outbox, outbox: { path: "\(state)/outbox/sms.jsonl" } }
            """
        do {
            let (c, p) = try ConfigurationLoader.load(file: nil, yaml: yaml, environment: environment)
            return ResolvedConfiguration(configuration: c, provenance: p, embeddedStateDirectory: state)
        } catch { throw UsageError("\(error)") }
    }

    public func logSource(_ logger: Logger) {
        if let state = embeddedStateDirectory {
            logger.notice(
                "no configuration file: running on the embedded default (outbox transports, SQLite ledger)",
                metadata: ["relance.state": "\(state)", "relance.templates": "\(configuration.templates.path)"])
        } else {
            logger.info("configuration loaded", metadata: ["relance.config": "\(provenance.file ?? "-")"])
        }
        if !provenance.environment.isEmpty {
            logger.info("environment overrides", metadata: ["relance.keys": "\(provenance.environment.joined(separator: ","))"])
        }
        if !provenance.credentials.isEmpty { logger.info("credentials loaded", metadata: ["relance.keys": "\(provenance.credentials.joined(separator: ","))"]) }
    }
}

/// The pieces the daemon and the CLI commands share, built from one configuration.
public struct Components: Sendable {
    public var configuration: RelanceConfiguration
    public var layout: SpoolLayout
    public var parser: SpoolFileParser
    public var templates: TemplateSet
    public var builder: MessageBuilder

    public init(_ configuration: RelanceConfiguration) throws {
        self.configuration = configuration
        self.layout = SpoolLayout(root: configuration.spool.root)
        let rules = RecordRules(
            stages: configuration.stages, defaultCountry: configuration.defaults.country, defaultLocale: configuration.defaults.locale,
            defaultTimezone: configuration.defaults.timezone, attachmentsRoot: configuration.spool.attachmentsRoot,
            maxAttachmentBytes: configuration.spool.maxAttachmentBytes,
            inspectAttachment: AttachmentInspector.inspect(root: configuration.spool.attachmentsRoot, maxBytes: configuration.spool.maxAttachmentBytes))
        self.parser = SpoolFileParser(validator: RecordValidator(rules: rules), maxFileBytes: configuration.spool.maxFileBytes)
        do {
            self.templates = try TemplateSet(directory: configuration.templates.path, defaultLocale: configuration.defaults.locale)
        } catch { throw UsageError("templates: \(error)") }
        var settings = ContextSettings(creditor: configuration.creditor, deadlineDays: configuration.templates.deadlineDays)
        if let agency = configuration.agency, agency.enabled { settings.agency = Agency(name: agency.name, address: agency.address) }
        guard let from = Mailbox(parsing: configuration.email.from) else { throw UsageError("email.from is not a valid mailbox") }
        self.builder = MessageBuilder(
            templates: templates, settings: settings, from: from, replyTo: configuration.email.replyTo.flatMap(Mailbox.init(parsing:)),
            smsSender: configuration.sms.sender, smsTransliterate: configuration.sms.encoding == .gsm7, smsMaxSegments: configuration.sms.maxSegments)
    }

    /// Template problems for every configured stage (empty when all is well).
    public func templateProblems(now: Date) -> [TemplateError] {
        let problems = templates.check(stages: configuration.stages, settings: builder.settings, now: now)
        return problems
            + templates.complianceProblems(rules: configuration.compliance.inForce, stages: configuration.stages, settings: builder.settings, now: now)
    }

    /// The configured transports, each behind a failover when a secondary is configured.
    public func makeTransports() throws -> Transports {
        let breaker = CircuitBreaker(threshold: configuration.delivery.breaker.failures, cooldown: configuration.delivery.breaker.cooldown.value)
        typealias EmailSend = @Sendable ((String, String, Data)) async -> SendOutcome
        let email: (String, EmailSend)
        var secondaryEmail: (String, EmailSend)?
        switch configuration.email.transport {
        case .outbox:
            let outbox = try MaildirOutbox(directory: configuration.email.outbox.maildir)
            email = ("outbox", { await outbox.send(message: $0.2) })
        case .smtp:
            email = ("smtp", try Self.smtp(configuration.email.smtp))
            if let secondary = configuration.email.secondarySMTP { secondaryEmail = ("smtp-secondary", try Self.smtp(secondary)) }
        }
        let emailFailover = Failover(primary: email, secondary: secondaryEmail, breaker: breaker)
        let sms = try makeSMSTransport(provider: configuration.sms.provider, baseURL: configuration.sms.baseURL)
        let secondarySMS = try configuration.sms.secondary.map { try makeSMSTransport(provider: $0.provider, baseURL: $0.baseURL) }
        let smsFailover = Failover<(SMSMessage, String)>(primary: sms, secondary: secondarySMS, breaker: breaker)
        return Transports(
            emailName: email.0, smsName: sms.0, routedEmail: { from, to, data in await emailFailover.send((from, to, data)) },
            routedSMS: { message, reminderID in await smsFailover.send((message, reminderID)) })
    }

    static func smtp(_ smtp: RelanceConfiguration.Email.SMTP) throws -> @Sendable ((String, String, Data)) async -> SendOutcome {
        let transport = try SMTPTransport(
            configuration: SMTPConfiguration(
                url: smtp.url, startTLS: smtp.starttls, caFile: smtp.caFile, username: smtp.username, password: smtp.password,
                connections: smtp.connections, connectTimeout: smtp.connectTimeout.value, timeout: smtp.timeout.value, heloName: smtp.helo))
        return { await transport.send(from: $0.0, to: $0.1, message: $0.2) }
    }

    /// One SMS provider (or the outbox).
    func makeSMSTransport(
        provider kind: RelanceConfiguration.SMS.Provider, baseURL: String?
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
                webURL: publicBase.map { base in base + "/webhooks/brevo" + (token.map { "?token=" + HTTPRequest.formEncode($0) } ?? "") })
            secrets = [sms.brevo.apiKey] + (token.map { [$0] } ?? [])
        case .generic:
            provider = try GenericProvider(configuration: sms.generic, callbackURL: publicBase.map { $0 + "/webhooks/generic" })
            secrets = Array(sms.generic.headers.values)
        }
        let client = try HTTPClient(configuration: HTTPClientConfiguration(connections: sms.connections, timeout: sms.timeout.value))
        let gateway = SMSGateway(provider: provider, client: client, secrets: secrets)
        return (provider.name, { item in await gateway.send(item.0) })
    }
}

/// `flock` on `<ledger>.lock`: only one daemon may own a ledger.
public final class LedgerLock: Sendable {
    let fd: Int32
    public let path: String

    public init(ledgerPath: String) throws {
        path = ledgerPath + ".lock"
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw UsageError("cannot open lock file \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw LockHeld(description: "another relance serve (pid \(holder)) owns the ledger \(ledgerPath); refusing to start")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    deinit { close(fd) }

    public struct LockHeld: Error, CustomStringConvertible { public var description: String }
}
