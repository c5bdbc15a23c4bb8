import Foundation
import RelanceBounces
import RelanceConfig
import RelanceCore
import RelanceSpool
import RelanceTemplates

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
        var settings = ContextSettings(
            creditor: configuration.creditor, deadlineDays: configuration.templates.deadlineDays, defaultLocale: configuration.defaults.locale,
            vars: configuration.templates.vars)
        if let agency = configuration.agency, agency.enabled { settings.agency = Agency(name: agency.name, address: agency.address) }
        settings.penaltyRate = configuration.plan.penaltyRate.map { Decimal(string: String($0)) ?? Decimal($0) }
        guard let from = Mailbox(parsing: configuration.email.from) else { throw UsageError("email.from is not a valid mailbox") }
        self.builder = MessageBuilder(
            templates: templates, settings: settings, from: from, replyTo: configuration.email.replyTo.flatMap(Mailbox.init(parsing:)),
            smsSender: configuration.sms.sender, smsTransliterate: configuration.sms.encoding == .gsm7, smsMaxSegments: configuration.sms.maxSegments)
        self.builder.verp = configuration.email.bounce.map { VERP(domain: $0.domain, secret: $0.secret) }
    }

    /// Template problems for every configured stage (empty when all is well).
    public func templateProblems(now: Date) -> [TemplateError] {
        let problems = templates.check(stages: configuration.stages, settings: builder.settings, now: now)
        return problems
            + templates.complianceProblems(rules: configuration.compliance.inForce, stages: configuration.stages, settings: builder.settings, now: now)
    }
}
