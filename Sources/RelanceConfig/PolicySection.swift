import Foundation
import RelanceCore

extension RelanceConfiguration {
    /// `policy:` — the contact policy (see docs/policy.md). Every value is checked at load time.
    public struct Policy: Sendable, Decodable {
        /// A window setting: `default`, `always`, `never` or a weekly spec.
        public struct Windows: Sendable, Decodable {
            public var sms: WeeklyWindows?
            public var email: WeeklyWindows?
            enum CodingKeys: String, CodingKey, CaseIterable { case sms, email }
            public init(sms: WeeklyWindows? = nil, email: WeeklyWindows? = nil) {
                self.sms = sms
                self.email = email
            }
            public init(from decoder: any Decoder) throws {
                let c = try decoder.section(CodingKeys.self)
                sms = try Self.decode(c, .sms, default: .smsDefault)
                email = try Self.decode(c, .email, default: .emailDefault)
            }
            static func decode(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, default: WeeklyWindows) throws -> WeeklyWindows? {
                guard let text: String = try c.value(key) else { return nil }
                if text == "default" { return `default` }
                do {
                    return try WeeklyWindows(spec: text)
                } catch {
                    throw c.invalid(key, "\(error) (or default, always, never)")
                }
            }
        }

        /// A cap: a positive number, or `none`.
        public struct Cap: Sendable, Decodable {
            public var value: Int?
            public init(_ value: Int?) { self.value = value }
            public init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let n = try? c.decode(Int.self), n >= 1 {
                    value = n
                } else if (try? c.decode(String.self)) == "none" {
                    value = nil
                } else {
                    throw DecodingError.dataCorruptedError(in: c, debugDescription: "a cap is a number of at least 1, or none")
                }
            }
        }

        public struct Caps: Sendable, Decodable {
            public var perDay = Cap(1)
            public var per7Days = Cap(2)
            public var per30Days = Cap(4)
            enum CodingKeys: String, CodingKey, CaseIterable {
                case perDay = "per_day"
                case per7Days = "per_7_days"
                case per30Days = "per_30_days"
            }
            public init() {}
            public init(from decoder: any Decoder) throws {
                let c = try decoder.section(CodingKeys.self)
                perDay = try c.value(.perDay, or: perDay)
                per7Days = try c.value(.per7Days, or: per7Days)
                per30Days = try c.value(.per30Days, or: per30Days)
            }
        }

        public struct Stage: Sendable, Decodable {
            public var windows = Windows()
            /// This stage may go out when the daily cap is reached (never outside its window).
            public var bypassDailyCap = false
            enum CodingKeys: String, CodingKey, CaseIterable {
                case windows
                case bypassDailyCap = "bypass_daily_cap"
            }
            public init() {}
            public init(from decoder: any Decoder) throws {
                let c = try decoder.section(CodingKeys.self)
                windows = try c.value(.windows, or: windows)
                bypassDailyCap = try c.value(.bypassDailyCap, or: bypassDailyCap)
            }
        }

        /// A country's calendar: a built-in name, or a list of rules.
        enum CalendarSetting: Decodable {
            case named(String)
            case rules([String])
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let name = try? c.decode(String.self) { self = .named(name) } else { self = .rules(try c.decode([String].self)) }
            }
        }

        public var windows = Windows(sms: .smsDefault, email: .emailDefault)
        /// The calendar of debtors whose country has none of its own.
        public var holidays = HolidayCalendar.france
        /// Calendars by country (ISO 3166 alpha-2). `FR` is built in.
        public var calendars: [String: HolidayCalendar] = ["FR": .france]
        public var caps = Caps()
        public var stages: [String: Stage] = [:]
        /// Daily volume cap per channel, in `defaults.timezone` (nil: none): a bad batch cannot flood.
        public var maxPerDay: [Channel: Int] = [:]
        /// Merge a debtor's reminders due together on one channel, same stage and locale, into one message.
        public var group = true

        enum CodingKeys: String, CodingKey, CaseIterable {
            case windows, holidays, calendars, caps, stages, group
            case maxPerDay = "max_per_day"
        }

        public init() {}

        /// Any time, any day, no caps: for tests and staging, never for real debtors.
        public static var unrestricted: Policy {
            var p = Policy()
            p.windows = Windows(sms: .always, email: .always)
            p.holidays = .none
            p.calendars = [:]
            p.caps = Caps()
            p.caps.perDay = Cap(nil)
            p.caps.per7Days = Cap(nil)
            p.caps.per30Days = Cap(nil)
            return p
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            if let w: Windows = try c.value(.windows) {
                windows = Windows(sms: w.sms ?? .smsDefault, email: w.email ?? .emailDefault)
            }
            for (country, setting) in try c.value(.calendars, or: [String: CalendarSetting]()) {
                guard country.count == 2, country.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
                    throw c.invalid(.calendars, "'\(country.debugQuoted)' is not an ISO 3166 alpha-2 country code such as FR")
                }
                switch setting {
                case .named(let name):
                    guard let calendar = HolidayCalendar.builtIn(name) else {
                        throw c.invalid(.calendars, "\(country): unknown calendar '\(name.debugQuoted)' (FR, FR-alsace-moselle, none, or a list of rules)")
                    }
                    calendars[country] = calendar
                case .rules(let specs):
                    do {
                        calendars[country] = try HolidayCalendar(name: country, specs: specs)
                    } catch {
                        throw c.invalid(.calendars, "\(country): \(error)")
                    }
                }
            }
            if let name: String = try c.value(.holidays) {
                guard let calendar = HolidayCalendar.builtIn(name) ?? calendars[name] else {
                    throw c.invalid(.holidays, "unknown calendar '\(name.debugQuoted)' (FR, FR-alsace-moselle, none, or a country of policy.calendars)")
                }
                holidays = calendar
            }
            caps = try c.value(.caps, or: caps)
            stages = try c.value(.stages, or: stages)
            let perDay = try c.value(.maxPerDay, or: [String: Int]())
            for (name, n) in perDay {
                guard let channel = Channel(rawValue: name) else {
                    throw c.invalid(.maxPerDay, "'\(name.debugQuoted)' is not a channel (email, sms)")
                }
                guard n >= 1 else { throw c.invalid(.maxPerDay, "\(name): must be at least 1") }
                maxPerDay[channel] = n
            }
            group = try c.value(.group, or: group)
        }

        /// The policy in force, as the core evaluates it.
        public var contactPolicy: ContactPolicy {
            var stageWindows: [String: [Channel: WeeklyWindows]] = [:]
            for (name, stage) in stages {
                var w: [Channel: WeeklyWindows] = [:]
                if let sms = stage.windows.sms { w[.sms] = sms }
                if let email = stage.windows.email { w[.email] = email }
                stageWindows[name] = w
            }
            return ContactPolicy(
                windows: [.sms: windows.sms ?? .smsDefault, .email: windows.email ?? .emailDefault], stageWindows: stageWindows, calendars: calendars,
                defaultCalendar: holidays,
                caps: FrequencyCaps(perDay: caps.perDay.value, per7Days: caps.per7Days.value, per30Days: caps.per30Days.value),
                bypassDailyCap: Set(stages.filter(\.value.bypassDailyCap).keys))
        }
    }
}
