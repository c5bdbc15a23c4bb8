import Foundation
import RelanceCore
import RelanceTemplates

/// The whole configuration (see `config/relance.example.yaml`). Unknown keys are errors at every
/// level; every value is checked when it is read, so a loaded configuration is a usable one.
public struct RelanceConfiguration: Sendable, Decodable {
    public var spool = Spool()
    public var queues: [String: Queue] = [:]
    public var store = Store()
    public var templates = Templates()
    public var creditor = Creditor.example
    public var defaults = Defaults()
    public var stages = ["pre_due", "reminder_1", "reminder_2", "final_notice"]
    public var email = Email()
    public var sms = SMS()
    public var delivery = Delivery()
    public var webhooks = Webhooks()
    public var log = Log()
    public var policy = Policy()
    public var compliance = Compliance()
    public var retention = Retention()
    public var agency: AgencySettings? = nil
    public var plan = Plan()
    public var receivables = Receivables()
    public var report = Report()
    public var score = Score()

    enum CodingKeys: String, CodingKey, CaseIterable {
        case spool, queues, store, templates, creditor, defaults, stages, email, sms, delivery, webhooks, log, policy, compliance, retention, agency
        case plan, receivables, report, score
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.section(CodingKeys.self)
        spool = try c.value(.spool, or: spool)
        queues = try c.value(.queues, or: queues)
        store = try c.value(.store, or: store)
        templates = try c.value(.templates, or: templates)
        creditor = try c.value(.creditor, or: creditor)
        defaults = try c.value(.defaults, or: defaults)
        stages = try c.value(.stages, or: stages)
        email = try c.value(.email, or: email)
        sms = try c.value(.sms, or: sms)
        delivery = try c.value(.delivery, or: delivery)
        webhooks = try c.value(.webhooks, or: webhooks)
        log = try c.value(.log, or: log)
        policy = try c.value(.policy, or: policy)
        compliance = try c.value(.compliance, or: compliance)
        retention = try c.value(.retention, or: retention)
        agency = try c.value(.agency)
        plan = try c.value(.plan, or: plan)
        receivables = try c.value(.receivables, or: receivables)
        report = try c.value(.report, or: report)
        score = try c.value(.score, or: score)
        for (name, ladder) in plan.ladders {
            for step in ladder.steps where step.action == .send && !stages.contains(step.stage) {
                throw c.invalid(
                    .plan,
                    "plan.ladders.\(name): stage '\(step.stage)' is not a configured stage (\(stages.joined(separator: ", "))): its templates would be missing")
            }
        }
        for name in policy.stages.keys where !stages.contains(name) {
            throw c.invalid(.policy, "policy.stages.\(name): not a configured stage (\(stages.joined(separator: ", ")))")
        }
        for name in queues.keys where name.isEmpty || name.contains("/") || name.hasPrefix(".") {
            throw c.invalid(.queues, "queue name '\(name.debugQuoted)' must be a plain directory name")
        }
    }

    /// The priority and concurrency share of a queue (`default` and unknown queues: priority 0, share 1).
    public func queue(_ name: String) -> Queue { queues[name] ?? Queue() }
}

extension RelanceConfiguration {
    /// `spool:` — the drop directories (DESIGN.md, "Spool protocol").
    public struct Spool: Sendable, Decodable {
        public var root = "/var/spool/relance"
        public var maxFileBytes = 64 * 1024 * 1024
        public var keepDone = true
        public var attachmentsRoot: String? = nil
        public var maxAttachmentBytes = 10 * 1024 * 1024
        /// Fallback rescan of `incoming/` when inotify is unavailable or missed an event.
        public var rescanInterval = ConfigDuration(.seconds(30))

