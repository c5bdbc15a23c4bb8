import Foundation

/// Why a text is not a JSON value a record may hold, and where (0-based byte offset).
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var offset: Int

    /// A refusal of valid JSON (a key twice, nesting too deep) rather than a syntax error.
    public var isRefusal: Bool = false

    public var description: String { "\(reason) at byte \(offset + 1)" }

    /// As a record's problem: `not valid JSON: …` for a syntax error.
    public var recordReason: String { isRefusal ? "\(reason) (byte \(offset + 1))" : "not valid JSON: \(description)" }
}

/// A strict RFC 8259 parser from UTF-8 bytes straight to `JSONValue`, written for the intake path
/// (a generic `Decodable` walk cost more than the rest of the validation). Beyond the RFC it
/// refuses what decoders let through silently: a key given twice in one object (one reader takes
/// the first amount, another the last) and nesting deeper than any record needs.
public struct JSONParser {
    public static let maxDepth = 32

    /// Parses one JSON text (surrounding whitespace allowed, nothing else after the value).
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> =
            bytes.withContiguousStorageIfAvailable { parse(buffer: $0) } ?? Array(bytes).withUnsafeBufferPointer { parse(buffer: $0) }
        return try result.get()
    }

    /// Parses a JSON object keeping only the members named in `keys` (their values whole); the
    /// others are checked for their syntax and nesting but not built, nor their strings checked
    /// for UTF-8, nor their objects for a key twice: for reading a few fields of an answer whose
    /// other fields do not matter (a gateway's acceptance). Errors as `parse` for what is kept; a
    /// member key of the object given twice is refused whether kept or not.
    public static func object(_ bytes: some Collection<UInt8>, keeping keys: Set<String>) throws(JSONParseError) -> [String: JSONValue] {
        let wanted = keys.map { Array($0.utf8) }
        let result: Result<[String: JSONValue], JSONParseError> =
            bytes.withContiguousStorageIfAvailable { buffer in
                Result { () throws(JSONParseError) in
                    var parser = JSONParser(bytes: buffer)
                    return try parser.topObject(keeping: wanted)
                }
            } ?? Array(bytes).withUnsafeBufferPointer { buffer in
                Result { () throws(JSONParseError) in
                    var parser = JSONParser(bytes: buffer)
                    return try parser.topObject(keeping: wanted)
                }
            }
        return try result.get()
    }

    mutating func topObject(keeping wanted: [[UInt8]]) throws(JSONParseError) -> [String: JSONValue] {
        skipWhitespace()
        guard current == UInt8(ascii: "{") else { throw error(current == nil ? "unexpected end of text" : "expected an object") }
        index += 1
        var members: [String: JSONValue] = [:]
        // Every key seen, kept or not, by its raw bytes: a key twice is refused either way.
        var seen: Set<[UInt8]> = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
        } else {
            members: while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw error("expected a key in quotes") }
                let keyStart = index
                let raw = try rawString()
                let key: [UInt8]
                if raw.contains(UInt8(ascii: "\\")) {
                    index = keyStart
                    key = Array(try string().utf8)
                } else {
                    key = Array(raw)
                }
                guard seen.insert(key).inserted else {
                    throw refusal("the key '\(String(decoding: key, as: UTF8.self).debugQuoted)' appears twice in one object", at: keyStart)
                }
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw error("expected ':' after a key") }
                index += 1
                skipWhitespace()
                if wanted.contains(key) {
                    members[String(decoding: key, as: UTF8.self)] = try value(depth: 1)
                } else {
                    try skipValue(depth: 1)
                }
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"):
                    index += 1
                    break members
                default: throw error("expected ',' or '}' in an object")
                }
            }
        }
        skipWhitespace()
        guard index == bytes.count else { throw error("unexpected text after the JSON value") }
        return members
    }

    /// The bytes between the quotes of the string at `index` (escapes left as they are), the
    /// index past its closing quote.
    mutating func rawString() throws(JSONParseError) -> UnsafeBufferPointer<UInt8> {
        let start = index
        index += 1
        let first = index
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return UnsafeBufferPointer(rebasing: bytes[first..<(index - 1)])
            case UInt8(ascii: "\\"):
                index += 1
                guard let escaped = current else { break }
                if escaped == UInt8(ascii: "u") {
                    index += 1
                    _ = try hexEscape()
                } else {
                    guard Self.unescaped(escaped) != nil else { throw error("unknown escape '\\\(Self.show(escaped))' in a string", at: index - 1) }
                    index += 1
                }
            default:
                if byte < 0x20 { throw error("a control character (U+\(Self.hex4(UInt32(byte)))) must be escaped in a string") }
                index += 1
            }
        }
        throw error("a string is not closed", at: start)
    }

    /// Checks the syntax of the value at `index` and moves past it, building nothing.
    mutating func skipValue(depth: Int) throws(JSONParseError) {
        guard let byte = current else { throw error("unexpected end of text") }
        switch byte {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard depth < Self.maxDepth else { throw refusal("nested deeper than \(Self.maxDepth) levels") }
            let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            index += 1
            skipWhitespace()
            if current == close {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                if close == UInt8(ascii: "}") {
                    guard current == UInt8(ascii: "\"") else { throw error("expected a key in quotes") }
                    _ = try rawString()
                    skipWhitespace()
                    guard current == UInt8(ascii: ":") else { throw error("expected ':' after a key") }
                    index += 1
                    skipWhitespace()
                }
                try skipValue(depth: depth + 1)
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): index += 1
                case close?:
                    index += 1
                    return
                default: throw error(close == UInt8(ascii: "}") ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array")
                }
            }
        case UInt8(ascii: "\""): _ = try rawString()
        case UInt8(ascii: "t"): _ = try literal("true", .null)
        case UInt8(ascii: "f"): _ = try literal("false", .null)
        case UInt8(ascii: "n"): _ = try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try skipNumber()
        default: throw error("unexpected character '\(Self.show(byte))'")
        }
    }

    /// Parses a text already known to be valid UTF-8 (a Swift string): strings are not validated again.
    public static func parse(validatedUTF8 text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        return try text.withUTF8 { parse(buffer: $0, validated: true) }.get()
    }

    static func parse(buffer: UnsafeBufferPointer<UInt8>, validated: Bool = false) -> Result<JSONValue, JSONParseError> {
        var parser = JSONParser(bytes: buffer)
        parser.validated = validated
        do throws(JSONParseError) {
            parser.skipWhitespace()
            let value = try parser.value(depth: 0)
            parser.skipWhitespace()
            guard parser.index == buffer.count else { throw parser.error("unexpected text after the JSON value") }
            return .success(value)
        } catch {
            return .failure(error)
        }
    }

    /// An object whose members are all strings, written without whitespace (what
    /// `JSONText.object` writes), decoded with this parser's own string reading but without
    /// building `JSONValue`s; nil for anything else (`parse` then says what is wrong).
    public static func stringObject(validatedUTF8 text: String) -> [String: String]? {
        var text = text
        return text.withUTF8 { buffer -> [String: String]? in
            var parser = JSONParser(bytes: buffer)
            parser.validated = true
            return try? parser.stringMembers()
        }
    }

    mutating func stringMembers() throws(JSONParseError) -> [String: String]? {
        guard current == UInt8(ascii: "{") else { return nil }
        index += 1
        var members: [String: String] = [:]
        if current == UInt8(ascii: "}") {
            index += 1
            return index == bytes.count ? members : nil
        }
        while true {
            guard current == UInt8(ascii: "\"") else { return nil }
            let key = try string()
            guard current == UInt8(ascii: ":") else { return nil }
            index += 1
            guard current == UInt8(ascii: "\"") else { return nil }
            guard members.updateValue(try string(), forKey: key) == nil else { return nil }
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return index == bytes.count ? members : nil
            default: return nil
            }
        }
    }

    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    /// The bytes are known to be valid UTF-8 (so is every string between quotes).
    var validated = false

    func error(_ reason: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(reason: reason, offset: offset ?? index)
    }

    func refusal(_ reason: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(reason: reason, offset: offset ?? index, isRefusal: true)
    }

    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard let byte = current else { throw error("unexpected end of text") }
        switch byte {
        case UInt8(ascii: "{"):
            guard depth < Self.maxDepth else { throw refusal("nested deeper than \(Self.maxDepth) levels") }
            return try object(depth: depth + 1)
        case UInt8(ascii: "["):
            guard depth < Self.maxDepth else { throw refusal("nested deeper than \(Self.maxDepth) levels") }
            return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("unexpected character '\(Self.show(byte))'")
        }
    }

    mutating func literal(_ word: StaticString, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
        let start = index
        for expected in UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
            guard current == expected else { throw error("unexpected character, expected \(word)", at: start) }
            index += 1
        }
        return value
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1  // {
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a key in quotes") }
            let keyStart = index
            let key = try string()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':' after the key '\(key.debugQuoted)'") }
            index += 1
            skipWhitespace()
            let member = try value(depth: depth)
            guard members.updateValue(member, forKey: key) == nil else {
                throw refusal("the key '\(key.debugQuoted)' appears twice in one object", at: keyStart)
            }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return .object(members)
            default: throw error("expected ',' or '}' in an object")
            }
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try value(depth: depth))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return .array(items)
            default: throw error("expected ',' or ']' in an array")
            }
        }
    }

    /// A string whose opening quote is at `index`.
    mutating func string() throws(JSONParseError) -> String {
        let start = index
        index += 1
        // Fast path: no escape.
        var scan = index
        while scan < bytes.count {
            let byte = bytes[scan]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[index..<scan])
                guard let text = validated ? String(decoding: raw, as: UTF8.self) : String(validating: raw, as: UTF8.self) else {
                    throw error("a string is not valid UTF-8", at: start)
                }
                index = scan + 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("a control character (U+\(Self.hex4(UInt32(byte)))) must be escaped in a string", at: scan) }
            scan += 1
        }
        var out: [UInt8] = Array(UnsafeBufferPointer(rebasing: bytes[index..<scan]))
        index = scan
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let text = String(validating: out, as: UTF8.self) else { throw error("a string is not valid UTF-8", at: start) }
                return text
            case UInt8(ascii: "\\"):
                index += 1
                guard let escaped = current else { break }
                index += 1
                if let plain = Self.unescaped(escaped) {
                    out.append(plain)
                    continue
                }
                switch escaped {
                case UInt8(ascii: "u"):
                    let escapeStart = index - 2
                    var scalar = try hexEscape()
                    if (0xDC00...0xDFFF).contains(scalar) { throw error("a low surrogate (\\u\(Self.hex4(scalar))) without its high half", at: escapeStart) }
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard current == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                            throw error("a high surrogate (\\u\(Self.hex4(scalar))) without its low half", at: escapeStart)
                        }
                        index += 2
                        let low = try hexEscape()
                        guard (0xDC00...0xDFFF).contains(low) else {
                            throw error("a high surrogate (\\u\(Self.hex4(scalar))) without its low half", at: escapeStart)
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    // Not a surrogate here, so always a valid scalar.
                    if let s = Unicode.Scalar(scalar) { out.append(contentsOf: String(Character(s)).utf8) }
                default: throw error("unknown escape '\\\(Self.show(escaped))' in a string", at: index - 2)
                }
            default:
                if byte < 0x20 { throw error("a control character (U+\(Self.hex4(UInt32(byte)))) must be escaped in a string") }
                out.append(byte)
                index += 1
            }
        }
        throw error("a string is not closed", at: start)
    }

    /// The octet a one-character escape stands for (`\"`, `\\`, `\/`, `\n`, `\t`, `\r`, `\b`, `\f`);
    /// nil for `\u` and for what is not an escape.
    static func unescaped(_ escaped: UInt8) -> UInt8? {
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): escaped
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "t"): 0x09
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        default: nil
        }
    }

    mutating func hexEscape() throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = current, let digit = ASCIIDigits.hexValue(byte) else { throw error("\\u must be followed by four hexadecimal digits") }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    mutating func number() throws(JSONParseError) -> JSONValue {
        let start = index
        try skipNumber()
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let decimal = Decimal(string: text, locale: Money.posix), !decimal.isNaN else { throw error("the number \(text) is out of range", at: start) }
        return .number(decimal)
    }

    /// Moves past the number at `index`, checking its syntax.
    mutating func skipNumber() throws(JSONParseError) {
        let start = index
        func digits(_ parser: inout JSONParser) -> Int {
            var count = 0
            while let byte = parser.current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                parser.index += 1
                count += 1
            }
            return count
        }
        if current == UInt8(ascii: "-") { index += 1 }
        if current == UInt8(ascii: "0") {
            index += 1
            if let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { throw error("a number must not start with 0", at: start) }
        } else if digits(&self) == 0 {
            throw error("a number needs digits", at: start)
        }
        if current == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw error("a number needs digits after its decimal point", at: start) }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw error("a number needs digits in its exponent", at: start) }
        }
    }

    static func show(_ byte: UInt8) -> String {
        (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16, uppercase: true)
    }

    static func hex4(_ value: UInt32) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }
}
