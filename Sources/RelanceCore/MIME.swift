import Foundation

/// A mailbox: display name and address. Both are validated, so no header can be injected.
public struct Mailbox: Sendable, Hashable {
    public var name: String?
    public var address: String

    public init(name: String?, address: String) {
        self.name = name
        self.address = address
    }

    /// Parses `Name <addr@example.org>` or a bare address.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let open = trimmed.lastIndex(of: "<"), trimmed.hasSuffix(">") {
            var name = trimmed[..<open].trimmingCharacters(in: .whitespaces)
            if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 { name = String(name.dropFirst().dropLast()) }
            let address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
            guard EmailAddress.isValid(address), TextRules.problem(name, maxLength: 200) == nil else { return nil }
            self.init(name: name.isEmpty ? nil : name, address: address)
        } else {
            guard EmailAddress.isValid(trimmed) else { return nil }
            self.init(name: nil, address: trimmed)
        }
    }
}

/// A file attached to a message.
public struct MailAttachment: Sendable, Hashable {
    public var filename: String
    public var contentType: String
    public var data: Data

    public init(filename: String, contentType: String = "application/pdf", data: Data) {
        self.filename = filename
        self.contentType = contentType
        self.data = data
    }
}

/// A message to compose: headers, a text and an HTML alternative, attachments.
public struct MailMessage: Sendable {
    public var from: Mailbox
    public var to: Mailbox
    public var replyTo: Mailbox?
    public var subject: String
    public var text: String
    public var html: String?
    public var attachments: [MailAttachment]
    public var messageID: String
    public var date: Date
    /// Extra headers (name, value); names must be tokens, values are encoded like the subject.
    public var extraHeaders: [(String, String)]

    public init(
        from: Mailbox, to: Mailbox, replyTo: Mailbox? = nil, subject: String, text: String, html: String? = nil,
        attachments: [MailAttachment] = [], messageID: String, date: Date, extraHeaders: [(String, String)] = []
    ) {
        self.from = from
        self.to = to
        self.replyTo = replyTo
        self.subject = subject
        self.text = text
        self.html = html
        self.attachments = attachments
        self.messageID = messageID
        self.date = date
        self.extraHeaders = extraHeaders
    }
}

public struct MIMEError: Error, CustomStringConvertible {
    public var description: String
}

/// RFC 5322 / 2045 / 2046 / 2047 composition. Output uses CRLF line endings; every line ≤ 998 octets,
/// encoded lines ≤ 76, folded headers ≤ 78 where the content allows.
public enum MIME {
    /// Composes the full message. Throws if an address or header would be unsafe.
    public static func compose(_ message: MailMessage, boundarySeed: String) throws -> Data {
        for mailbox in [message.from, message.to] + (message.replyTo.map { [$0] } ?? []) {
            guard EmailAddress.isValid(mailbox.address) else { throw MIMEError(description: "invalid address '\(mailbox.address.debugQuoted)'") }
            if let name = mailbox.name, let problem = TextRules.problem(name, maxLength: 500) {
                throw MIMEError(description: "display name \(problem)")
            }
        }
        if let problem = TextRules.problem(message.subject, maxLength: 998) { throw MIMEError(description: "subject \(problem)") }
        guard message.messageID.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") }),
            message.messageID.utf8.contains(UInt8(ascii: "@"))
        else { throw MIMEError(description: "invalid Message-ID") }

        var out = ""
        func header(_ name: String, _ value: String) { out += fold(name + ": " + value) + "\r\n" }
        header("Date", rfc5322Date(message.date))
        header("From", mailbox(message.from))
        header("To", mailbox(message.to))
        if let replyTo = message.replyTo { header("Reply-To", mailbox(replyTo)) }
        out += encodedHeader("Subject", message.subject)
        header("Message-ID", "<\(message.messageID)>")
        for (name, value) in message.extraHeaders {
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
                throw MIMEError(description: "invalid header name '\(name.debugQuoted)'")
            }
            if let problem = TextRules.problem(value, maxLength: 998) { throw MIMEError(description: "header \(name) \(problem)") }
            out += encodedHeader(name, value)
        }
        header("MIME-Version", "1.0")

