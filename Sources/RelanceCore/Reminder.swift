import Foundation

/// A channel a reminder can be delivered on.
public enum Channel: String, Sendable, Codable, CaseIterable, Hashable, Comparable {
    case email
    case sms

    public static func < (lhs: Channel, rhs: Channel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Whether the debtor is a consumer or a business (B2B mentions apply only to businesses).
public enum DebtorKind: String, Sendable, Codable, Hashable {
    case consumer
    case business
}

/// The person or company that owes money.
public struct Debtor: Sendable, Codable, Hashable {
    public var id: String
    public var name: String
    public var email: String?
    /// E.164, normalised at intake.
    public var phone: String?
    /// ISO 3166 alpha-2, resolved at intake (record, else locale region, else default).
    public var country: String
    /// BCP 47, e.g. `fr-FR`.
    public var locale: String
    /// IANA time zone identifier.
    public var timezone: String
    public var kind: DebtorKind

    public init(
        id: String, name: String, email: String? = nil, phone: String? = nil, country: String,
        locale: String, timezone: String, kind: DebtorKind
    ) {
        self.id = id
        self.name = name
        self.email = email
        self.phone = phone
        self.country = country
        self.locale = locale
        self.timezone = timezone
        self.kind = kind
    }

    /// Where a message on `channel` goes: the email address or the E.164 number, if the record has one.
    public func address(on channel: Channel) -> String? {
        switch channel {
        case .email: email
        case .sms: phone
        }
    }
}

/// A civil date (no time, no zone), as written in the record: `YYYY-MM-DD`.
public struct CivilDate: Sendable, Codable, Hashable, Comparable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    public init?(_ text: String) {
        // Exactly `YYYY-MM-DD`, ASCII digits only.
        let u = text.utf8
        guard u.count == 10 else { return nil }
        let dash1 = u.index(u.startIndex, offsetBy: 4)
        let dash2 = u.index(u.startIndex, offsetBy: 7)
        guard u[dash1] == UInt8(ascii: "-"), u[dash2] == UInt8(ascii: "-"), let y = ASCIIDigits.integer(Substring(u[..<dash1])),
            let m = ASCIIDigits.integer(Substring(u[u.index(after: dash1)..<dash2])), let d = ASCIIDigits.integer(Substring(u[u.index(after: dash2)...])),
            (1...12).contains(m), d >= 1, d <= CivilDate.daysIn(month: m, year: y), y >= 1900
        else { return nil }
        self.year = y
        self.month = m
        self.day = d
    }

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// The civil date of `date` in `timeZone`.
    public init(_ date: Date, in timeZone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        self.init(year: c.year!, month: c.month!, day: c.day!)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 (proleptic Gregorian).
    public var dayNumber: Int {
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    public init(dayNumber z0: Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.init(year: yoe + era * 400 + (m <= 2 ? 1 : 0), month: m, day: d)
    }

    public func adding(days: Int) -> CivilDate { CivilDate(dayNumber: dayNumber + days) }

    public var description: String {
        func padded(_ n: Int, _ width: Int) -> String {
            let digits = String(n)
            return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
        }
        return "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))"
    }

    public static func < (lhs: CivilDate, rhs: CivilDate) -> Bool { lhs.dayNumber < rhs.dayNumber }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let date = CivilDate(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a date: \(text)"))
        }
        self = date
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// One unpaid invoice. `amount` is the decimal text as given (never binary floating point).
public struct Invoice: Sendable, Codable, Hashable {
    public var number: String
    public var amount: String
    public var currency: String
    public var issuedOn: CivilDate
    public var dueOn: CivilDate

    enum CodingKeys: String, CodingKey {
        case number, amount, currency
        case issuedOn = "issued_on"
        case dueOn = "due_on"
    }

    public init(number: String, amount: String, currency: String, issuedOn: CivilDate, dueOn: CivilDate) {
        self.number = number
        self.amount = amount
        self.currency = currency
        self.issuedOn = issuedOn
        self.dueOn = dueOn
    }

    /// The amount as an exact decimal.
    public var decimalAmount: Decimal { Money.decimal(amount) }
}

/// A free-form value from the record's `vars`.
public enum VarValue: Sendable, Codable, Hashable {
    case string(String)
    case number(String)
    case bool(Bool)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else {
            self = .number(String(describing: try c.decode(Double.self)))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .number(let n): try c.encode(n)
        case .bool(let b): try c.encode(b)
        }
    }

    public var text: String {
        switch self {
        case .string(let s), .number(let s): return s
        case .bool(let b): return b ? "true" : "false"
        }
    }
}

/// A due reminder, validated and normalised (record version 1).
public struct Reminder: Sendable, Codable, Hashable {
    public var id: String
    public var stage: String
    public var channels: [Channel]
    public var notBefore: Date?
    public var expiresAt: Date?
    public var fallback: [Channel]
    public var debtor: Debtor
    public var invoices: [Invoice]
    public var paymentURL: String?
    public var attachments: [String]
    public var vars: [String: VarValue]

    enum CodingKeys: String, CodingKey {
        case id, stage, channels
        case notBefore = "not_before"
        case expiresAt = "expires_at"
        case fallback, debtor, invoices
        case paymentURL = "payment_url"
        case attachments, vars
    }

    public init(
        id: String, stage: String, channels: [Channel], notBefore: Date? = nil, expiresAt: Date? = nil,
        fallback: [Channel] = [], debtor: Debtor, invoices: [Invoice], paymentURL: String? = nil,
        attachments: [String] = [], vars: [String: VarValue] = [:]
    ) {
        self.id = id
        self.stage = stage
        self.channels = channels
        self.notBefore = notBefore
        self.expiresAt = expiresAt
        self.fallback = fallback
        self.debtor = debtor
        self.invoices = invoices
        self.paymentURL = paymentURL
        self.attachments = attachments
        self.vars = vars
    }

}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension Channel {
    /// The channels the kill switches in force leave open: `held` names held channels, `*` every one.
    /// A walk of due work reads only these, so held work costs nothing however much of it waits.
    public static func open(held: some Sequence<String>) -> [Channel] {
        let held = Set(held)
        if held.contains("*") { return [] }
        return allCases.filter { !held.contains($0.rawValue) }
    }
}
