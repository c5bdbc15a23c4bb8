import Foundation
import RelanceCore

extension RelanceConfiguration {
    /// `email:` — how email leaves: the outbox (a Maildir) or an SMTP relay.
    public struct Email: Sendable, Decodable {
        public enum Transport: String, ConfigChoice { case outbox, smtp }

        /// An SMTP relay (`email.smtp`, and `email.secondary_smtp` used while the first is paused).
        public struct SMTP: Sendable, Decodable {
            public enum StartTLS: String, ConfigChoice { case required, none }
            public var url = "smtp://127.0.0.1:25"
            public var starttls = StartTLS.required
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
                let c = try decoder.section(CodingKeys.self)
                url = try c.value(.url, or: url)
                starttls = try c.value(.starttls, or: starttls)
                caFile = try c.value(.caFile)
                username = try c.value(.username)
                password = try c.value(.password)
                connections = try c.value(.connections, or: connections)
                timeout = try c.value(.timeout, or: timeout)
                connectTimeout = try c.value(.connectTimeout, or: connectTimeout)
                helo = try c.value(.helo)
                let lower = url.lowercased()
                guard lower.hasPrefix("smtp://") || lower.hasPrefix("smtps://") else { throw c.invalid(.url, "must start with smtp:// or smtps://") }
                guard (1...64).contains(connections) else { throw c.invalid(.connections, "must be between 1 and 64") }
                guard timeout.value >= .milliseconds(100) else { throw c.invalid(.timeout, "must be at least 100ms") }
                guard connectTimeout.value >= .milliseconds(100) else { throw c.invalid(.connectTimeout, "must be at least 100ms") }
            }
        }

        /// `email.outbox:` — the Maildir of the embedded default.
        public struct Outbox: Sendable, Decodable {
            public var maildir = "/var/lib/relance/outbox/mail"
            enum CodingKeys: String, CodingKey, CaseIterable { case maildir }
            public init() {}
            public init(from decoder: any Decoder) throws {
                maildir = try decoder.section(CodingKeys.self).value(.maildir, or: maildir)
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
        /// The VERP return path and the ways bounces come back; nil: no bounce handling.
        public var bounce: Bounce? = nil
        enum CodingKeys: String, CodingKey, CaseIterable {
            case transport, from
            case replyTo = "reply_to"
            case rate, smtp
            case secondarySMTP = "secondary_smtp"
            case outbox, bounce
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            transport = try c.value(.transport, or: transport)
            from = try c.value(.from, or: from)
            replyTo = try c.value(.replyTo)
            rate = try c.value(.rate, or: rate)
            smtp = try c.value(.smtp, or: smtp)
            secondarySMTP = try c.value(.secondarySMTP)
            outbox = try c.value(.outbox, or: outbox)
            bounce = try c.value(.bounce)
            guard Mailbox(parsing: from) != nil else { throw c.invalid(.from, "'\(from.debugQuoted)' is not a valid mailbox (Name <address@domain>)") }
            if let replyTo, Mailbox(parsing: replyTo) == nil { throw c.invalid(.replyTo, "'\(replyTo.debugQuoted)' is not a valid mailbox") }
            guard rate >= 0, rate.isFinite else { throw c.invalid(.rate, "must be 0 (unlimited) or a positive number of messages a second") }
        }
    }
}