        let alternativeBoundary = "=_alt_" + boundarySeed
        let mixedBoundary = "=_mix_" + boundarySeed
        var body = ""
        func textPart(_ subtype: String, _ content: String) -> String {
            "Content-Type: text/\(subtype); charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                + quotedPrintable(content) + "\r\n"
        }
        var alternative: String
        if let html = message.html {
            alternative = "Content-Type: multipart/alternative;\r\n boundary=\"\(alternativeBoundary)\"\r\n\r\n"
            alternative += "--\(alternativeBoundary)\r\n" + textPart("plain", message.text)
            alternative += "--\(alternativeBoundary)\r\n" + textPart("html", html)
            alternative += "--\(alternativeBoundary)--\r\n"
        } else {
            alternative = textPart("plain", message.text)
        }
        if message.attachments.isEmpty {
            body = alternative
        } else {
            body = "Content-Type: multipart/mixed;\r\n boundary=\"\(mixedBoundary)\"\r\n\r\n"
            body += "This is a multi-part message in MIME format.\r\n"
            body += "--\(mixedBoundary)\r\n" + alternative
            for attachment in message.attachments {
                body += "--\(mixedBoundary)\r\n"
                body += "Content-Type: \(attachment.contentType);\r\n " + parameter("name", attachment.filename) + "\r\n"
                body += "Content-Transfer-Encoding: base64\r\n"
                body += "Content-Disposition: attachment;\r\n " + parameter("filename", attachment.filename) + "\r\n\r\n"
                body += attachment.data.base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed]) + "\r\n"
            }
            body += "--\(mixedBoundary)--\r\n"
        }
        out += body
        return Data(out.utf8)
    }

    static func mailbox(_ m: Mailbox) -> String {
        guard let name = m.name, !name.isEmpty else { return m.address }
        return phrase(name) + " <" + m.address + ">"
    }

    /// A display name: a quoted string when ASCII, else RFC 2047 encoded-words.
    static func phrase(_ name: String) -> String {
        if name.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            if name.utf8.allSatisfy({ phraseAtext[Int($0)] }) && !name.hasPrefix(" ") && !name.hasSuffix(" ") { return name }
            return "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return encodedWords(name).joined(separator: " ")
    }

    /// The ASCII characters a display name may hold unquoted (RFC 5322 atext, and spaces between words).
    static let phraseAtext: [Bool] = (0..<128).map { value in
        let scalar = Unicode.Scalar(UInt8(value))
        return ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            || "!#$%&'*+-/=?^_`{|}~ ".unicodeScalars.contains(scalar)
    }

    /// A header whose value may need RFC 2047 encoding; folded to 78 octets.
    static func encodedHeader(_ name: String, _ value: String) -> String {
        if value.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }) && !value.utf8.containsEncodedWordOpening {
            return fold(name + ": " + value) + "\r\n"
        }
        let words = encodedWords(value, firstLineBudget: 75 - name.count - 2)
        return name + ": " + words.joined(separator: "\r\n ") + "\r\n"
    }

    /// Splits `text` into `=?UTF-8?B?…?=` words of at most 75 characters, never splitting a character.
    static func encodedWords(_ text: String, firstLineBudget: Int = 75) -> [String] {
        let overhead = "=?UTF-8?B??=".count
        var words: [String] = []
        var chunk: [UInt8] = []
        func maxBytes(_ budget: Int) -> Int { ((budget - overhead) / 4) * 3 }
        func word() -> String { "=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=" }
        var limit = max(maxBytes(min(firstLineBudget, 75)), 3)
        for character in text {
            let bytes = character.utf8
            if chunk.count + bytes.count > limit, !chunk.isEmpty {
                words.append(word())
                chunk.removeAll(keepingCapacity: true)
                limit = maxBytes(75 - 1)
            }
            chunk.append(contentsOf: bytes)
        }
        if !chunk.isEmpty || words.isEmpty { words.append(word()) }
        return words
    }

    /// `name="value"` for ASCII file names, `name*=utf-8''percent-encoded` (RFC 2231) otherwise.
    static func parameter(_ name: String, _ value: String) -> String {
        let safe = value.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" }
        if safe { return "\(name)=\"\(value)\"" }
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~")
        let encoded = value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "attachment"
        return "\(name)*=utf-8''\(encoded)"
    }

    /// Folds an unstructured ASCII header line at spaces so lines stay within 78 octets where possible.
    static func fold(_ line: String) -> String {
        guard line.utf8.count > 78 else { return line }
        var result = ""
        var current = ""
        for (i, word) in line.split(separator: " ", omittingEmptySubsequences: false).enumerated() {
            let piece = i == 0 ? String(word) : " " + word
            if current.utf8.count + piece.utf8.count > 78 && !current.trimmingCharacters(in: .whitespaces).isEmpty {
                result += current + "\r\n"
                current = i == 0 ? String(word) : " " + word
            } else {
                current += piece
            }
        }
        return result + current
    }

    /// Quoted-printable (RFC 2045 §6.7) with CRLF line breaks and soft breaks keeping lines ≤ 76.
    /// Any line break in the input (CRLF, CR, LF) becomes CRLF; a "." opening a line is encoded.
    public static func quotedPrintable(_ text: String) -> String {
        var text = text
        return text.withUTF8 { input in
            let count = input.count
            // At most three octets for one, a CRLF for one or two, and a soft break ("=" CRLF) per 73 octets written.
            return String(unsafeUninitializedCapacity: count * 3 + count / 8 + 8) { out in
                var written = 0
                func put(_ byte: UInt8) {
                    out[written] = byte
                    written += 1
                }
                func hex(_ nibble: UInt8) -> UInt8 { nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") - 10 + nibble }
                var lineLength = 0
                var i = 0
                while i < count {
                    let byte = input[i]
                    if byte == 0x0D || byte == 0x0A {
                        put(0x0D)
                        put(0x0A)
                        lineLength = 0
                        i += (byte == 0x0D && i + 1 < count && input[i + 1] == 0x0A) ? 2 : 1
                        continue
                    }
                    let next = i + 1 < count ? input[i + 1] : 0x0A
                    let isLastOnLine = next == 0x0D || next == 0x0A
                    let literal =
                        (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=") && !(lineLength == 0 && byte == UInt8(ascii: ".")))
                        || ((byte == 0x20 || byte == 0x09) && !isLastOnLine)
                    if lineLength + (literal ? 1 : 3) > (isLastOnLine ? 76 : 75) {
                        put(UInt8(ascii: "="))
                        put(0x0D)
                        put(0x0A)
                        lineLength = 0
                    }
                    if literal && !(lineLength == 0 && byte == UInt8(ascii: ".")) {
                        put(byte)
                        lineLength += 1
                    } else {
                        put(UInt8(ascii: "="))
                        put(hex(byte >> 4))
                        put(hex(byte & 0x0F))
                        lineLength += 3
                    }
                    i += 1
                }
                return written
            }
        }
    }

    static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Thu, 01 Jan 1970 00:00:00 +0000` (RFC 5322 §3.3), always in UTC.
    static func rfc5322Date(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let rest = seconds - days * 86400
        let civil = CivilDate(dayNumber: days)
        let weekday = weekdays[((days % 7) + 11) % 7]  // 1970-01-01 was a Thursday
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(weekday), \(two(civil.day)) \(months[civil.month - 1]) \(civil.year) \(two(rest / 3600)):\(two(rest % 3600 / 60)):\(two(rest % 60)) +0000"
    }

    /// A Message-ID left part built from a delivery key: stable across retries of the same delivery.
    public static func messageID(reminderID: String, channel: String, domain: String) -> String {
        var local = "relance."
        for byte in reminderID.utf8 {
            let c = Character(UnicodeScalar(byte))
            if c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_") { local.append(c) } else { local += String(format: "=%02X", byte) }
        }
        return local + "." + channel + "@" + domain
    }

    /// The delivery a Message-ID of `messageID(reminderID:channel:domain:)` names (angle brackets
    /// allowed), or nil when it is not one of ours. Not authenticated: trust it only from an
    /// authenticated source (a provider's signed or token-protected event).
    public static func deliveryKey(fromMessageID text: String) -> (reminderID: String, channel: String)? {
        var id = Substring(text.trimmingCharacters(in: .whitespaces))
        if id.hasPrefix("<") && id.hasSuffix(">") { id = id.dropFirst().dropLast() }
        guard id.hasPrefix("relance."), let at = id.lastIndex(of: "@") else { return nil }
        let local = id[id.index(id.startIndex, offsetBy: 8)..<at]
        guard let dot = local.lastIndex(of: ".") else { return nil }
        let channel = String(local[local.index(after: dot)...])
        var bytes: [UInt8] = []
        var i = local.startIndex
        while i < dot {
            let c = local[i]
            if c == "=" {
                let hexEnd = local.index(i, offsetBy: 3, limitedBy: dot) ?? dot
                guard local.distance(from: i, to: hexEnd) == 3, let byte = UInt8(local[local.index(after: i)..<hexEnd], radix: 16) else { return nil }
                bytes.append(byte)
                i = hexEnd
            } else {
                guard c.isASCII, c.isLetter || c.isNumber || c == "-" || c == "_" else { return nil }
                bytes.append(c.asciiValue ?? 0)
                i = local.index(after: i)
            }
        }
        guard !bytes.isEmpty, !channel.isEmpty, let reminderID = String(bytes: bytes, encoding: .utf8) else { return nil }
        return (reminderID, channel)
    }
}

extension String.UTF8View {
    /// Whether `other`'s bytes occur in these, in a row (a byte search: no Unicode equivalence).
    public func containsBytes(of other: String.UTF8View) -> Bool {
        guard let first = other.first else { return true }
        var start = startIndex
        while let found = self[start...].firstIndex(of: first) {
            if self[found...].starts(with: other) { return true }
            start = index(after: found)
        }
        return false
    }

    /// Whether "=?" (how an RFC 2047 encoded word opens) occurs, found without Foundation's
    /// locale-aware search.
    var containsEncodedWordOpening: Bool {
        var previous: UInt8 = 0
        for byte in self {
            if previous == UInt8(ascii: "=") && byte == UInt8(ascii: "?") { return true }
            previous = byte
        }
        return false
    }
}
