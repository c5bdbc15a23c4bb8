import Foundation

/// SMS character sets and segmentation (3GPP TS 23.038 / 23.040).
public enum SMSEncoding: String, Sendable, Codable, Hashable {
    /// GSM 03.38 default alphabet, 7 bits a character (extension characters take two).
    case gsm7
    /// UCS-2 (UTF-16 code units), 16 bits a character.
    case ucs2

    /// The GSM 03.38 basic table, in code order.
    public static let basic: Set<Unicode.Scalar> = Set(
        ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ" + "ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
            .unicodeScalars)
    /// The extension table (escape + character): two septets each.
    public static let extended: Set<Unicode.Scalar> = Set("\u{0C}^{}\\[~]|€".unicodeScalars)

    public static func isGSM7(_ scalar: Unicode.Scalar) -> Bool { septets(scalar) != nil }

    /// Septets a character takes in GSM-7 (1, or 2 for the extension table); nil when it has none.
    public static func septets(_ scalar: Unicode.Scalar) -> Int? {
        if scalar.value < 0x100 {
            let cost = latin1Septets[Int(scalar.value)]
            return cost == 0 ? nil : Int(cost)
        }
        if basic.contains(scalar) { return 1 }
        return extended.contains(scalar) ? 2 : nil
    }

    /// `septets` below U+0100 (0: not GSM-7), read from a table: nearly every character of a
    /// French or English message is there, and hashing each one into the sets was measurable.
    static let latin1Septets: [UInt8] = (0..<0x100).map { value in
        let scalar = Unicode.Scalar(UInt8(value))
        return basic.contains(scalar) ? 1 : extended.contains(scalar) ? 2 : 0
    }
}

/// How a text would travel as an SMS.
public struct SMSAnalysis: Sendable, Hashable, CustomStringConvertible {
    public var encoding: SMSEncoding
    /// Characters as a person counts them.
    public var characters: Int
    /// Septets (GSM-7, extension characters counting 2) or UTF-16 code units (UCS-2).
    public var units: Int
    /// Parts the message is sent in (1 when it fits a single SMS).
    public var segments: Int

    public init(_ text: String) {
        characters = text.count
        var septets: [Int] = []
        septets.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            guard let cost = SMSEncoding.septets(scalar) else { break }
            septets.append(cost)
        }
        if septets.count == text.unicodeScalars.count {
            encoding = .gsm7
            units = septets.reduce(0, +)
            segments = Self.segments(septets, single: 160, multi: 153)
        } else {
            encoding = .ucs2
            // A character outside the BMP is a surrogate pair: two units, never split.
            let costs = text.unicodeScalars.map { $0.value > 0xFFFF ? 2 : 1 }
            units = costs.reduce(0, +)
            segments = Self.segments(costs, single: 70, multi: 67)
        }
    }

    /// Greedy segmentation that never splits an escape sequence or a surrogate pair.
    static func segments(_ costs: [Int], single: Int, multi: Int) -> Int {
        let total = costs.reduce(0, +)
        if total == 0 { return 1 }
        if total <= single { return 1 }
        var segments = 1
        var used = 0
        for cost in costs {
            if used + cost > multi {
                segments += 1
                used = 0
            }
            used += cost
        }
        return segments
    }

    public var description: String {
        "\(encoding == .gsm7 ? "GSM-7" : "UCS-2"), \(characters) characters, \(units) \(encoding == .gsm7 ? "septets" : "UTF-16 units"), \(segments) segment\(segments == 1 ? "" : "s")"
    }
}

/// Replaces characters outside GSM-7 with their closest GSM-7 spelling, so that French text stays in
/// 160-character segments: ê→e, ç→c, œ→oe, ’→', «»→", …→..., no-break spaces→space.
public enum GSMTransliterator {
    static let table: [Unicode.Scalar: String] = {
        var t: [Unicode.Scalar: String] = [:]
        let pairs: [(String, String)] = [
            ("êëè", "e"), ("âáãä", "a"), ("îïíì", "i"), ("ôóõö", "o"), ("ûúü", "u"), ("ÿý", "y"), ("ç", "c"), ("ñ", "n"),
            ("ÊËÈ", "E"), ("ÂÁÃÀ", "A"), ("ÎÏÍÌ", "I"), ("ÔÓÕ", "O"), ("ÛÚÙ", "U"), ("ŸÝ", "Y"),
            ("’‘‚′`´", "'"), ("“”„«»″", "\""), ("–—‐‑−", "-"), ("•·", "-"), ("×", "x"),
            ("\u{00A0}\u{202F}\u{2009}\u{2007}\u{2002}\u{2003}\u{2008}\t", " "),
        ]
        for (from, to) in pairs { for s in from.unicodeScalars { t[s] = to } }
        t["œ"] = "oe"
        t["Œ"] = "OE"
        t["…"] = "..."
        t["‰"] = "o/oo"
        t["©"] = "(c)"
        t["®"] = "(R)"
        t["™"] = "TM"
        return t
    }()

    /// The text in GSM-7, or the first character that has no GSM-7 spelling.
    public static func transliterate(_ text: String) -> Result<String, UnrepresentableCharacter> {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if SMSEncoding.isGSM7(scalar) {
                out.append(scalar)
            } else if let replacement = table[scalar] {
                out.append(contentsOf: replacement.unicodeScalars)
            } else {
                // Letters with other diacritics: drop the marks if what remains is GSM-7 (ł stays out).
                let folded = String(scalar).folding(options: [.diacriticInsensitive], locale: Locale(identifier: "en_US_POSIX"))
                guard !folded.isEmpty, folded.unicodeScalars.allSatisfy(SMSEncoding.isGSM7) else {
                    return .failure(UnrepresentableCharacter(scalar: scalar))
                }
                out.append(contentsOf: folded.unicodeScalars)
            }
        }
        return .success(String(out))
    }

    public struct UnrepresentableCharacter: Error, Equatable, CustomStringConvertible {
        public var scalar: Unicode.Scalar
        public var description: String { "'\(scalar)' (U+\(String(format: "%04X", scalar.value))) has no GSM-7 spelling" }
    }
}

/// An SMS ready to hand to a gateway.
public struct SMSMessage: Sendable, Hashable {
    /// E.164 recipient (`+33612345678`).
    public var to: String
    /// Sender id (alphanumeric, ≤ 11 characters) or number.
    public var from: String
    public var text: String
    public var analysis: SMSAnalysis
    /// Our reference for this delivery, echoed by gateways in their callbacks (≤ 40 characters).
    public var reference: String

    public init(to: String, from: String, text: String, reference: String) {
        self.to = to
        self.from = from
        self.text = text
        self.analysis = SMSAnalysis(text)
        self.reference = reference
    }

    /// The recipient without its `+` (Vonage and Brevo want digits only).
    public var toDigits: String { String(to.drop(while: { $0 == "+" })) }
}