        enum CodingKeys: String, CodingKey, CaseIterable {
            case root
            case maxFileBytes = "max_file_bytes"
            case keepDone = "keep_done"
            case attachmentsRoot = "attachments_root"
            case maxAttachmentBytes = "max_attachment_bytes"
            case rescanInterval = "rescan_interval"
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            root = try c.value(.root, or: root)
            maxFileBytes = try c.value(.maxFileBytes, or: maxFileBytes)
            keepDone = try c.value(.keepDone, or: keepDone)
            attachmentsRoot = try c.value(.attachmentsRoot)
            maxAttachmentBytes = try c.value(.maxAttachmentBytes, or: maxAttachmentBytes)
            rescanInterval = try c.value(.rescanInterval, or: rescanInterval)
            guard maxFileBytes >= 1024 else { throw c.invalid(.maxFileBytes, "must be at least 1024") }
            guard maxAttachmentBytes >= 1 else { throw c.invalid(.maxAttachmentBytes, "must be at least 1") }
            guard rescanInterval.value >= .milliseconds(100) else { throw c.invalid(.rescanInterval, "must be at least 100ms") }
        }
    }

    /// `queues.<name>:` — a named queue's priority and share of the send concurrency.
    public struct Queue: Sendable, Decodable {
        /// Higher goes first.
        public var priority = 0
        /// Fraction (0–1] of `delivery.concurrency` this queue may use at once.
        public var share = 1.0

        enum CodingKeys: String, CodingKey, CaseIterable { case priority, share }
        public init(priority: Int = 0, share: Double = 1.0) {
            self.priority = priority
            self.share = share
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            priority = try c.value(.priority, or: priority)
            share = try c.value(.share, or: share)
            guard share > 0, share <= 1 else { throw c.invalid(.share, "share must be in (0, 1]") }
        }
    }

    /// `store:` — where the ledger lives.
    public struct Store: Sendable, Decodable {
        /// The SQLite ledger (the embedded default), used when `url` is not set.
        public var path = "/var/lib/relance/ledger.sqlite"
        /// A PostgreSQL ledger shared by several nodes (`postgres://USER@HOST:PORT/DATABASE`).
        public var url: PostgresURL?
        /// The PostgreSQL user's password: a credential (`$CREDENTIALS_DIRECTORY/store-password`).
        public var password = ""
        /// This node's name in a cluster (its claims' `locked_by`); default: host name and pid.
        public var nodeID = ""
        /// How long a node's claim on a delivery lasts without renewal (PostgreSQL).
        public var lease = ConfigDuration(.seconds(60))
        /// Connections of this node to PostgreSQL.
        public var connections = 8
        enum CodingKeys: String, CodingKey, CaseIterable {
            case path, url, password
            case nodeID = "node_id"
            case lease, connections
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            path = try c.value(.path, or: path)
            if let text: String = try c.value(.url), !text.isEmpty {
                do { url = try PostgresURL(parsing: text) } catch { throw c.invalid(.url, error.description) }
            }
            password = try c.value(.password, or: password)
            nodeID = try c.value(.nodeID, or: nodeID)
            lease = try c.value(.lease, or: lease)
            connections = try c.value(.connections, or: connections)
            guard lease.value >= .seconds(5) else { throw c.invalid(.lease, "at least 5s (a node renews its claims at a third of it)") }
            guard (1...100).contains(connections) else { throw c.invalid(.connections, "between 1 and 100") }
            guard nodeID.utf8.count <= 200, !nodeID.contains(where: { $0.isNewline || $0 == " " }) else {
                throw c.invalid(.nodeID, "at most 200 bytes, without spaces or line breaks")
            }
        }

        /// This node's id: `node_id`, else the host name and the process id.
        public var node: String {
            nodeID.isEmpty ? "\(ProcessInfo.processInfo.hostName)-\(getpid())" : nodeID
        }
    }

