import Foundation
import RelanceCore
import RelanceTemplates
import RelanceTransport
import Yams

/// A duration in configuration: `500ms`, `30s`, `5m`, `1h`, `2d`, or a number of seconds.
public struct ConfigDuration: Sendable, Hashable, Codable, CustomStringConvertible {
    public var value: Duration
    public init(_ value: Duration) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let seconds = try? c.decode(Int.self) {
            value = .seconds(seconds)
            return
        }
        let text = try c.decode(String.self)
        guard let d = Duration(text: text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "'\(text)' is not a duration (e.g. 500ms, 30s, 5m, 1h, 2d)")
        }
        value = d
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public var description: String { "\(Int(value.seconds))s" }
}

/// The whole configuration (see `config/relance.example.yaml`). Unknown keys are errors at every level.
public struct RelanceConfiguration: Sendable, Decodable {
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
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            root = try c.decodeIfPresent(String.self, forKey: .root) ?? root
            maxFileBytes = try c.decodeIfPresent(Int.self, forKey: .maxFileBytes) ?? maxFileBytes
            keepDone = try c.decodeIfPresent(Bool.self, forKey: .keepDone) ?? keepDone
            attachmentsRoot = try c.decodeIfPresent(String.self, forKey: .attachmentsRoot)
            maxAttachmentBytes = try c.decodeIfPresent(Int.self, forKey: .maxAttachmentBytes) ?? maxAttachmentBytes
            rescanInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .rescanInterval) ?? rescanInterval
        }
    }

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
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            priority = try c.decodeIfPresent(Int.self, forKey: .priority) ?? 0
            share = try c.decodeIfPresent(Double.self, forKey: .share) ?? 1.0
            guard share > 0, share <= 1 else {
                throw DecodingError.dataCorruptedError(forKey: .share, in: c, debugDescription: "share must be in (0, 1]")
            }
        }
    }

    public struct Store: Sendable, Decodable {
        public var path = "/var/lib/relance/ledger.sqlite"
        enum CodingKeys: String, CodingKey, CaseIterable { case path }
        public init() {}
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            path = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(String.self, forKey: .path) ?? path
        }
    }

    public struct Templates: Sendable, Decodable {
        public var path = "/usr/share/relance/templates"
        /// Days given to pay in a final notice.
        public var deadlineDays = 8
        enum CodingKeys: String, CodingKey, CaseIterable {
            case path
            case deadlineDays = "deadline_days"
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            path = try c.decodeIfPresent(String.self, forKey: .path) ?? path
            deadlineDays = try c.decodeIfPresent(Int.self, forKey: .deadlineDays) ?? deadlineDays
        }
    }

    public struct Defaults: Sendable, Decodable {
        public var locale = "fr-FR"
        public var timezone = "Europe/Paris"
        public var country = "FR"
        enum CodingKeys: String, CodingKey, CaseIterable { case locale, timezone, country }
        public init() {}
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            locale = try c.decodeIfPresent(String.self, forKey: .locale) ?? locale
            timezone = try c.decodeIfPresent(String.self, forKey: .timezone) ?? timezone
            country = try c.decodeIfPresent(String.self, forKey: .country) ?? country
        }
    }

    public struct Email: Sendable, Decodable {
        public enum Transport: String, Sendable, Decodable { case outbox, smtp }
        public struct SMTP: Sendable, Decodable {
            public var url = "smtp://127.0.0.1:25"
            public var starttls = SMTPConfiguration.StartTLS.required
            public var caFile: String? = nil
            public var username: String? = nil
            public var password: String? = nil
            public var connections = 4
            public var timeout = ConfigDuration(.seconds(60))
            public var connectTimeout = ConfigDuration(.seconds(10))
            public var helo: String? = nil
            enum CodingKeys: String, CodingKey, CaseIterable {
                case url, starttls
                case caFile = "ca_file"
                case username, password, connections, timeout
                case connectTimeout = "connect_timeout"
                case helo
            }
            public init() {}
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                url = try c.decodeIfPresent(String.self, forKey: .url) ?? url
                starttls = try c.decodeIfPresent(SMTPConfiguration.StartTLS.self, forKey: .starttls) ?? starttls
                caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
                username = try c.decodeIfPresent(String.self, forKey: .username)
                password = try c.decodeIfPresent(String.self, forKey: .password)
                connections = try c.decodeIfPresent(Int.self, forKey: .connections) ?? connections
                timeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .timeout) ?? timeout
                connectTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .connectTimeout) ?? connectTimeout
                helo = try c.decodeIfPresent(String.self, forKey: .helo)
                let lower = url.lowercased()
                guard lower.hasPrefix("smtp://") || lower.hasPrefix("smtps://") else {
                    throw DecodingError.dataCorruptedError(forKey: .url, in: c, debugDescription: "must start with smtp:// or smtps://")
                }
                guard (1...64).contains(connections) else {
                    throw DecodingError.dataCorruptedError(forKey: .connections, in: c, debugDescription: "must be between 1 and 64")
                }
            }
        }
        public struct Outbox: Sendable, Decodable {
            public var maildir = "/var/lib/relance/outbox/mail"
            enum CodingKeys: String, CodingKey, CaseIterable { case maildir }
            public init() {}
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                maildir = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(String.self, forKey: .maildir) ?? maildir
            }
        }
        public var transport = Transport.outbox
        public var from = "Relance <relances@example.invalid>"
        public var replyTo: String? = nil
        /// Messages a second at most (token bucket); 0: unlimited.
        public var rate = 0.0
        public var smtp = SMTP()
        /// A second relay, used while the first is paused by its circuit breaker.
        public var secondarySMTP: SMTP? = nil
        public var outbox = Outbox()
        enum CodingKeys: String, CodingKey, CaseIterable {
            case transport, from
            case replyTo = "reply_to"
            case rate, smtp
            case secondarySMTP = "secondary_smtp"
            case outbox
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            transport = try c.decodeIfPresent(Transport.self, forKey: .transport) ?? transport
            from = try c.decodeIfPresent(String.self, forKey: .from) ?? from
            replyTo = try c.decodeIfPresent(String.self, forKey: .replyTo)
            rate = try c.decodeIfPresent(Double.self, forKey: .rate) ?? rate
            smtp = try c.decodeIfPresent(SMTP.self, forKey: .smtp) ?? smtp
            secondarySMTP = try c.decodeIfPresent(SMTP.self, forKey: .secondarySMTP)
            outbox = try c.decodeIfPresent(Outbox.self, forKey: .outbox) ?? outbox
            guard Mailbox(parsing: from) != nil else {
                throw DecodingError.dataCorruptedError(
                    forKey: .from, in: c, debugDescription: "'\(from.debugQuoted)' is not a valid mailbox (Name <address@domain>)")
            }
            if let replyTo, Mailbox(parsing: replyTo) == nil {
                throw DecodingError.dataCorruptedError(forKey: .replyTo, in: c, debugDescription: "'\(replyTo.debugQuoted)' is not a valid mailbox")
            }
        }
    }

    public struct SMS: Sendable, Decodable {
        public enum Provider: String, Sendable, Decodable, CaseIterable { case outbox, twilio, vonage, brevo, generic }
        public enum Encoding: String, Sendable, Decodable { case auto, gsm7 }
        public struct Outbox: Sendable, Decodable {
            public var path = "/var/lib/relance/outbox/sms.jsonl"
            enum CodingKeys: String, CodingKey, CaseIterable { case path }
            public init() {}
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                path = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(String.self, forKey: .path) ?? path
            }
        }
        public struct Twilio: Sendable, Decodable {
            public var accountSID = ""
            public var authToken = ""
            enum CodingKeys: String, CodingKey, CaseIterable {
                case accountSID = "account_sid"
                case authToken = "auth_token"
            }
            public init() {}
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                accountSID = try c.decodeIfPresent(String.self, forKey: .accountSID) ?? ""
                authToken = try c.decodeIfPresent(String.self, forKey: .authToken) ?? ""
            }
        }
        public struct Vonage: Sendable, Decodable {
            public var apiKey = ""
            public var apiSecret = ""
            public var signatureSecret = ""
            /// As chosen in the Vonage dashboard: md5hash (Vonage's default), md5, sha1, sha256, sha512.
            public var signatureMethod = WebhookSignatures.VonageMethod.md5hash
            enum CodingKeys: String, CodingKey, CaseIterable {
                case apiKey = "api_key"
                case apiSecret = "api_secret"
                case signatureSecret = "signature_secret"
                case signatureMethod = "signature_method"
            }
            public init() {}
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                apiKey = try c.decodeIfPresent(String.self, forKey: .apiKey) ?? ""
                apiSecret = try c.decodeIfPresent(String.self, forKey: .apiSecret) ?? ""
                signatureSecret = try c.decodeIfPresent(String.self, forKey: .signatureSecret) ?? ""
                signatureMethod = try c.decodeIfPresent(WebhookSignatures.VonageMethod.self, forKey: .signatureMethod) ?? signatureMethod
            }
        }
        public struct Brevo: Sendable, Decodable {
            public var apiKey = ""
            enum CodingKeys: String, CodingKey, CaseIterable { case apiKey = "api_key" }
            public init() {}
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                apiKey = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(String.self, forKey: .apiKey) ?? ""
            }
        }
        /// Any other gateway, described by configuration.
        public struct Generic: Sendable, Decodable {
            public enum Escaping: String, Sendable, Decodable { case json, form }
            public var method = "POST"
            public var url = ""
            public var headers: [String: String] = [:]
            /// A Mustache template; values are escaped for `escaping`.
            public var body = ""
            public var escaping = Escaping.json
            /// RFC 6901 pointer to the message id in the JSON response, e.g. `/messages/0/id`.
            public var messageIDPointer = "/id"
            enum CodingKeys: String, CodingKey, CaseIterable {
                case method, url, headers, body, escaping
                case messageIDPointer = "message_id_pointer"
            }
            public init() {}
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                method = try c.decodeIfPresent(String.self, forKey: .method) ?? method
                url = try c.decodeIfPresent(String.self, forKey: .url) ?? url
                headers = try c.decodeIfPresent([String: String].self, forKey: .headers) ?? headers
                body = try c.decodeIfPresent(String.self, forKey: .body) ?? body
                escaping = try c.decodeIfPresent(Escaping.self, forKey: .escaping) ?? escaping
                messageIDPointer = try c.decodeIfPresent(String.self, forKey: .messageIDPointer) ?? messageIDPointer
                guard messageIDPointer.isEmpty || messageIDPointer.hasPrefix("/") else {
                    throw DecodingError.dataCorruptedError(forKey: .messageIDPointer, in: c, debugDescription: "a JSON pointer starts with '/'")
                }
            }
        }

        public var provider = Provider.outbox
        public var sender = "RELANCE"
        /// The provider's API base URL (default: the provider's own); point it at the simulator for staging and tests.
        public var baseURL: String? = nil
        /// Parallel HTTP connections to the provider (bounds its concurrency).
        public var connections = 4
        /// Messages a second at most (token bucket); 0: unlimited.
        public var rate = 0.0
        public var timeout = ConfigDuration(.seconds(30))
        public var encoding = Encoding.auto
        public var maxSegments = 3
        public var twilio = Twilio()
        public var vonage = Vonage()
        public var brevo = Brevo()
        public var generic = Generic()
        public var outbox = Outbox()
        /// A second gateway (its credentials in its own section), used while the first is paused.
        public var secondary: Secondary? = nil
        public struct Secondary: Sendable, Decodable {
            public var provider: Provider
            public var baseURL: String?
            enum CodingKeys: String, CodingKey, CaseIterable {
                case provider
                case baseURL = "base_url"
            }
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                provider = try c.decode(Provider.self, forKey: .provider)
                baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL)
            }
        }
        enum CodingKeys: String, CodingKey, CaseIterable {
            case provider, sender
            case baseURL = "base_url"
            case connections, rate, timeout, encoding
            case maxSegments = "max_segments"
            case twilio, vonage, brevo, generic, outbox, secondary
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if let name = try c.decodeIfPresent(String.self, forKey: .provider) {
                guard let p = Provider(rawValue: name) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .provider, in: c, debugDescription: "'\(name)' is not a provider (\(Provider.allCases.map(\.rawValue).joined(separator: ", ")))"
                    )
                }
                provider = p
            }
            sender = try c.decodeIfPresent(String.self, forKey: .sender) ?? sender
            baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL)
            connections = try c.decodeIfPresent(Int.self, forKey: .connections) ?? connections
            rate = try c.decodeIfPresent(Double.self, forKey: .rate) ?? rate
            timeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .timeout) ?? timeout
            encoding = try c.decodeIfPresent(Encoding.self, forKey: .encoding) ?? encoding
            maxSegments = try c.decodeIfPresent(Int.self, forKey: .maxSegments) ?? maxSegments
            twilio = try c.decodeIfPresent(Twilio.self, forKey: .twilio) ?? twilio
            vonage = try c.decodeIfPresent(Vonage.self, forKey: .vonage) ?? vonage
            brevo = try c.decodeIfPresent(Brevo.self, forKey: .brevo) ?? brevo
            generic = try c.decodeIfPresent(Generic.self, forKey: .generic) ?? generic
            outbox = try c.decodeIfPresent(Outbox.self, forKey: .outbox) ?? outbox
            secondary = try c.decodeIfPresent(Secondary.self, forKey: .secondary)
            guard (1...64).contains(connections) else {
                throw DecodingError.dataCorruptedError(forKey: .connections, in: c, debugDescription: "must be between 1 and 64")
            }
            guard (1...10).contains(maxSegments) else {
                throw DecodingError.dataCorruptedError(forKey: .maxSegments, in: c, debugDescription: "must be between 1 and 10")
            }
            if let baseURL, !(baseURL.hasPrefix("https://") || baseURL.hasPrefix("http://")) {
                throw DecodingError.dataCorruptedError(forKey: .baseURL, in: c, debugDescription: "must be an http(s) URL")
            }
            var missing: [String] = []
            for provider in [provider] + (secondary.map { [$0.provider] } ?? []) {
                switch provider {
                case .twilio:
                    missing += [("sms.twilio.account_sid", twilio.accountSID), ("sms.twilio.auth_token", twilio.authToken)].filter { $0.1.isEmpty }.map(\.0)
                case .vonage: missing += [("sms.vonage.api_key", vonage.apiKey), ("sms.vonage.api_secret", vonage.apiSecret)].filter { $0.1.isEmpty }.map(\.0)
                case .brevo: missing += brevo.apiKey.isEmpty ? ["sms.brevo.api_key"] : []
                case .generic: missing += [("sms.generic.url", generic.url), ("sms.generic.body", generic.body)].filter { $0.1.isEmpty }.map(\.0)
                case .outbox: break
                }
            }
            if !missing.isEmpty {
                throw DecodingError.dataCorruptedError(
                    forKey: .provider, in: c,
                    debugDescription: "the SMS provider needs \(missing.joined(separator: ", ")) (in the file, the environment or a credential)")
            }
        }
    }

    /// The HTTP side: gateway status callbacks, `/healthz`, `/metrics`.
    public struct Webhooks: Sendable, Decodable {
        /// `host:port` to listen on (`:0` picks a free port, logged); empty disables the server.
        public var listen = "127.0.0.1:8787"
        /// The URL gateways reach this daemon at (behind the TLS proxy), e.g. `https://relance.example.fr`.
        public var publicBaseURL: String? = nil
        /// Standard Webhooks secret (`whsec_…`) of `/webhooks/generic`.
        public var secret: String? = nil
        /// Secret token in Brevo's callback URL (Brevo signs nothing).
        public var brevoToken: String? = nil
        /// Bearer token of `POST /api/cancellations` (unset: the endpoint answers 404).
        public var apiToken: String? = nil
        /// How long a callback for an unknown message id is kept, in case its send commits late.
        public var orphanTTL = ConfigDuration(.seconds(86400))
        enum CodingKeys: String, CodingKey, CaseIterable {
            case listen
            case publicBaseURL = "public_base_url"
            case secret
            case brevoToken = "brevo_token"
            case apiToken = "api_token"
            case orphanTTL = "orphan_ttl"
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            listen = try c.decodeIfPresent(String.self, forKey: .listen) ?? listen
            publicBaseURL = try c.decodeIfPresent(String.self, forKey: .publicBaseURL).map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            secret = try c.decodeIfPresent(String.self, forKey: .secret)
            brevoToken = try c.decodeIfPresent(String.self, forKey: .brevoToken)
            apiToken = try c.decodeIfPresent(String.self, forKey: .apiToken)
            if let apiToken, !apiToken.isEmpty, apiToken.count < 24 {
                throw DecodingError.dataCorruptedError(forKey: .apiToken, in: c, debugDescription: "must be at least 24 characters (e.g. openssl rand -hex 24)")
            }
            orphanTTL = try c.decodeIfPresent(ConfigDuration.self, forKey: .orphanTTL) ?? orphanTTL
            if !listen.isEmpty && hostAndPort == nil {
                throw DecodingError.dataCorruptedError(forKey: .listen, in: c, debugDescription: "'\(listen)' is not host:port")
            }
            if let secret, !secret.isEmpty, WebhookSignatures.standardWebhooks(secret: secret, id: "", timestamp: "", body: Data()) == nil {
                throw DecodingError.dataCorruptedError(forKey: .secret, in: c, debugDescription: "must be whsec_ followed by base64")
            }
        }

        /// `listen` split, or nil when it is not `host:port`.
        public var hostAndPort: (host: String, port: Int)? {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else { return nil }
            let host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            return host.isEmpty ? nil : (host, port)
        }
    }

    public struct Delivery: Sendable, Decodable {
        public enum InDoubt: String, Sendable, Decodable { case hold, resend }
        public struct Retry: Sendable, Decodable {
            public var first = ConfigDuration(.seconds(300))
            public var max = ConfigDuration(.seconds(3600))
            public var lifetime = ConfigDuration(.seconds(2 * 86400))
            /// ±fraction of each delay (0.1 = ±10 %).
            public var jitter = 0.1
            enum CodingKeys: String, CodingKey, CaseIterable { case first, max, lifetime, jitter }
            public init() {}
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                first = try c.decodeIfPresent(ConfigDuration.self, forKey: .first) ?? first
                max = try c.decodeIfPresent(ConfigDuration.self, forKey: .max) ?? max
                lifetime = try c.decodeIfPresent(ConfigDuration.self, forKey: .lifetime) ?? lifetime
                jitter = try c.decodeIfPresent(Double.self, forKey: .jitter) ?? jitter
                guard (0...0.5).contains(jitter) else {
                    throw DecodingError.dataCorruptedError(forKey: .jitter, in: c, debugDescription: "must be between 0 and 0.5")
                }
            }
            public var schedule: RetrySchedule { RetrySchedule(first: first.value, max: max.value, lifetime: lifetime.value, jitter: jitter) }
        }
        public struct Breaker: Sendable, Decodable {
            /// Consecutive transient failures of a provider that pause it…
            public var failures = 5
            /// …for this long, before one probe send.
            public var cooldown = ConfigDuration(.seconds(60))
            enum CodingKeys: String, CodingKey, CaseIterable { case failures, cooldown }
            public init() {}
            public init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                failures = try c.decodeIfPresent(Int.self, forKey: .failures) ?? failures
                cooldown = try c.decodeIfPresent(ConfigDuration.self, forKey: .cooldown) ?? cooldown
                guard failures >= 1 else { throw DecodingError.dataCorruptedError(forKey: .failures, in: c, debugDescription: "must be at least 1") }
            }
        }
        public var concurrency = 8
        public var inDoubt = InDoubt.hold
        public var retry = Retry()
        public var breaker = Breaker()
        /// How long SIGTERM waits for in-flight sends; past it the daemon exits and those sends are
        /// in doubt at the next start (below systemd's TimeoutStopSec, so the ledger is never cut mid-write).
        public var drainTimeout = ConfigDuration(.seconds(30))
        enum CodingKeys: String, CodingKey, CaseIterable {
            case concurrency
            case inDoubt = "in_doubt"
            case retry, breaker
            case drainTimeout = "drain_timeout"
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            concurrency = try c.decodeIfPresent(Int.self, forKey: .concurrency) ?? concurrency
            inDoubt = try c.decodeIfPresent(InDoubt.self, forKey: .inDoubt) ?? inDoubt
            retry = try c.decodeIfPresent(Retry.self, forKey: .retry) ?? retry
            breaker = try c.decodeIfPresent(Breaker.self, forKey: .breaker) ?? breaker
            drainTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .drainTimeout) ?? drainTimeout
            guard (1...256).contains(concurrency) else {
                throw DecodingError.dataCorruptedError(forKey: .concurrency, in: c, debugDescription: "must be between 1 and 256")
            }
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
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            personalData = try c.decodeIfPresent(ConfigDuration.self, forKey: .personalData) ?? personalData
            daily = try c.decodeIfPresent(Bool.self, forKey: .daily) ?? daily
            guard personalData.value >= .seconds(86400) else {
                throw DecodingError.dataCorruptedError(forKey: .personalData, in: c, debugDescription: "must be at least 1d")
            }
        }
    }

    public struct Log: Sendable, Decodable {
        public var level = "info"
        enum CodingKeys: String, CodingKey, CaseIterable { case level }
        public init() {}
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            level = try c.decodeIfPresent(String.self, forKey: .level) ?? level
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .level, in: c, debugDescription: "'\(level)' is not a log level (trace, debug, info, notice, warning, error, critical)")
            }
        }
    }

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

    /// `agency:` — Relance sends for a collection agency acting for the creditor (CPCE R124-4).
    public struct AgencySettings: Sendable, Decodable {
        public var enabled = true
        public var name = ""
        public var address = ""
        enum CodingKeys: String, CodingKey, CaseIterable { case enabled, name, address }
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? enabled
            name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
            address = try c.decodeIfPresent(String.self, forKey: .address) ?? ""
            if enabled && (name.isEmpty || address.isEmpty) {
                throw DecodingError.dataCorruptedError(forKey: .name, in: c, debugDescription: "agency mode needs the agency's name and address (CPCE R124-4)")
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
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            builtin = try c.decodeIfPresent(Bool.self, forKey: .builtin) ?? builtin
            rules = try c.decodeIfPresent([ComplianceRule].self, forKey: .rules) ?? rules
        }
        public var inForce: [ComplianceRule] { (builtin ? ComplianceRule.defaults : []) + rules }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case spool, queues, store, templates, creditor, defaults, stages, email, sms, delivery, webhooks, log, policy, compliance, retention, agency
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        spool = try c.decodeIfPresent(Spool.self, forKey: .spool) ?? spool
        queues = try c.decodeIfPresent([String: Queue].self, forKey: .queues) ?? queues
        store = try c.decodeIfPresent(Store.self, forKey: .store) ?? store
        templates = try c.decodeIfPresent(Templates.self, forKey: .templates) ?? templates
        creditor = try c.decodeIfPresent(Creditor.self, forKey: .creditor) ?? creditor
        defaults = try c.decodeIfPresent(Defaults.self, forKey: .defaults) ?? defaults
        stages = try c.decodeIfPresent([String].self, forKey: .stages) ?? stages
        email = try c.decodeIfPresent(Email.self, forKey: .email) ?? email
        sms = try c.decodeIfPresent(SMS.self, forKey: .sms) ?? sms
        delivery = try c.decodeIfPresent(Delivery.self, forKey: .delivery) ?? delivery
        webhooks = try c.decodeIfPresent(Webhooks.self, forKey: .webhooks) ?? webhooks
        log = try c.decodeIfPresent(Log.self, forKey: .log) ?? log
        policy = try c.decodeIfPresent(Policy.self, forKey: .policy) ?? policy
        compliance = try c.decodeIfPresent(Compliance.self, forKey: .compliance) ?? compliance
        retention = try c.decodeIfPresent(Retention.self, forKey: .retention) ?? retention
        agency = try c.decodeIfPresent(AgencySettings.self, forKey: .agency)
        for name in policy.stages.keys where !stages.contains(name) {
            throw DecodingError.dataCorruptedError(
                forKey: .policy, in: c, debugDescription: "policy.stages.\(name): not a configured stage (\(stages.joined(separator: ", ")))")
        }
        for name in queues.keys where name.isEmpty || name.contains("/") || name.hasPrefix(".") {
            throw DecodingError.dataCorruptedError(forKey: .queues, in: c, debugDescription: "queue name '\(name)' must be a plain directory name")
        }
        if !LocaleRules.isKnown(defaults.locale) {
            throw DecodingError.dataCorruptedError(
                forKey: .defaults, in: c, debugDescription: "defaults.locale '\(defaults.locale)' is not a BCP 47 tag such as fr-FR")
        }
        if TimeZone(identifier: defaults.timezone) == nil {
            throw DecodingError.dataCorruptedError(
                forKey: .defaults, in: c, debugDescription: "defaults.timezone '\(defaults.timezone)' is not an IANA time zone")
        }
    }

    /// The priority and concurrency share of a queue (`default` and unknown queues: priority 0, share 1).
    public func queue(_ name: String) -> Queue { queues[name] ?? Queue() }
}

