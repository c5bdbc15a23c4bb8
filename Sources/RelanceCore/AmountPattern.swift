import Foundation

/// How one currency style (a currency in a locale) writes a plain amount — `1 234,50 €`,
/// `€1,234.50` — learned from ICU's own output for that style, and kept only when it reproduces
/// ICU's output exactly on a set of probes. `Money.format` writes such amounts itself (building
/// ICU's formatter and formatting was 2 % of an SMS's CPU) and leaves everything else to ICU: a
/// style whose probes disagree (other digits, grouping by two, a sign), an amount that would need
/// rounding, anything that is not plain digits.
struct AmountPattern: Sendable, Equatable {
    var prefix: String
    var suffix: String
    var grouping: String
    var decimalSeparator: String
    var fractionDigits: Int
    /// Integer digits from which the integer part is grouped: 4 (`1 000`) or 5 (es-ES: `1000`, `10.000`).
    var groupingFrom: Int

    /// The pattern of the style `icu` formats with, or nil when it cannot be trusted to agree with it.
    static func learn(fractionDigits: Int, _ icu: (Decimal) -> String) -> AmountPattern? {
        let groups = ["1", "234", "567"]
        let fraction = String("891234567".prefix(fractionDigits))
        let sample = groups.joined() + (fraction.isEmpty ? "" : "." + fraction)
        guard let learned = parse(icu(Money.decimal(sample)), groups: groups + (fraction.isEmpty ? [] : [fraction])) else { return nil }
        let thousand = icu(Money.decimal("1000"))
        for groupingFrom in [4, 5] {
            var pattern = learned
            pattern.groupingFrom = groupingFrom
            if pattern.format(plain: "1000") == thousand {
                return agreesOnProbes(pattern, icu) ? pattern : nil
            }
        }
        return nil
    }

    /// Amounts of every length and shape a message shows, compared with ICU's output.
    static let probes = [
        "0", "1", "7.5", "12.34", "99.9", "100", "999.99", "1000", "1000.5", "1001.01", "9999.99", "10000", "12345.67", "100000", "999999.99",
        "1000000", "98765432.1", "123456789", "100000000000", "999999999999999",
    ]

    static func agreesOnProbes(_ pattern: AmountPattern, _ icu: (Decimal) -> String) -> Bool {
        for text in probes {
            let fraction = text.split(separator: ".", omittingEmptySubsequences: false).dropFirst().first ?? ""
            if fraction.count > pattern.fractionDigits { continue }
            guard let mine = pattern.format(plain: text), mine == icu(Money.decimal(text)) else { return false }
        }
        return true
    }

    /// Reads `1␣234␣567,89` out of ICU's output for the amount whose digit runs are `groups`
    /// (`["1", "234", "567", "89"]`; no decimals when there are three): what comes before and after
    /// the digits, the group separator (the same twice) and the decimal separator.
    static func parse(_ output: String, groups: [String]) -> AmountPattern? {
        let bytes = Array(output.utf8)
        let isDigit = ASCIIDigits.isDigit
        guard let first = bytes.firstIndex(where: isDigit), let last = bytes.lastIndex(where: isDigit) else { return nil }
        // Alternating runs of digits and separators, from the first digit to the last.
        var runs: [[UInt8]] = []
        var index = first
        while index <= last {
            let digit = isDigit(bytes[index])
            var end = index
            while end <= last && isDigit(bytes[end]) == digit { end += 1 }
            runs.append(Array(bytes[index..<end]))
            index = end
        }
        guard runs.count == groups.count * 2 - 1 else { return nil }
        for (i, digits) in groups.enumerated() where runs[i * 2] != Array(digits.utf8) { return nil }
        let fractionDigits = groups.count > 3 ? groups[3].utf8.count : 0
        guard runs[1] == runs[3], let grouping = String(validating: runs[1], as: UTF8.self),
            let prefix = String(validating: bytes[..<first], as: UTF8.self), let suffix = String(validating: bytes[(last + 1)...], as: UTF8.self)
        else { return nil }
        var decimalSeparator = ""
        if fractionDigits > 0 {
            guard let separator = String(validating: runs[5], as: UTF8.self) else { return nil }
            decimalSeparator = separator
        }
        return AmountPattern(
            prefix: prefix, suffix: suffix, grouping: grouping, decimalSeparator: decimalSeparator, fractionDigits: fractionDigits, groupingFrom: 4)
    }

    /// `plain` written in this style: ASCII digits, optionally a dot and at most `fractionDigits`
    /// digits (`"1234.5"`); nil for anything else (a sign, an exponent, more decimals: ICU's job).
    func format(plain: String) -> String? {
        var integer: [UInt8] = []
        var fraction: [UInt8] = []
        var inFraction = false
        for byte in plain.utf8 {
            if byte == UInt8(ascii: ".") && !inFraction {
                inFraction = true
            } else if ASCIIDigits.isDigit(byte) {
                if inFraction { fraction.append(byte) } else { integer.append(byte) }
            } else {
                return nil
            }
        }
        guard !integer.isEmpty, !(inFraction && fraction.isEmpty) else { return nil }
        // Zeros at the end of the decimals need no rounding; at the start of the integer part they go.
        while fraction.count > fractionDigits, fraction.last == UInt8(ascii: "0") { fraction.removeLast() }
        guard fraction.count <= fractionDigits else { return nil }
        let significant = integer.drop { $0 == UInt8(ascii: "0") }
        let digits = significant.isEmpty ? [UInt8(ascii: "0")] : Array(significant)
        var out = prefix
        if digits.count >= groupingFrom {
            let head = digits.count % 3 == 0 ? 3 : digits.count % 3
            out += String(decoding: digits[..<head], as: UTF8.self)
            var start = head
            while start < digits.count {
                out += grouping
                out += String(decoding: digits[start..<(start + 3)], as: UTF8.self)
                start += 3
            }
        } else {
            out += String(decoding: digits, as: UTF8.self)
        }
        if fractionDigits > 0 {
            out += decimalSeparator
            out += String(decoding: fraction, as: UTF8.self)
            out += String(repeating: "0", count: fractionDigits - fraction.count)
        }
        return out + suffix
    }
}
