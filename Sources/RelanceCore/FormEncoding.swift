import Foundation

/// `application/x-www-form-urlencoded`: gateway requests, callbacks and query strings.
/// Written over UTF-8 bytes (no Foundation string searches): it runs once per SMS and per callback.
public enum FormEncoding {
    /// A body from ordered pairs.
    public static func body(_ pairs: [(String, String)]) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(pairs.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 2 } * 3 / 2)
        for (index, (name, value)) in pairs.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "&")) }
            append(name, to: &out)
            out.append(UInt8(ascii: "="))
            append(value, to: &out)
        }
        return Data(out)
    }

    /// The pairs of a body or query, in order; nil when an escape is malformed or a text is not UTF-8.
    public static func pairs(_ text: String) -> [(String, String)]? {
        var text = text
        return text.withUTF8 { pairs(buffer: $0) }
    }

    public static func pairs(_ bytes: Data) -> [(String, String)]? {
        bytes.withUnsafeBytes { pairs(buffer: $0.assumingMemoryBound(to: UInt8.self)) }
    }

    static func pairs(buffer bytes: UnsafeBufferPointer<UInt8>) -> [(String, String)]? {
        var pairs: [(String, String)] = []
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "&") { end += 1 }
            if end > start {
                var equals = start
                while equals < end && bytes[equals] != UInt8(ascii: "=") { equals += 1 }
                guard let name = decode(UnsafeBufferPointer(rebasing: bytes[start..<equals])) else { return nil }
                let value = equals < end ? decode(UnsafeBufferPointer(rebasing: bytes[(equals + 1)..<end])) : ""
                guard let value else { return nil }
                pairs.append((name, value))
            }
            start = end + 1
        }
        return pairs
    }

    public static func encode(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 2)
        append(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static let hex = Array("0123456789ABCDEF".utf8)

    /// Letters, digits and `-._*` as they are, space as `+`, every other byte as `%XX`.
    static func append(_ text: String, to out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "*"):
                out.append(byte)
            case UInt8(ascii: " "): out.append(UInt8(ascii: "+"))
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            }
        }
    }

    /// `+` as space, `%XX` as its byte; nil when an escape is cut short or not hexadecimal, or
    /// when the bytes are not UTF-8.
    static func decode(_ encoded: UnsafeBufferPointer<UInt8>) -> String? {
        // Nothing to unescape: validate and copy once.
        if !encoded.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "%") }) { return String(validating: encoded, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(encoded.count)
        var index = 0
        while index < encoded.count {
            let byte = encoded[index]
            index += 1
            switch byte {
            case UInt8(ascii: "+"): out.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard index + 1 < encoded.count, let high = ASCIIDigits.hexValue(encoded[index]), let low = ASCIIDigits.hexValue(encoded[index + 1]) else {
                    return nil
                }
                index += 2
                out.append(high << 4 | low)
            default: out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}
