import Foundation

/// Exact decimal amounts and their display in the debtor's locale.
public enum Money {
    static let posix = Locale(identifier: "en_US_POSIX")

    /// Why `text` is not a valid amount of `currency`, or nil.
    public static func amountProblem(_ text: String, currency: String) -> String? {
        let digits = Currency.minorUnits[currency] ?? 2
        // Up to 15 integer digits, then optionally a dot and 1 to `digits` decimals (ASCII only).
        let utf8 = Array(text.utf8)
        let isDigit = ASCIIDigits.isDigit
        let integer = utf8.prefix(while: isDigit).count
        let rest = utf8.dropFirst(integer)
        let decimals = rest.first == UInt8(ascii: ".") ? rest.dropFirst() : []
        let wellFormed =
            (1...15).contains(integer)
            && (rest.isEmpty || (rest.first == UInt8(ascii: ".") && !decimals.isEmpty && decimals.allSatisfy(isDigit)))
        guard wellFormed && decimals.count <= digits && (digits > 0 || rest.isEmpty) else {
            if wellFormed && !rest.isEmpty {
                return "'\(text.debugQuoted)' has more decimals than \(currency) allows (\(digits))"
            }
            return "'\(text.debugQuoted)' is not a positive decimal amount such as \"1234.50\" (dot separator, no sign, no thousands separator)"
        }
        // Digits and at most one dot: greater than zero exactly when a digit is not 0 (no Decimal parsed).
        guard utf8.contains(where: { $0 >= UInt8(ascii: "1") && $0 <= UInt8(ascii: "9") }) else { return "must be greater than zero" }
        return nil
    }

    public static func decimal(_ text: String) -> Decimal {
        Decimal(string: text, locale: posix) ?? 0
    }

    /// `1 234,50 €` in fr-FR (with U+202F / U+00A0 separators), `€1,234.50` in en-GB.
    /// A plain amount is written from the style's `AmountPattern` (learned from ICU and checked
    /// against it); anything else is formatted by ICU, memoised per value: the same sums (the
    /// indemnity, zero interest, common totals) recur in nearly every message.
    public static func format(_ amount: Decimal, currency: String, locale localeTag: String) -> String {
        let style = StyleKey(currency: currency, locale: localeTag)
        if let pattern = pattern(style), let text = pattern.format(plain: amount.description) { return text }
        return formatted.value(AmountKey(amount: amount, style: style)) { key in
            key.amount.formatted(Self.style(currency: key.style.currency, locale: key.style.locale))
        }
    }

    /// An amount as a record writes it (`"1234.50"`, checked by `amountProblem`), formatted as
    /// `format(_:currency:locale:)` does, without reading it into a `Decimal` first when it is plain.
    public static func format(text: String, currency: String, locale localeTag: String) -> String {
        if let pattern = pattern(StyleKey(currency: currency, locale: localeTag)), let formatted = pattern.format(plain: text) { return formatted }
        return format(decimal(text), currency: currency, locale: localeTag)
    }

    /// The style's pattern, learned once; nil when ICU formats every amount of it.
    static func pattern(_ style: StyleKey) -> AmountPattern? {
        patterns.value(style) { key in
            let icu = Self.style(currency: key.currency, locale: key.locale)
            return AmountPattern.learn(fractionDigits: Currency.minorUnits[key.currency] ?? 2) { $0.formatted(icu) }
        }
    }

    static let patterns = Memo<StyleKey, AmountPattern?>(limit: 256)

    struct StyleKey: Hashable, Sendable {
        var currency: String
        var locale: String
    }

    struct AmountKey: Hashable, Sendable {
        var amount: Decimal
        var style: StyleKey
    }

    static let formatted = Memo<AmountKey, String>(limit: 4096)

    /// One format style per currency and locale: building its `Locale` costs more than formatting.
    static let styles = Memo<StyleKey, Decimal.FormatStyle.Currency>(limit: 256)

    static func style(currency: String, locale: String) -> Decimal.FormatStyle.Currency {
        styles.value(StyleKey(currency: currency, locale: locale)) { key in
            let digits = Currency.minorUnits[key.currency] ?? 2
            return .currency(code: key.currency).locale(Locale(identifier: key.locale.replacingOccurrences(of: "-", with: "_")))
                .precision(.fractionLength(digits))
        }
    }

    /// Sum of amounts per currency, in order of first appearance.
    public static func totals(_ invoices: [Invoice]) -> [(currency: String, amount: Decimal)] {
        var order: [String] = []
        var sums: [String: Decimal] = [:]
        for invoice in invoices {
            if sums[invoice.currency] == nil { order.append(invoice.currency) }
            sums[invoice.currency, default: 0] += invoice.decimalAmount
        }
        return order.compactMap { currency in sums[currency].map { (currency, $0) } }
    }
}