    /// `templates:` — where the templates are, and the values they may use.
    public struct Templates: Sendable, Decodable {
        public var path = "/usr/share/relance/templates"
        /// Days given to pay in a final notice.
        public var deadlineDays = 8
        /// Variables templates may use as `{{vars.NAME}}`, with their default; a record's `vars` override them.
        public var vars: [String: String] = [:]
        enum CodingKeys: String, CodingKey, CaseIterable {
            case path
            case deadlineDays = "deadline_days"
            case vars
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            path = try c.value(.path, or: path)
            deadlineDays = try c.value(.deadlineDays, or: deadlineDays)
            vars = try c.value(.vars, or: vars)
            guard (1...90).contains(deadlineDays) else { throw c.invalid(.deadlineDays, "must be between 1 and 90") }
            for name in vars.keys where name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
                throw c.invalid(.vars, "'\(name.debugQuoted)' is not a variable name (letters, digits and _)")
            }
        }
    }

    /// `defaults:` — what a record leaves out.
    public struct Defaults: Sendable, Decodable {
        public var locale = "fr-FR"
        public var timezone = "Europe/Paris"
        public var country = "FR"
        enum CodingKeys: String, CodingKey, CaseIterable { case locale, timezone, country }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            locale = try c.value(.locale, or: locale)
            timezone = try c.value(.timezone, or: timezone)
            country = try c.value(.country, or: country)
            guard LocaleRules.isKnown(locale) else { throw c.invalid(.locale, "'\(locale.debugQuoted)' is not a BCP 47 tag such as fr-FR") }
            guard TimeZone(identifier: timezone) != nil else { throw c.invalid(.timezone, "'\(timezone.debugQuoted)' is not an IANA time zone") }
            guard country.count == 2, country.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
                throw c.invalid(.country, "'\(country.debugQuoted)' is not an ISO 3166 alpha-2 code such as FR")
            }
        }
    }

    /// `log:` — how much the daemon says.
    public struct Log: Sendable, Decodable {
        public enum Level: String, ConfigChoice { case trace, debug, info, notice, warning, error, critical }
        public var level = Level.info
        enum CodingKeys: String, CodingKey, CaseIterable { case level }
        public init() {}
        public init(from decoder: any Decoder) throws {
            level = try decoder.section(CodingKeys.self).value(.level, or: level)
        }
    }

    /// `retention:` — how long personal data is kept (GDPR art. 5(1)(e)).
    public struct Retention: Sendable, Decodable {
        /// After the last event of a reminder, its personal data is erased.
        public var personalData = ConfigDuration(.seconds(3 * 365 * 86400))
        /// Run the purge once a day in the daemon.
        public var daily = true
        enum CodingKeys: String, CodingKey, CaseIterable {
            case personalData = "personal_data"
            case daily
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            personalData = try c.value(.personalData, or: personalData)
            daily = try c.value(.daily, or: daily)
            guard personalData.value >= .seconds(86400) else { throw c.invalid(.personalData, "must be at least 1d") }
        }
    }

    /// `agency:` — Relance sends for a collection agency acting for the creditor (CPCE R124-4).
    public struct AgencySettings: Sendable, Decodable {
        public var enabled = true
        public var name = ""
        public var address = ""
        enum CodingKeys: String, CodingKey, CaseIterable { case enabled, name, address }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            enabled = try c.value(.enabled, or: enabled)
            name = try c.value(.name, or: name)
            address = try c.value(.address, or: address)
            if enabled && (name.isEmpty || address.isEmpty) {
                throw c.invalid(.name, "agency mode needs the agency's name and address (CPCE R124-4)")
            }
        }
    }

    /// `compliance:` — mandatory and forbidden elements of rendered messages (docs/templates.md).
    public struct Compliance: Sendable, Decodable {
        /// Keep the built-in rules (French law); `false` to replace them with `rules` only.
        public var builtin = true
        public var rules: [ComplianceRule] = []
        enum CodingKeys: String, CodingKey, CaseIterable { case builtin, rules }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            builtin = try c.value(.builtin, or: builtin)
            rules = try c.value(.rules, or: rules)
        }
        public var inForce: [ComplianceRule] { (builtin ? ComplianceRule.defaults : []) + rules }
    }
}
