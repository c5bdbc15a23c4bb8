import Foundation

/// Reads a message back, for a person to proofread (`relance preview`): headers with their RFC 2047
/// words decoded, the text part, the HTML part as text, the attachments listed. Enough for the
/// messages `MIME.compose` writes; anything it cannot read is shown as it is, never dropped.
public enum MIMEReader {
    public struct Attachment: Sendable, Hashable {
        public var filename: String
        public var contentType: String
        public var size: Int
    }

    public struct View: Sendable, Hashable {
        /// Headers in order, values decoded and unfolded.
        public var headers: [(name: String, value: String)]
        public var text: String?
        public var html: String?
        public var attachments: [Attachment]

        public func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }

        public static func == (a: View, b: View) -> Bool {
            a.headers.map { [$0.name, $0.value] } == b.headers.map { [$0.name, $0.value] } && a.text == b.text && a.html == b.html
                && a.attachments == b.attachments
        }
        public func hash(into hasher: inout Hasher) {
            hasher.combine(text)
            hasher.combine(html)
        }
    }

    public static func read(_ data: Data) -> View {
        var view = View(headers: [], text: nil, html: nil, attachments: [])
        let (headers, body) = split(String(decoding: data, as: UTF8.self))
        view.headers = headers.map { ($0.name, decodeWords($0.value)) }
        walk(headers: headers, body: body, into: &view)
        return view
    }

    /// The decoded view as text: headers, then each part under a title.
    public static func render(_ view: View, headers shown: [String] = ["Date", "From", "To", "Reply-To", "Subject"]) -> String {
        var lines = shown.compactMap { name in view.header(name).map { "\(name): \($0)" } }
        if let text = view.text { lines += ["", "--- text ---", text.trimmingCharacters(in: .newlines)] }
        if let html = view.html { lines += ["", "--- HTML, as text ---", htmlAsText(html)] }
        if !view.attachments.isEmpty {
            lines += ["", "--- attachments ---"] + view.attachments.map { "  \($0.filename) (\($0.contentType), \($0.size) bytes)" }
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Structure

    public typealias Headers = [(name: String, value: String)]

    /// Header block (unfolded) and body of a message or a part.
    public static func split(_ text: String) -> (Headers, String) {
        let normalised = text.replacingOccurrences(of: "\r\n", with: "\n")
        let (head, body): (Substring, String)
        if let end = normalised.range(of: "\n\n") {
            (head, body) = (normalised[..<end.lowerBound], String(normalised[end.upperBound...]))
        } else {
            (head, body) = (Substring(normalised), "")
        }
        var headers: Headers = []
        for line in head.split(separator: "\n", omittingEmptySubsequences: false) {
            if let first = line.first, first == " " || first == "\t", let last = headers.popLast() {
                headers.append((last.name, last.value + " " + line.trimmingCharacters(in: .whitespaces)))
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
        }
        return (headers, body)
    }

    public static func value(_ headers: Headers, _ name: String) -> String? { headers.first { $0.name.lowercased() == name }?.value }

    /// `type/subtype` (lower-cased) and its parameters.
    static func contentType(_ headers: Headers) -> (type: String, parameters: [String: String]) {
        let raw = value(headers, "content-type") ?? "text/plain"
        let pieces = raw.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        var parameters: [String: String] = [:]
        for piece in pieces.dropFirst() {
            guard let equals = piece.firstIndex(of: "=") else { continue }
            var value = String(piece[piece.index(after: equals)...])
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            parameters[piece[..<equals].lowercased()] = value
        }
        return ((pieces.first ?? "text/plain").lowercased(), parameters)
    }

    static func walk(headers: Headers, body: String, into view: inout View) {
        let (type, parameters) = contentType(headers)
        if type.hasPrefix("multipart/"), let boundary = parameters["boundary"] {
            for part in parts(of: body, boundary: boundary) {
                let (partHeaders, partBody) = split(part)
                walk(headers: partHeaders, body: partBody, into: &view)
            }
            return
        }
        let bytes = decodeBody(body, encoding: value(headers, "content-transfer-encoding")?.lowercased() ?? "7bit")
        let disposition = value(headers, "content-disposition") ?? ""
        if disposition.lowercased().hasPrefix("attachment") || !type.hasPrefix("text/") {
            let name = filename(disposition: disposition, contentType: parameters) ?? "unnamed"
            view.attachments.append(Attachment(filename: name, contentType: type, size: bytes.count))
        } else if type == "text/html" {
            view.html = String(decoding: bytes, as: UTF8.self)
        } else {
            view.text = String(decoding: bytes, as: UTF8.self)
        }
    }

    static func parts(of body: String, boundary: String) -> [String] {
        var parts: [String] = []
        var current: [Substring]?
        for line in body.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "--" + boundary + "--" {
                if let lines = current { parts.append(lines.joined(separator: "\n")) }
                return parts
            }
            if line == "--" + boundary {
                if let lines = current { parts.append(lines.joined(separator: "\n")) }
                current = []
            } else {
                current?.append(line)
            }
        }
        if let lines = current { parts.append(lines.joined(separator: "\n")) }
        return parts
    }

    static func filename(disposition: String, contentType: [String: String]) -> String? {
        let (_, parameters) = MIMEReader.contentType([("content-type", "x/x; " + disposition.split(separator: ";").dropFirst().joined(separator: ";"))])
        if let extended = parameters["filename*"] ?? contentType["name*"] {
            let encoded = extended.components(separatedBy: "''").last ?? extended
            return encoded.removingPercentEncoding ?? encoded
        }
        return (parameters["filename"] ?? contentType["name"]).map(decodeWords)
    }

    // MARK: Encodings

    static func decodeBody(_ body: String, encoding: String) -> Data {
        switch encoding {
        case "base64": return Data(base64Encoded: body.filter { !$0.isWhitespace }) ?? Data(body.utf8)
        case "quoted-printable": return decodeQuotedPrintable(body)
        default: return Data(body.utf8)
        }
    }

    /// RFC 2045 §6.7, soft line breaks included; a malformed escape is kept as written.
    public static func decodeQuotedPrintable(_ text: String) -> Data {
        let bytes = Array(text.replacingOccurrences(of: "\r\n", with: "\n").utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
            case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "="), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "\n") {
                i += 2
            } else if b == UInt8(ascii: "="), i + 2 < bytes.count, let high = hex(bytes[i + 1]), let low = hex(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(b)
                i += 1
            }
        }
        return Data(out)
    }

    /// RFC 2047 encoded-words (`=?UTF-8?B?…?=`, `=?UTF-8?Q?…?=`, ISO-8859-1 too); the white space
    /// between two adjacent words is dropped, as the RFC says.
    public static func decodeWords(_ value: String) -> String {
        guard value.contains("=?") else { return value }
        var result = ""
        var rest = Substring(value)
        var previousWasWord = false
        while let start = rest.range(of: "=?") {
            let before = rest[..<start.lowerBound]
            let afterStart = rest[start.upperBound...]
            let pieces = afterStart.split(separator: "?", maxSplits: 3, omittingEmptySubsequences: false)
            guard pieces.count == 4, pieces[3].hasPrefix("="), let decoded = decodeWord(charset: pieces[0], encoding: pieces[1], text: pieces[2]) else {
                result += before + "=?"
                rest = afterStart
                previousWasWord = false
                continue
            }
            if !(previousWasWord && before.allSatisfy(\.isWhitespace)) { result += before }
            result += decoded
            rest = pieces[3].dropFirst()
            previousWasWord = true
        }
        return result + rest
    }

    static func decodeWord(charset: Substring, encoding: Substring, text: Substring) -> String? {
        let bytes: Data?
        switch encoding.uppercased() {
        case "B": bytes = Data(base64Encoded: String(text))
        case "Q": bytes = decodeQuotedPrintable(text.replacingOccurrences(of: "_", with: " "))
        default: bytes = nil
        }
        guard let bytes else { return nil }
        switch charset.lowercased() {
        case "utf-8", "utf8", "us-ascii": return String(validating: bytes, as: UTF8.self)
        case "iso-8859-1", "latin1": return String(bytes.map { Character(Unicode.Scalar($0)) })
        default: return nil
        }
    }

    // MARK: HTML as text

    /// Tags dropped, block ends as line breaks, entities decoded, runs of blank lines collapsed.
    public static func htmlAsText(_ html: String) -> String {
        var text = html
        for block in ["style", "script", "head"] {
            while let open = text.range(of: "<\(block)", options: .caseInsensitive),
                let close = text.range(of: "</\(block)>", options: .caseInsensitive, range: open.upperBound..<text.endIndex)
            {
                text.removeSubrange(open.lowerBound..<close.upperBound)
            }
        }
        var out = ""
        var inTag = false
        var tag = ""
        for character in text {
            if inTag {
                if character == ">" {
                    inTag = false
                    let name = tag.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "/ ")).split(separator: " ").first ?? ""
                    if ["br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table", "ul", "ol"].contains(String(name)) { out += "\n" }
                    if name == "td" || name == "th" { out += " " }
                } else {
                    tag.append(character)
                }
            } else if character == "<" {
                inTag = true
                tag = ""
            } else {
                out.append(character)
            }
        }
        let lines = decodeEntities(out).split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        }
        var kept: [String] = []
        for line in lines where !(line.isEmpty && (kept.last?.isEmpty ?? true)) { kept.append(line) }
        return kept.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        let named: [String: String] = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{00A0}", "euro": "€"]
        var out = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            if let semi = after.prefix(10).firstIndex(of: ";") {
                let name = String(after[..<semi])
                var scalar: Unicode.Scalar?
                if name.hasPrefix("#x") || name.hasPrefix("#X") {
                    scalar = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
                } else if name.hasPrefix("#") {
                    scalar = ASCIIDigits.integer(name.dropFirst()).flatMap { UInt32(exactly: $0) }.flatMap(Unicode.Scalar.init)
                }
                if let scalar {
                    out.unicodeScalars.append(scalar)
                    rest = after[after.index(after: semi)...]
                    continue
                }
                if let value = named[name] {
                    out += value
                    rest = after[after.index(after: semi)...]
                    continue
                }
            }
            out += "&"
            rest = after
        }
        return out + rest
    }
}