/// An error in the configuration: names the file and the key.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
}

/// Reads configuration the way DESIGN.md says: YAML file, then `RELANCE_*` environment overrides,
/// then secrets from `$CREDENTIALS_DIRECTORY`.
public enum ConfigurationLoader {
    /// Every scalar key that the environment or a credential file may set.
    public static let overridableKeys: [String] = [
        "spool.root", "spool.max_file_bytes", "spool.keep_done", "spool.attachments_root", "spool.max_attachment_bytes", "spool.rescan_interval",
        "store.path", "templates.path", "templates.deadline_days",
        "creditor.name", "creditor.address", "creditor.email", "creditor.phone", "creditor.payment_instructions",
        "defaults.locale", "defaults.timezone", "defaults.country",
        "email.transport", "email.from", "email.reply_to", "email.smtp.url", "email.smtp.starttls", "email.smtp.ca_file",
        "email.smtp.username", "email.smtp.password", "email.smtp.connections", "email.smtp.timeout", "email.smtp.connect_timeout",
        "email.smtp.helo", "email.outbox.maildir",
        "sms.provider", "sms.sender", "sms.outbox.path", "sms.base_url", "sms.connections", "sms.timeout", "sms.encoding", "sms.max_segments",
        "sms.twilio.account_sid", "sms.twilio.auth_token", "sms.vonage.api_key", "sms.vonage.api_secret", "sms.vonage.signature_secret",
        "sms.brevo.api_key", "sms.generic.url", "sms.generic.body",
        "webhooks.listen", "webhooks.public_base_url", "webhooks.secret", "webhooks.brevo_token", "webhooks.api_token", "webhooks.orphan_ttl",
        "sms.vonage.signature_method",
        "delivery.concurrency", "delivery.in_doubt", "delivery.retry.first", "delivery.retry.max", "delivery.retry.lifetime", "delivery.retry.jitter",
        "delivery.breaker.failures", "delivery.breaker.cooldown", "email.rate", "sms.rate",
        "log.level", "policy.windows.sms", "policy.windows.email", "policy.holidays", "policy.group", "policy.caps.per_day",
        "policy.caps.per_7_days", "policy.caps.per_30_days", "retention.personal_data", "retention.daily",
    ]

