import Foundation
import RelanceCore

extension RelanceConfiguration {
    /// `delivery:` — concurrency, retries, the circuit breaker and the in-doubt rule.
    public struct Delivery: Sendable, Decodable {
        public enum InDoubt: String, ConfigChoice { case hold, resend }

        public struct Retry: Sendable, Decodable {
            public var first = ConfigDuration(.seconds(300))
            public var max = ConfigDuration(.seconds(3600))
            public var lifetime = ConfigDuration(.seconds(2 * 86400))
            /// ±fraction of each delay (0.1 = ±10 %).
            public var jitter = 0.1
            enum CodingKeys: String, CodingKey, CaseIterable { case first, max, lifetime, jitter }
            public init() {}
            public init(from decoder: any Decoder) throws {
                let c = try decoder.section(CodingKeys.self)
                first = try c.value(.first, or: first)
                max = try c.value(.max, or: max)
                lifetime = try c.value(.lifetime, or: lifetime)
                jitter = try c.value(.jitter, or: jitter)
                guard (0...0.5).contains(jitter) else { throw c.invalid(.jitter, "must be between 0 and 0.5") }
                guard max.value >= first.value else { throw c.invalid(.max, "must be at least delivery.retry.first") }
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
                let c = try decoder.section(CodingKeys.self)
                failures = try c.value(.failures, or: failures)
                cooldown = try c.value(.cooldown, or: cooldown)
                guard failures >= 1 else { throw c.invalid(.failures, "must be at least 1") }
            }
            public var breaker: CircuitBreaker { CircuitBreaker(threshold: failures, cooldown: cooldown.value) }
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
            let c = try decoder.section(CodingKeys.self)
            concurrency = try c.value(.concurrency, or: concurrency)
            inDoubt = try c.value(.inDoubt, or: inDoubt)
            retry = try c.value(.retry, or: retry)
            breaker = try c.value(.breaker, or: breaker)
            drainTimeout = try c.value(.drainTimeout, or: drainTimeout)
            guard (1...256).contains(concurrency) else { throw c.invalid(.concurrency, "must be between 1 and 256") }
        }
    }

    /// `webhooks:` — the HTTP side: gateway status callbacks, the cancellation API, `/healthz`, `/metrics`.
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
            let c = try decoder.section(CodingKeys.self)
            listen = try c.value(.listen, or: listen)
            publicBaseURL = try c.value(.publicBaseURL).map { (url: String) in url.hasSuffix("/") ? String(url.dropLast()) : url }
            secret = try c.value(.secret)
            brevoToken = try c.value(.brevoToken)
            apiToken = try c.value(.apiToken)
            orphanTTL = try c.value(.orphanTTL, or: orphanTTL)
            if let apiToken, !apiToken.isEmpty, apiToken.count < 24 {
                throw c.invalid(.apiToken, "must be at least 24 characters (e.g. openssl rand -hex 24)")
            }
            if !listen.isEmpty && hostAndPort == nil { throw c.invalid(.listen, "'\(listen.debugQuoted)' is not host:port") }
            if let publicBaseURL, !(publicBaseURL.hasPrefix("https://") || publicBaseURL.hasPrefix("http://")) {
                throw c.invalid(.publicBaseURL, "must be an http(s) URL")
            }
            if let secret, !secret.isEmpty, standardWebhooksKey == nil { throw c.invalid(.secret, "must be whsec_ followed by base64") }
        }

        /// `listen` split, or nil when it is not `host:port`.
        public var hostAndPort: (host: String, port: Int)? {
            guard let colon = listen.lastIndex(of: ":"), let port = ASCIIDigits.integer(listen[listen.index(after: colon)...]), port <= 65535 else {
                return nil
            }
            let host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            return host.isEmpty ? nil : (host, port)
        }

        /// The key of `secret` (the base64 after `whsec_`), or nil when unset or malformed.
        public var standardWebhooksKey: Data? { secret.flatMap(Self.standardWebhooksKey) }

        /// The key of a Standard Webhooks secret (`whsec_` and base64), or nil when it is malformed.
        public static func standardWebhooksKey(_ secret: String) -> Data? {
            let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
            guard let key = Data(base64Encoded: encoded), !key.isEmpty else { return nil }
            return key
        }
    }
}
