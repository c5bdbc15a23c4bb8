import Foundation

/// A pass over raw JSON before it is decoded, for what decoders let through silently: a key given
/// twice in one object (RFC 8259 leaves the meaning open — one reader takes the first amount,
/// another the last) and nesting deeper than any record needs.
public enum JSONShape {
    /// Why `data` is refused, or nil. Does not validate the JSON otherwise (the decoder does).
    public static func problem(_ data: Data, maxDepth: Int = 32) -> String? {
        struct Frame {
            var isObject: Bool
            var keys: Set<String> = []
            var expectingKey = false
        }
        var stack: [Frame] = []
        var bytes = data.makeIterator()
        while let byte = bytes.next() {
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard stack.count < maxDepth else { return "nested deeper than \(maxDepth) levels" }
                stack.append(Frame(isObject: byte == UInt8(ascii: "{"), expectingKey: byte == UInt8(ascii: "{")))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
            case UInt8(ascii: ","):
                if let last = stack.indices.last, stack[last].isObject { stack[last].expectingKey = true }
            case UInt8(ascii: "\""):
                guard let text = string(&bytes) else { return nil }  // unterminated: the decoder says so
                if let last = stack.indices.last, stack[last].isObject, stack[last].expectingKey {
                    stack[last].expectingKey = false
                    if !stack[last].keys.insert(text).inserted { return "the key '\(text.debugQuoted)' appears twice in one object" }
                }
            default:
                continue
            }
        }
        return nil
    }

    /// The rest of a string whose opening quote was read, escapes decoded; nil when it never ends.
    static func string(_ bytes: inout Data.Iterator) -> String? {
        var out: [UInt8] = []
        var pendingHigh: UInt32?
        func append(_ scalar: UInt32) {
            if let s = Unicode.Scalar(scalar) { out.append(contentsOf: Array(String(Character(s)).utf8)) }
        }
        while let byte = bytes.next() {
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escaped = bytes.next() else { return nil }
                switch escaped {
                case UInt8(ascii: "u"):
                    var value: UInt32 = 0
                    for _ in 0..<4 {
                        guard let h = bytes.next(), let digit = hexValue(h) else { return nil }
                        value = value << 4 | digit
                    }
                    if (0xD800...0xDBFF).contains(value) {
                        pendingHigh = value
                        continue
                    }
                    if let high = pendingHigh, (0xDC00...0xDFFF).contains(value) {
                        append(0x10000 + ((high - 0xD800) << 10) + (value - 0xDC00))
                    } else {
                        append(value)
                    }
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                default: out.append(escaped)
                }
                pendingHigh = nil
            default:
                out.append(byte)
                pendingHigh = nil
            }
        }
        return nil
    }

    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
