import Foundation
import RelanceCore

extension RelanceConfiguration.Email {
    /// `email.bounce:` — the VERP return path and the ways bounces come back (docs/bounces.md).
    /// Absent: emails keep `email.from` as their envelope sender and nothing reads bounces.
    public struct Bounce: Sendable, Decodable {
        /// `email.bounce.imap:` — a mailbox polled through libcurl's IMAP support.
        public struct IMAP: Sendable, Decodable {
            public enum StartTLS: String, ConfigChoice { case required, none }
            /// `imap://host[:port]` (STARTTLS per `starttls`) or `imaps://host[:port]` (TLS from the start).
            public var url = ""
            /// `required` never sends the password in clear over `imap://`.
            public var starttls = StartTLS.required
            public var username = ""
            public var password = ""
            public var folder = "INBOX"
            /// Where recognised bounces are moved; the rest stays untouched.
            public var processedFolder = "Processed"
            /// How often the mailbox is polled.
            public var every = ConfigDuration(.seconds(60))
            public var caFile: String? = nil
            enum CodingKeys: String, CodingKey, CaseIterable {
                case url, starttls, username, password, folder
                case processedFolder = "processed_folder"
                case every
                case caFile = "ca_file"
            }
            public init() {}
            public init(from decoder: any Decoder) throws {
                let c = try decoder.section(CodingKeys.self)
                url = try c.value(.url, or: url)
                starttls = try c.value(.starttls, or: starttls)
                username = try c.value(.username, or: username)
                password = try c.value(.password, or: password)
                folder = try c.value(.folder, or: folder)
                processedFolder = try c.value(.processedFolder, or: processedFolder)
                every = try c.value(.every, or: every)
                caFile = try c.value(.caFile)
                let lower = url.lowercased()
                guard lower.hasPrefix("imap://") || lower.hasPrefix("imaps://") else { throw c.invalid(.url, "must start with imap:// or imaps://") }
                for (key, name) in [(CodingKeys.folder, folder), (.processedFolder, processedFolder)]
                where name.isEmpty || name.contains(where: { $0.isNewline || $0 == "\"" || $0 == "\\" || $0 == "\u{0}" }) {
                    throw c.invalid(key, "a folder name, without quotes, backslashes or line breaks")
                }
                guard folder != processedFolder else { throw c.invalid(.processedFolder, "must differ from folder") }
                guard every.value >= .seconds(5) else { throw c.invalid(.every, "at least 5s") }
            }
        }

        /// The domain of the return path `bounces+TOKEN@domain`: its MX (or the relay's
        /// transport map) must bring those messages back to one of the ways in.
        public var domain = ""
        /// The HMAC key of the tokens (at least 16 characters). Better as a credential:
        /// `LoadCredential=email-bounce-secret:…`. Changing it orphans the bounces of messages
        /// already sent.
        public var secret = ""
        /// A Maildir the daemon watches (its `new/` entries; each is moved to `cur/` once read).
        public var maildir: String? = nil
        public var imap: IMAP? = nil
        /// Soft bounces of different messages to one address within `soft_window` that count as a hard one.
        public var softLimit = 3
        public var softWindow = ConfigDuration(.seconds(30 * 86_400))

        enum CodingKeys: String, CodingKey, CaseIterable {
            case domain, secret, maildir, imap
            case softLimit = "soft_limit"
            case softWindow = "soft_window"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            domain = try c.value(.domain, or: domain)
            secret = try c.value(.secret, or: secret)
            maildir = try c.value(.maildir)
            imap = try c.value(.imap)
            softLimit = try c.value(.softLimit, or: softLimit)
            softWindow = try c.value(.softWindow, or: softWindow)
            guard EmailAddress.isValid("bounces@\(domain)"), !domain.isEmpty else {
                throw c.invalid(.domain, "'\(domain.debugQuoted)' is not a mail domain (the return path is bounces+TOKEN@domain)")
            }
            guard secret.count >= 16 else { throw c.invalid(.secret, "at least 16 characters (better: the credential email-bounce-secret)") }
            guard (1...100).contains(softLimit) else { throw c.invalid(.softLimit, "between 1 and 100") }
            guard softWindow.value >= .seconds(3600) else { throw c.invalid(.softWindow, "at least 1h") }
        }

        public var rules: BounceRules { BounceRules(softLimit: softLimit, softWindow: softWindow.value) }
    }
}
