/// Phone number normalisation to E.164, from E.164, `00`-prefixed or national formats.
public enum PhoneNumber {
    struct Plan: Sendable {
        let callingCode: String
        /// National (trunk) prefix removed when dialling from abroad, if any.
        let trunk: String?
        /// Allowed lengths of the national significant number.
        let lengths: ClosedRange<Int>
        /// Allowed first digits of the national significant number.
        let firstDigits: Set<Character>
    }

    static let plans: [String: Plan] = [
        "FR": Plan(callingCode: "33", trunk: "0", lengths: 9...9, firstDigits: Set("123456789")),
        "BE": Plan(callingCode: "32", trunk: "0", lengths: 8...9, firstDigits: Set("123456789")),
        "CH": Plan(callingCode: "41", trunk: "0", lengths: 9...9, firstDigits: Set("123456789")),
        "LU": Plan(callingCode: "352", trunk: nil, lengths: 4...11, firstDigits: Set("123456789")),
        "DE": Plan(callingCode: "49", trunk: "0", lengths: 6...13, firstDigits: Set("123456789")),
        "ES": Plan(callingCode: "34", trunk: nil, lengths: 9...9, firstDigits: Set("6789")),
        "IT": Plan(callingCode: "39", trunk: nil, lengths: 6...11, firstDigits: Set("0123")),
        "NL": Plan(callingCode: "31", trunk: "0", lengths: 9...9, firstDigits: Set("123456789")),
        "PT": Plan(callingCode: "351", trunk: nil, lengths: 9...9, firstDigits: Set("29")),
        "GB": Plan(callingCode: "44", trunk: "0", lengths: 9...10, firstDigits: Set("123578")),
        "IE": Plan(callingCode: "353", trunk: "0", lengths: 7...9, firstDigits: Set("123456789")),
        "US": Plan(callingCode: "1", trunk: "1", lengths: 10...10, firstDigits: Set("23456789")),
        "CA": Plan(callingCode: "1", trunk: "1", lengths: 10...10, firstDigits: Set("23456789")),
    ]

    /// The calling codes of `plans`, longest first (`352` before `35`…), and their plans.
    static let callingCodes = Set(plans.values.map(\.callingCode)).sorted { $0.count > $1.count }
    static let plansByCallingCode = Dictionary(grouping: plans.values, by: \.callingCode)

    /// Countries whose national formats are understood.
    public static var supportedCountries: [String] { plans.keys.sorted() }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case invalidCharacters
        case unsupportedCountry(String)
        case invalidLength(String)
        case notNational(String)

        public var description: String {
            switch self {
            case .invalidCharacters: return "contains characters other than digits, spaces, '.', '-', '(', ')' and a leading '+'"
            case .unsupportedCountry(let c): return "is not in international form (+…) and national numbers of \(c) are not understood"
            case .invalidLength(let why): return why
            case .notNational(let c): return "is not a valid national number of \(c) nor an E.164 number"
            }
        }
    }

    /// Normalises `raw` to E.164 (`+33612345678`) for a debtor of `country`.
    public static func normalise(_ raw: String, country: String) -> Result<String, Failure> {
        var digits = ""
        var plus = false
        for (i, scalar) in raw.trimmingSpaces().unicodeScalars.enumerated() {
            switch scalar {
            case "+" where i == 0: plus = true
            case "0"..."9": digits.unicodeScalars.append(scalar)
            case " ", ".", "-", "(", ")", "/", "\u{00A0}": continue
            default: return .failure(.invalidCharacters)
            }
        }
        if !plus && digits.hasPrefix("00") {
            plus = true
            digits.removeFirst(2)
        }
        if plus {
            return international(digits)
        }
        guard let plan = plans[country] else { return .failure(.unsupportedCountry(country)) }
        var national = Substring(digits)
        if let trunk = plan.trunk {
            if national.hasPrefix(trunk) {
                national = national.dropFirst(trunk.count)
            } else if !(plan.callingCode == "1" && national.count == 10) {
                return .failure(.notNational(country))
            }
        }
        guard plan.lengths.contains(national.count), let first = national.first, plan.firstDigits.contains(first) else {
            return .failure(.notNational(country))
        }
        return .success("+" + plan.callingCode + national)
    }

    static func international(_ digits: String) -> Result<String, Failure> {
        guard (8...15).contains(digits.count), digits.first != "0" else {
            return .failure(.invalidLength("an E.164 number has 8 to 15 digits after '+' and does not start with 0"))
        }
        // Check lengths for the countries we know; others get the generic rule above.
        for plan in callingCodes {
            guard digits.hasPrefix(plan), let matching = plansByCallingCode[plan] else { continue }
            let nsn = digits.dropFirst(plan.count)
            if matching.contains(where: { $0.lengths.contains(nsn.count) && nsn.first.map($0.firstDigits.contains) == true }) {
                return .success("+" + digits)
            }
            return .failure(.invalidLength("+\(digits) has the wrong length or prefix for country code +\(plan)"))
        }
        return .success("+" + digits)
    }

    /// Whether `text` is written as an E.164 number: `+`, then 8 to 15 ASCII digits, not starting with 0.
    public static func isE164(_ text: String) -> Bool {
        guard text.hasPrefix("+") else { return false }
        let digits = text.dropFirst()
        return (8...15).contains(digits.count) && digits.first != "0" && ASCIIDigits.integer(digits) != nil
    }

    /// Why an SMS cannot go to this E.164 number, or nil: a French landline or special number.
    public static func smsProblem(_ e164: String) -> String? {
        e164.hasPrefix("+33") && !isFrenchMobile(e164) ? "\(e164) is a French landline or special number: it cannot receive SMS" : nil
    }

    /// Whether an E.164 French number is a mobile one (06, 07), which alone can receive SMS.
    public static func isFrenchMobile(_ e164: String) -> Bool {
        e164.hasPrefix("+336") || e164.hasPrefix("+337")
    }
}

extension String {
    func trimmingSpaces() -> Substring {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return s
    }

    /// Without leading and trailing white space and line breaks (what `trimmingCharacters(in:
    /// .whitespacesAndNewlines)` removes, without Foundation's character sets: it was 2 % of
    /// building an SMS).
    public func trimmingWhitespace() -> String {
        if let first = utf8.first, let last = utf8.last, first > 0x20 && first < 0x7F, last > 0x20 && last < 0x7F { return self }
        return String(trimmingSpaces())
    }
}
