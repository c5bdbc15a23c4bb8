import Foundation

/// What a message that came back to the bounce address says (issue 14, DESIGN.md "Bounces and
/// reconciliation"): a bounce of one or more recipients, each hard (`5.x.x`, or failed without a
/// status) or soft (`4.x.x`, or `Action: delayed`), or something that is never counted as one:
/// auto-replies (RFC 3834), read receipts (RFC 8098 MDN), challenge-responses, and DSNs that report
/// a delivery. RFC 3464 reports are read first, every per-recipient block of them; a bounce without
/// that structure is read as text, as a fallback. Pure: no I/O, nothing trusted from the message
/// (the delivery it names is checked by the caller).
public enum BounceClassifier {
    public enum Kind: String, Sendable, Hashable {
        case hard, soft
    }

    public struct Recipient: Sendable, Hashable {
        public var address: String
        public var kind: Kind
        /// RFC 3463 status (`5.1.1`), when the report gives one.
        public var status: String?
        public var diagnostic: String?

        public init(address: String, kind: Kind, status: String? = nil, diagnostic: String? = nil) {
            self.address = address
            self.kind = kind
            self.status = status
            self.diagnostic = diagnostic
        }
    }

    public enum Verdict: Sendable, Hashable {
        /// `references`: what names the delivery — VERP addresses it was sent to and the
        /// `X-Relance-Delivery` header of the returned message — for the caller to verify.
        case bounce(recipients: [Recipient], references: [String])
        case notABounce(reason: NotABounce)
    }

    public enum NotABounce: String, Sendable, Hashable {
        case autoReply = "auto_reply"
        case readReceipt = "read_receipt"
        case challenge
        /// A delivery status notification that reports success (delivered, relayed, expanded).
        case delivered
        /// Nothing in it says a message was not delivered.
        case unrecognised
    }

    public static func classify(_ data: Data) -> Verdict {
        let (headers, body) = MIMEReader.split(String(decoding: data.prefix(4 << 20), as: UTF8.self))
        let (type, parameters) = MIMEReader.contentType(headers)
        let subject = MIMEReader.decodeWords(MIMEReader.value(headers, "subject") ?? "").lowercased()
        var references = Self.verpAddresses(headers)
        if type == "multipart/report" {
            let reportType = parameters["report-type"]?.lowercased()
            if reportType == "disposition-notification" { return .notABounce(reason: .readReceipt) }
            if reportType == "delivery-status" || reportType == "global-delivery-status", let boundary = parameters["boundary"] {
                var recipients: [Recipient] = []
                var reported = false
                for part in MIMEReader.parts(of: body, boundary: boundary) {
                    let (partHeaders, partBody) = MIMEReader.split(part)
                    let partType = MIMEReader.contentType(partHeaders).type
                    if partType == "message/delivery-status" || partType == "message/global-delivery-status" {
                        reported = true
                        let text = String(decoding: MIMEReader.decodeBody(partBody, encoding: MIMEReader.value(partHeaders, "content-transfer-encoding")?.lowercased() ?? "7bit"), as: UTF8.self)
                        recipients += Self.deliveryStatus(text)
                    } else if partType == "message/rfc822" || partType == "text/rfc822-headers" || partType == "message/global" {
                        references += Self.returnedReferences(partBody)
                    }
                }
                if reported { return recipients.isEmpty ? .notABounce(reason: .delivered) : .bounce(recipients: recipients, references: unique(references)) }
            }
        }
        // Unstructured: from a mailer daemon (which marks its bounces `Auto-Submitted` too, as RFC
        // 3834 asks), or worded as a bounce and not an auto-reply, with the recipients and codes in its text.
        let from = (MIMEReader.value(headers, "from") ?? "").lowercased()
        let fromMailer = from.contains("mailer-daemon") || from.contains("postmaster")
        if !fromMailer {
            if Self.isAutoReply(headers, subject: subject) { return .notABounce(reason: .autoReply) }
            if Self.isChallenge(headers, subject: subject) { return .notABounce(reason: .challenge) }
            guard Self.bounceSubjects.contains(where: { subject.contains($0) }) else { return .notABounce(reason: .unrecognised) }
        }
        let view = MIMEReader.read(data)
        let text = (view.text ?? "") + "\n" + (view.html.map(MIMEReader.htmlAsText) ?? "")
        references += Self.returnedReferences(body)
        let recipients = Self.unstructured(text)
        return recipients.isEmpty ? .notABounce(reason: .unrecognised) : .bounce(recipients: recipients, references: unique(references))
    }

    /// In their first order, each once.
    static func unique(_ values: [String]) -> [String] {
        var seen: Set<String> = []
        return values.filter { seen.insert($0).inserted }
    }

    // MARK: RFC 3464

