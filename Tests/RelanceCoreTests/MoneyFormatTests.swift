import Foundation
import Testing

@testable import RelanceCore

/// `Money.format` writes plain amounts from a pattern learned from ICU (`AmountPattern`): what it
/// writes must be exactly what ICU writes, in every locale and currency, or ICU must write it.
@Suite struct MoneyFormatTests {
    static let locales = [
        "fr-FR", "en-GB", "de-DE", "es-ES", "it-IT", "nl-NL", "pt-PT", "de-CH", "fr-CH", "en-US", "en-IE", "pl-PL", "sv-SE", "nb-NO", "da-DK",
        "cs-CZ", "fr-BE", "nl-BE", "de-AT", "fr-CA", "en-IN", "hi-IN", "ar-EG", "ar-MA", "ja-JP", "fa-IR",
    ]
    static let currencies = ["EUR", "GBP", "USD", "CHF", "JPY", "SEK", "KWD", "INR", "CAD", "MAD", "PLN"]

    /// A reproducible stream of amounts as records write them: 1 to 15 integer digits (sometimes
    /// with leading zeros), 0 to the currency's decimals (sometimes ending in zeros).
    struct Amounts {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        mutating func amount(decimals: Int) -> String {
            let length = [1, 1, 2, 3, 3, 4, 4, 5, 6, 7, 9, 12, 15][next(13)]
            var text = next(10) == 0 ? "00" : ""
            for i in 0..<length { text += String(i == 0 && length > 1 ? 1 + next(9) : next(10)) }
            let fraction = decimals == 0 ? 0 : next(decimals + 1)
            if fraction > 0 { text += "." + (0..<fraction).map { _ in String(next(10)) }.joined() }
            return text
        }
    }

    @Test func plainAmountsAreWrittenExactlyAsICUWritesThem() {
        var amounts = Amounts(state: 42)
        for locale in Self.locales {
            for currency in Self.currencies {
                let icu = Money.style(currency: currency, locale: locale)
                let decimals = Currency.minorUnits[currency] ?? 2
                for text in ["0", "1000", "10000", "999999.99"] + (0..<60).map({ _ in amounts.amount(decimals: decimals) }) {
                    guard Money.amountProblem(text, currency: currency) == nil || text == "0" else { continue }
                    let expected = Money.decimal(text).formatted(icu)
                    #expect(Money.format(text: text, currency: currency, locale: locale) == expected, "\(text) \(currency) \(locale)")
                    #expect(Money.format(Money.decimal(text), currency: currency, locale: locale) == expected, "\(text) \(currency) \(locale)")
                }
            }
        }
    }

    /// Sums and computed amounts (penalties, totals) go through `Decimal`; those that would need
    /// rounding, and negative ones, are ICU's.
    @Test func amountsThatNeedRoundingOrASignAreLeftToICU() {
        for (amount, currency) in [("12.345", "EUR"), ("0.005", "EUR"), ("12.5", "JPY"), ("-3.20", "EUR"), ("-1000", "USD")] {
            let value = Money.decimal(amount)
            #expect(Money.format(value, currency: currency, locale: "fr-FR") == value.formatted(Money.style(currency: currency, locale: "fr-FR")))
        }
        let pattern = Money.pattern(.init(currency: "EUR", locale: "fr-FR"))
        #expect(pattern?.format(plain: "12.345") == nil)
        #expect(pattern?.format(plain: "-3") == nil)
        #expect(pattern?.format(plain: "1e5") == nil)
        #expect(pattern?.format(plain: "12.") == nil)
    }

    /// The styles messages use most are written without ICU (else the test above proves nothing
    /// about the pattern), and one whose digits are not ASCII is left to ICU.
    @Test func commonStylesHaveAPatternAndOthersFallBack() {
        for (currency, locale) in [("EUR", "fr-FR"), ("EUR", "en-GB"), ("GBP", "en-GB"), ("EUR", "de-DE"), ("JPY", "ja-JP"), ("EUR", "es-ES")] {
            #expect(Money.pattern(.init(currency: currency, locale: locale)) != nil, "\(currency) \(locale)")
        }
        #expect(Money.pattern(.init(currency: "EUR", locale: "fr-FR"))?.format(plain: "1234.5") == "1\u{202F}234,50\u{A0}€")
        #expect(Money.pattern(.init(currency: "EUR", locale: "es-ES"))?.groupingFrom == 5)
        #expect(Money.pattern(.init(currency: "EUR", locale: "fa-IR")) == nil)
    }
}
