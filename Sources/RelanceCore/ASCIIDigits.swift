/// Numbers written with ASCII digits only, wherever a format says "digits": `Int("+5")`,
/// `Double("inf")` and Unicode digits are not numbers of a record, a header or a configuration.
public enum ASCIIDigits {
    /// A non-negative whole number of at most 18 digits (no sign, no spaces).
    public static func integer(_ text: some StringProtocol) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 18 else { return nil }
        var value = 0
        for byte in text.utf8 {
            guard isDigit(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// A non-negative decimal such as `12` or `0.5` (no sign, exponent, `inf` or `nan`).
    public static func decimal(_ text: some StringProtocol) -> Double? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, integer(whole) != nil else { return nil }
        if parts.count == 2 { guard integer(parts[1]) != nil else { return nil } }
        return Double(String(text))
    }

    /// Whether `byte` is an ASCII digit.
    public static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// The value of one hexadecimal digit (`0-9`, `a-f`, `A-F`), or nil.
    public static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