    /// The per-recipient blocks of a `message/delivery-status` body that report a failure or a delay.
    static func deliveryStatus(_ text: String) -> [Recipient] {
        let normalised = text.replacingOccurrences(of: "\r\n", with: "\n")
        // Blocks are separated by blank lines; the first is the per-message block.
        let blocks = normalised.components(separatedBy: "\n\n").map { MIMEReader.split($0 + "\n\n").0 }
        var recipients: [Recipient] = []
        for block in blocks {
            guard let action = MIMEReader.value(block, "action")?.lowercased() else { continue }
            guard action.hasPrefix("failed") || action.hasPrefix("delayed") else { continue }
            let recipient = MIMEReader.value(block, "final-recipient") ?? MIMEReader.value(block, "original-recipient") ?? ""
            let address = Self.address(afterType: recipient)
            guard !address.isEmpty else { continue }
            let status = MIMEReader.value(block, "status").flatMap(Self.statusCode)
            let kind: Kind
            if action.hasPrefix("delayed") {
                kind = .soft
            } else if let status {
                kind = status.hasPrefix("4") ? .soft : .hard
            } else {
                kind = .hard
            }
            recipients.append(Recipient(address: address, kind: kind, status: status, diagnostic: MIMEReader.value(block, "diagnostic-code")))
        }
        return recipients
    }

    /// `rfc822; user@example.org` → `user@example.org`.
    static func address(afterType field: String) -> String {
        let value = field.split(separator: ";", maxSplits: 1).last.map(String.init) ?? field
        return value.trimmingCharacters(in: CharacterSet(charactersIn: " <>\t")).lowercased()
    }

    /// The first RFC 3463 code (`5.1.1`) in a text.
    static func statusCode(_ text: String) -> String? {
        text.firstMatch(of: /\b([245])\.(\d{1,3})\.(\d{1,3})\b/).map { "\($0.1).\($0.2).\($0.3)" }
    }

    // MARK: What is never a bounce

    static func isAutoReply(_ headers: MIMEReader.Headers, subject: String) -> Bool {
        if let auto = MIMEReader.value(headers, "auto-submitted")?.lowercased(), !auto.hasPrefix("no") { return true }
        if MIMEReader.value(headers, "x-autoreply") != nil || MIMEReader.value(headers, "x-autorespond") != nil { return true }
        if let precedence = MIMEReader.value(headers, "precedence")?.lowercased(), precedence == "auto_reply" { return true }
        if MIMEReader.value(headers, "x-ms-exchange-inbox-rules-loop") != nil && subject.hasPrefix("automatic reply") { return true }
        return vacationSubjects.contains { subject.hasPrefix($0) }
    }

    static func isChallenge(_ headers: MIMEReader.Headers, subject: String) -> Bool {
        if MIMEReader.value(headers, "x-challenge") != nil || MIMEReader.value(headers, "x-boxtrapper") != nil { return true }
        return challengeSubjects.contains { subject.contains($0) }
    }

    static let vacationSubjects = [
        "out of office", "automatic reply", "auto:", "autoreply", "auto-reply", "auto reply", "réponse automatique", "reponse automatique",
        "absence", "absent", "vacation", "on vacation", "congés", "conges", "abwesenheit", "respuesta automática", "respuesta automatica",
        "fuera de la oficina", "risposta automatica", "fuori sede", "automatisch antwoord", "afwezig",
    ]
    static let challengeSubjects = ["please confirm your message", "verify your email", "please verify", "confirm you are human", "challenge"]
    static let bounceSubjects = [
        "undelivered mail", "undeliverable", "delivery status notification", "mail delivery failed", "delivery failure", "failure notice",
        "returned mail", "non remis", "message not delivered", "delivery has failed",
    ]

    // MARK: Unstructured bounces

    /// The addresses a bounce's text reports, each with the code next to it (hard without one
    /// when the wording says the mailbox does not exist, soft otherwise).
    static func unstructured(_ text: String) -> [Recipient] {
        var recipients: [Recipient] = []
        var seen: Set<String> = []
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (i, line) in lines.enumerated() {
            for match in line.matches(of: /<?([A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,})>?/) {
                let address = String(match.1).lowercased()
                if seen.contains(address) || address.hasPrefix("mailer-daemon@") || address.hasPrefix("postmaster@") { continue }
                // The explanation follows the address, on its line or the next few.
                let context = lines[i..<min(lines.count, i + 4)].joined(separator: " ")
                let status = statusCode(context)
                let smtp = context.firstMatch(of: /\b([45])\d\d\b/).map { String($0.1) }
                let permanentWords = ["does not exist", "user unknown", "no such user", "unknown user", "mailbox unavailable", "no mailbox", "not found", "n'existe pas"]
                let kind: Kind
                if let status { kind = status.hasPrefix("4") ? .soft : .hard } else if let smtp { kind = smtp == "4" ? .soft : .hard } else {
                    guard permanentWords.contains(where: { context.lowercased().contains($0) }) else { continue }
                    kind = .hard
                }
                seen.insert(address)
                recipients.append(Recipient(address: address, kind: kind, status: status, diagnostic: context.trimmingCharacters(in: .whitespaces)))
            }
        }
        return recipients
    }

    // MARK: References

    /// VERP addresses (`bounces+TOKEN@domain`) among the headers the bounce was delivered under.
    static func verpAddresses(_ headers: MIMEReader.Headers) -> [String] {
        headers.filter { ["to", "delivered-to", "x-original-to", "envelope-to"].contains($0.name.lowercased()) }.flatMap { header in
            header.value.matches(of: /bounces\+[A-Za-z0-9._=\-]+@[A-Za-z0-9.\-]+/).map { String($0.output).lowercased() }
        }
    }

    /// The `X-Relance-Delivery` header of the returned message (or its headers).
    static func returnedReferences(_ text: String) -> [String] {
        text.matches(of: /(?im)^X-Relance-Delivery:[ \t]*([^\r\n]+)/).map { String($0.1).trimmingCharacters(in: .whitespaces) }
    }
}