    /// Where the values came from, for a one-line log (never the values themselves).
    public struct Provenance: Sendable {
        public var file: String?
        public var environment: [String] = []
        public var credentials: [String] = []
    }

    public static func load(
        file: String?, yaml: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (RelanceConfiguration, Provenance) {
        var provenance = Provenance(file: file)
        var node: Node = .mapping(.init([]))
        let label = file ?? "embedded default"
        var text = yaml
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError(description: "\(file): cannot be read")
            }
            guard let t = String(validating: data, as: UTF8.self) else { throw ConfigurationError(description: "\(file): not valid UTF-8") }
            text = t
        }
        if let text {
            do {
                if let parsed = try Yams.compose(yaml: text) { node = parsed }
            } catch {
                throw ConfigurationError(description: "\(label): invalid YAML: \(error)")
            }
        }
        if case .scalar(let s) = node, s.string.isEmpty { node = .mapping(.init([])) }
        guard node.mapping != nil else { throw ConfigurationError(description: "\(label): the top level must be a mapping of keys") }

        for key in overridableKeys {
            let envName = "RELANCE_" + key.replacingOccurrences(of: ".", with: "_").uppercased()
            if let value = environment[envName] {
                node = setting(node, path: key.split(separator: ".").map(String.init)[...], value: value)
                provenance.environment.append(envName)
            }
        }
        if let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty {
            for key in overridableKeys {
                let name = key.replacingOccurrences(of: ".", with: "-")
                let path = dir + "/" + name
                if let data = FileManager.default.contents(atPath: path) {
                    guard let value = String(validating: data, as: UTF8.self) else {
                        throw ConfigurationError(description: "credential \(name): not valid UTF-8")
                    }
                    node = setting(node, path: key.split(separator: ".").map(String.init)[...], value: value.trimmingCharacters(in: .newlines))
                    provenance.credentials.append(name)
                }
            }
        }
        do {
            return (try YAMLDecoder().decode(RelanceConfiguration.self, from: node), provenance)
        } catch let error as DecodingError {
            throw ConfigurationError(description: "\(label): \(describe(error))")
        } catch {
            throw ConfigurationError(description: "\(label): \(error)")
        }
    }

    static func setting(_ node: Node, path: ArraySlice<String>, value: String) -> Node {
        var mapping = node.mapping ?? Node.Mapping([])
        let key = path.first!
        if path.count == 1 {
            mapping[key] = Node(value)
        } else {
            mapping[key] = setting(mapping[key] ?? .mapping(.init([])), path: path.dropFirst(), value: value)
        }
        return .mapping(mapping)
    }

    /// A decoding error as `key.path: reason`.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ p: [any CodingKey]) -> String {
            p.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .dataCorrupted(let c): return c.codingPath.isEmpty ? c.debugDescription : "\(path(c.codingPath)): \(c.debugDescription)"
        case .keyNotFound(let key, let c): return "\(path(c.codingPath + [key])): is required"
        case .typeMismatch(let type, let c): return "\(path(c.codingPath)): expected \(type) (\(c.debugDescription))"
        case .valueNotFound(let type, let c): return "\(path(c.codingPath)): expected \(type), found nothing"
        @unknown default: return "\(error)"
        }
    }
}
