import Foundation
import RelanceCore

extension RelanceConfiguration {
    /// `sms:` — how SMS leave: the outbox (a JSON-lines file) or a gateway.
    public struct SMS: Sendable, Decodable {
        public enum Provider: String, ConfigChoice { case outbox, twilio, vonage, brevo, generic }
        public enum Encoding: String, ConfigChoice { case auto, gsm7 }

        /// `sms.outbox:` — the file of the embedded default.
        public struct Outbox: Sendable, Decodable {
            public var path = "/var/lib/relance/outbox/sms.jsonl"
            enum CodingKeys: String, CodingKey, CaseIterable { case path }
            public init() {}
            public init(from decoder: any Decoder) throws {
                path = try decoder.section(CodingKeys.self).value(.path, or: path)
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
                let c = try decoder.section(CodingKeys.self)
                accountSID = try c.value(.accountSID, or: accountSID)
                authToken = try c.value(.authToken, or: authToken)
            }
        }

        public struct Vonage: Sendable, Decodable {
            /// As chosen in the Vonage dashboard: md5hash (Vonage's default), md5, sha1, sha256, sha512.
            public enum SignatureMethod: String, ConfigChoice { case md5hash, md5, sha1, sha256, sha512 }
            public var apiKey = ""
            public var apiSecret = ""
            public var signatureSecret = ""
            public var signatureMethod = SignatureMethod.md5hash
            /// Accept unsigned delivery receipts: anyone who can reach the endpoint can then forge a status. Off by default.
            public var insecureUnsigned = false
            enum CodingKeys: String, CodingKey, CaseIterable {
                case apiKey = "api_key"
                case apiSecret = "api_secret"
                case signatureSecret = "signature_secret"
                case signatureMethod = "signature_method"
                case insecureUnsigned = "insecure_unsigned"
            }
            public init() {}
            public init(from decoder: any Decoder) throws {
                let c = try decoder.section(CodingKeys.self)
                apiKey = try c.value(.apiKey, or: apiKey)
                apiSecret = try c.value(.apiSecret, or: apiSecret)
                signatureSecret = try c.value(.signatureSecret, or: signatureSecret)
                signatureMethod = try c.value(.signatureMethod, or: signatureMethod)
                insecureUnsigned = try c.value(.insecureUnsigned, or: insecureUnsigned)
            }
        }

        public struct Brevo: Sendable, Decodable {
            public var apiKey = ""
            enum CodingKeys: String, CodingKey, CaseIterable { case apiKey = "api_key" }
            public init() {}
            public init(from decoder: any Decoder) throws {
                apiKey = try decoder.section(CodingKeys.self).value(.apiKey, or: apiKey)
            }
        }

