import Foundation
import Testing

@testable import RelanceCore

@Suite struct SMSEncodingTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var text: String
        var encoding: SMSEncoding
        var units: Int
        var segments: Int
        var description: String { name }
    }

    static let frenchAmount = Money.format(Decimal(string: "1234.50")!, currency: "EUR", locale: "fr-FR")

    static let cases: [Case] = [
        Case(name: "plain ASCII", text: "Bonjour", encoding: .gsm7, units: 7, segments: 1),
        Case(name: "French letters in GSM-7", text: "é è ù à É Ç", encoding: .gsm7, units: 11, segments: 1),
        Case(name: "fr-FR money (U+202F, U+00A0)", text: frenchAmount, encoding: .ucs2, units: 10, segments: 1),
        Case(name: "same amount with plain spaces", text: "1 234,50 €", encoding: .gsm7, units: 11, segments: 1),
        Case(name: "160 GSM-7 characters", text: String(repeating: "a", count: 160), encoding: .gsm7, units: 160, segments: 1),
        Case(name: "161 GSM-7 characters", text: String(repeating: "a", count: 161), encoding: .gsm7, units: 161, segments: 2),
        Case(name: "306 characters: two full segments", text: String(repeating: "a", count: 306), encoding: .gsm7, units: 306, segments: 2),
        Case(name: "extension characters count 2", text: "[{}]\\^~|€", encoding: .gsm7, units: 18, segments: 1),
        Case(name: "80 euros signs: 160 septets", text: String(repeating: "€", count: 80), encoding: .gsm7, units: 160, segments: 1),
        Case(
            name: "an escape pair is never split across segments", text: String(repeating: "a", count: 152) + "€" + String(repeating: "a", count: 152),
            encoding: .gsm7, units: 306, segments: 3),
        Case(name: "ê forces UCS-2", text: "Tête", encoding: .ucs2, units: 4, segments: 1),
        Case(name: "curly apostrophe forces UCS-2", text: "l’échéance", encoding: .ucs2, units: 10, segments: 1),
        Case(name: "70 UCS-2 characters", text: String(repeating: "ê", count: 70), encoding: .ucs2, units: 70, segments: 1),
        Case(name: "71 UCS-2 characters", text: String(repeating: "ê", count: 71), encoding: .ucs2, units: 71, segments: 2),
        Case(name: "an emoji counts 2", text: "Merci 😀", encoding: .ucs2, units: 8, segments: 1),
        Case(
            name: "a surrogate pair is never split", text: String(repeating: "ê", count: 66) + "😀" + String(repeating: "ê", count: 10), encoding: .ucs2,
            units: 78, segments: 2),
        Case(name: "Greek capitals of the basic table", text: "ΔΦΓΛΩΠΨΣΘΞ", encoding: .gsm7, units: 10, segments: 1),
        Case(name: "backtick is not GSM-7", text: "`", encoding: .ucs2, units: 1, segments: 1),
    ]

    @Test(arguments: cases)
    func analysis(_ c: Case) {
        let a = SMSAnalysis(c.text)
        #expect(a.encoding == c.encoding)
        #expect(a.units == c.units)
        #expect(a.segments == c.segments)
    }

    @Test func smallCedillaIsNotGSM7ButCapitalIs() {
        #expect(SMSEncoding.isGSM7("Ç"))
        #expect(!SMSEncoding.isGSM7("ç"))
    }

    @Test func septetsPerCharacterFollowTheTwoTables() {
        // Basic table, Latin-1 and beyond; extension table (escape + character); neither.
        for c: Unicode.Scalar in ["a", "@", "¤", "\n", "Ä", "ß", "Δ", "Ω"] { #expect(SMSEncoding.septets(c) == 1, "\(c)") }
        for c: Unicode.Scalar in ["^", "{", "}", "\\", "[", "~", "]", "|", "\u{0C}", "€"] { #expect(SMSEncoding.septets(c) == 2, "\(c)") }
        for c: Unicode.Scalar in ["`", "ç", "\t", "\u{00}", "\u{7F}", "\u{A0}", "ê", "α", "😀"] { #expect(SMSEncoding.septets(c) == nil, "\(c)") }
    }

    @Test(arguments: [
        ("Reçu : l’échéance « 15 févr. » — merci…", "Recu : l'échéance \" 15 févr. \" - merci..."),
        ("Cœur, œuvre, ŒUVRE", "Coeur, oeuvre, OEUVRE"),
        ("ê â î ô û ë ï ÿ À È Ù Â Ê Î Ô Û", "e a i o u e i y A E U A E I O U"),
        ("1\u{202F}234,50\u{00A0}€", "1 234,50 €"),
        ("Ščerbáková, Kraków, Łukasz".replacingOccurrences(of: ", Łukasz", with: ""), "Scerbakova, Krakow"),
        ("déjà réglé ? Répondez STOP", "déjà réglé ? Répondez STOP"),
    ])
    func transliteration(_ input: String, _ expected: String) throws {
        let output = try GSMTransliterator.transliterate(input).get()
        #expect(output == expected)
        #expect(SMSAnalysis(output).encoding == .gsm7)
    }

    @Test func frenchReminderStaysInOneSegmentOnceTransliterated() throws {
        let text =
            "Exemple SAS : sauf erreur, la facture F2026-0042 (\(Self.frenchAmount)) reste à régler. Réglez sur https://pay.example.fr/F2026-0042 – merci, à bientôt !"
        #expect(SMSAnalysis(text).encoding == .ucs2)
        #expect(SMSAnalysis(text).segments == 3)
        let gsm = try GSMTransliterator.transliterate(text).get()
        #expect(SMSAnalysis(gsm).encoding == .gsm7)
        #expect(SMSAnalysis(gsm).segments == 1)
    }

    @Test func unrepresentableCharactersAreNamed() {
        #expect(throws: GSMTransliterator.UnrepresentableCharacter(scalar: "Ł")) { try GSMTransliterator.transliterate("Łukasz").get() }
        #expect(throws: GSMTransliterator.UnrepresentableCharacter(scalar: "😀")) { try GSMTransliterator.transliterate("Merci 😀").get() }
    }

    @Test func referenceStaysShort() {
        let message = SMSMessage(to: "+33612345678", from: "EXEMPLE", text: "x", reference: "R/sms")
        #expect(message.toDigits == "33612345678")
    }
}
