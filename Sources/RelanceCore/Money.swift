import Foundation

/// Exact decimal amounts and their display in the debtor's locale.
public enum Money {
    static let posix = Locale(identifier: "en_US_POSIX")

    /// Why `text` is not a valid amount of `currency`, or nil.
    public static func amountProblem(_ text: String, currency: String) -> String? {
        let digits = Currency.minorUnits[currency] ?? 2
        let pattern = digits == 0 ? #"^[0-9]{1,15}$"# : #"^[0-9]{1,15}(\.[0-9]{1,\#(digits)})?$"#
        guard text.range(of: pattern, options: .regularExpression) != nil else {
            if text.range(of: #"^[0-9]{1,15}\.[0-9]+$"#, options: .regularExpression) != nil {
                return "'\(text.debugQuoted)' has more decimals than \(currency) allows (\(digits))"
            }
            return "'\(text.debugQuoted)' is not a positive decimal amount such as \"1234.50\" (dot separator, no sign, no thousands separator)"
        }
        guard let value = Decimal(string: text, locale: posix), value > 0 else { return "must be greater than zero" }
        return nil
    }

    public static func decimal(_ text: String) -> Decimal {
        Decimal(string: text, locale: posix) ?? 0
    }

    /// `1 234,50 €` in fr-FR (with U+202F / U+00A0 separators), `€1,234.50` in en-GB.
    /// FormatStyle caches its ICU formatter, so this is cheap to call per value.
    public static func format(_ amount: Decimal, currency: String, locale localeTag: String) -> String {
        let digits = Currency.minorUnits[currency] ?? 2
        let locale = Locale(identifier: localeTag.replacingOccurrences(of: "-", with: "_"))
        return amount.formatted(.currency(code: currency).locale(locale).precision(.fractionLength(digits)))
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