        /// Any other gateway, described by configuration (docs/sms.md).
        public struct Generic: Sendable, Decodable {
            public enum Escaping: String, ConfigChoice { case json, form }
            public var method = "POST"
            public var url = ""
            /// Header values are secrets (API keys): never logged, scrubbed from receipts.
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
                let c = try decoder.section(CodingKeys.self)
                method = try c.value(.method, or: method)
                url = try c.value(.url, or: url)
                headers = try c.value(.headers, or: headers)
                body = try c.value(.body, or: body)
                escaping = try c.value(.escaping, or: escaping)
                messageIDPointer = try c.value(.messageIDPointer, or: messageIDPointer)
                guard messageIDPointer.isEmpty || messageIDPointer.hasPrefix("/") else { throw c.invalid(.messageIDPointer, "a JSON pointer starts with '/'") }
                guard ["GET", "POST", "PUT", "PATCH"].contains(method.uppercased()) else { throw c.invalid(.method, "one of GET, POST, PUT, PATCH") }
                for name in headers.keys where name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
                    throw c.invalid(.headers, "'\(name.debugQuoted)' is not a header name (letters, digits and -)")
                }
            }
        }

        /// `sms.secondary:` — a second gateway (its credentials in its own section), used while the first is paused.
        public struct Secondary: Sendable, Decodable {
            public var provider = Provider.outbox
            public var baseURL: String?
            enum CodingKeys: String, CodingKey, CaseIterable {
                case provider
                case baseURL = "base_url"
            }
            public init(from decoder: any Decoder) throws {
                let c = try decoder.section(CodingKeys.self)
                let provider: Provider? = try c.value(.provider)
                baseURL = try c.value(.baseURL)
                guard let provider else { throw c.invalid(.provider, "the secondary gateway needs a provider") }
                self.provider = provider
                if let baseURL, !(baseURL.hasPrefix("https://") || baseURL.hasPrefix("http://")) { throw c.invalid(.baseURL, "must be an http(s) URL") }
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
        public var secondary: Secondary? = nil
        /// An SMS still `sent` this long after the gateway accepted it is asked about (0: never).
        public var reconcileAfter = ConfigDuration(.seconds(15 * 60))
        /// Then again at this interval (one status request per part and interval at most)…
        public var reconcileEvery = ConfigDuration(.seconds(5 * 60))
        /// …until this long after it was accepted: then it stays `sent`, with a `no final status` event.
        public var reconcileGiveUp = ConfigDuration(.seconds(48 * 3600))
        /// Status requests a second at most, per gateway (within its API's rate limit).
        public var reconcileRate = 10.0

        enum CodingKeys: String, CodingKey, CaseIterable {
            case provider, sender
            case baseURL = "base_url"
            case connections, rate, timeout, encoding
            case maxSegments = "max_segments"
            case twilio, vonage, brevo, generic, outbox, secondary
            case reconcileAfter = "reconcile_after"
            case reconcileEvery = "reconcile_every"
            case reconcileGiveUp = "reconcile_give_up"
            case reconcileRate = "reconcile_rate"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            provider = try c.value(.provider, or: provider)
            sender = try c.value(.sender, or: sender)
            baseURL = try c.value(.baseURL)
            connections = try c.value(.connections, or: connections)
            rate = try c.value(.rate, or: rate)
            timeout = try c.value(.timeout, or: timeout)
            encoding = try c.value(.encoding, or: encoding)
            maxSegments = try c.value(.maxSegments, or: maxSegments)
            twilio = try c.value(.twilio, or: twilio)
            vonage = try c.value(.vonage, or: vonage)
            brevo = try c.value(.brevo, or: brevo)
            generic = try c.value(.generic, or: generic)
            outbox = try c.value(.outbox, or: outbox)
            secondary = try c.value(.secondary)
            reconcileAfter = try c.value(.reconcileAfter, or: reconcileAfter)
            reconcileEvery = try c.value(.reconcileEvery, or: reconcileEvery)
            reconcileGiveUp = try c.value(.reconcileGiveUp, or: reconcileGiveUp)
            reconcileRate = try c.value(.reconcileRate, or: reconcileRate)
            guard reconcileEvery.value >= .seconds(1) else { throw c.invalid(.reconcileEvery, "at least 1s") }
            guard reconcileGiveUp.value > reconcileAfter.value else { throw c.invalid(.reconcileGiveUp, "must be longer than sms.reconcile_after") }
            guard reconcileRate > 0, reconcileRate.isFinite else { throw c.invalid(.reconcileRate, "a positive number of requests a second") }
            guard (1...64).contains(connections) else { throw c.invalid(.connections, "must be between 1 and 64") }
            guard (1...10).contains(maxSegments) else { throw c.invalid(.maxSegments, "must be between 1 and 10") }
            guard rate >= 0, rate.isFinite else { throw c.invalid(.rate, "must be 0 (unlimited) or a positive number of messages a second") }
            guard timeout.value >= .milliseconds(100) else { throw c.invalid(.timeout, "must be at least 100ms") }
            if let problem = TextRules.problem(sender, maxLength: 40) { throw c.invalid(.sender, problem) }
            if let baseURL, !(baseURL.hasPrefix("https://") || baseURL.hasPrefix("http://")) { throw c.invalid(.baseURL, "must be an http(s) URL") }
            var missing: [String] = []
            for provider in providersInUse {
                switch provider {
                case .twilio:
                    missing += [("sms.twilio.account_sid", twilio.accountSID), ("sms.twilio.auth_token", twilio.authToken)].filter { $0.1.isEmpty }.map(\.0)
                case .vonage:
                    missing += [("sms.vonage.api_key", vonage.apiKey), ("sms.vonage.api_secret", vonage.apiSecret)].filter { $0.1.isEmpty }.map(\.0)
                    if vonage.signatureSecret.isEmpty && !vonage.insecureUnsigned {
                        missing.append("sms.vonage.signature_secret (or sms.vonage.insecure_unsigned: true to accept forgeable receipts)")
                    }
                case .brevo: missing += brevo.apiKey.isEmpty ? ["sms.brevo.api_key"] : []
                case .generic: missing += [("sms.generic.url", generic.url), ("sms.generic.body", generic.body)].filter { $0.1.isEmpty }.map(\.0)
                case .outbox: break
                }
            }
            if !missing.isEmpty {
                throw c.invalid(.provider, "the SMS provider needs \(missing.joined(separator: ", ")) (in the file, the environment or a credential)")
            }
        }

        /// The primary provider, then the secondary's if any.
        public var providersInUse: [Provider] { [provider] + (secondary.map { [$0.provider] } ?? []) }
    }
}
