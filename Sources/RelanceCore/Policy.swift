import Foundation

// The contact policy: when a debtor may be contacted (weekly windows in their time zone, public
// holidays) and how often (frequency caps). Pure functions of an injected instant.

/// Local civil time in a time zone, computed from the zone's UTC offsets (no Calendar).
public enum LocalTime {
    /// Days since 1970-01-01 of the local date of `date` in `zone`.
    public static func day(of date: Date, in zone: TimeZone) -> Int {
        let local = date.timeIntervalSince1970 + Double(zone.secondsFromGMT(for: date))
        return Int((local / 86400).rounded(.down))
    }

    /// Minutes since local midnight.
    public static func minute(of date: Date, in zone: TimeZone) -> Int {
        let local = date.timeIntervalSince1970 + Double(zone.secondsFromGMT(for: date))
        return Int((local - (local / 86400).rounded(.down) * 86400) / 60)
    }

    /// ISO weekday of a day number: 1 = Monday … 7 = Sunday (1970-01-01 was a Thursday).
    public static func weekday(ofDay day: Int) -> Int { ((day + 3) % 7 + 7) % 7 + 1 }

    /// The instant at which the wall clock of `zone` shows `minute` minutes after midnight of `day`.
    /// A wall time that happens twice (autumn change) gives the first; one that does not exist
    /// (spring change) gives the first instant after the gap, when the clock has passed it.
    public static func instant(day: Int, minute: Int, in zone: TimeZone) -> Date {
        let wall = Double(day) * 86400 + Double(minute) * 60
        func offset(_ t: Double) -> Double { Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: t))) }
        let before = offset(wall - 86400)
        let after = offset(wall + 86400)
        let candidates = [wall - before, wall - after].filter { offset($0) == wall - $0 }
        if let first = candidates.min() { return Date(timeIntervalSince1970: first) }
        // In the gap: the transition instant, found by bisection (offsets change on whole seconds).
        var lo = (wall - after).rounded(.down)
        var hi = (wall - before).rounded(.up)
        guard lo < hi else { return Date(timeIntervalSince1970: wall - before) }
        while hi - lo > 1 {
            let mid = ((lo + hi) / 2).rounded(.down)
            if offset(mid) == after { hi = mid } else { lo = mid }
        }
        return Date(timeIntervalSince1970: hi)
    }
}

/// When contact is allowed in a week: for each ISO weekday, sorted minute ranges `[start, end)`.
///
/// Spec syntax: `always`, `never`, or `;`-separated groups of days and ranges, e.g.
/// `mon-fri 10:00-13:00,14:00-20:00; sat 08:00-12:00` (end up to `24:00`).
public struct WeeklyWindows: Sendable, Hashable, CustomStringConvertible {
    public var ranges: [Int: [Range<Int>]]

    public init(ranges: [Int: [Range<Int>]]) {
        self.ranges = ranges.mapValues { $0.filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound } }.filter { !$0.value.isEmpty }
    }

    public static let always = WeeklyWindows(ranges: Dictionary(uniqueKeysWithValues: (1...7).map { ($0, [0..<1440]) }))
    public static let never = WeeklyWindows(ranges: [:])
    /// The default for SMS: Monday–Friday 10:00–13:00 and 14:00–20:00 (the French rule for
    /// marketing calls, décret 2022-1313, used as a conservative default).
    public static let smsDefault = try! WeeklyWindows(spec: "mon-fri 10:00-13:00,14:00-20:00")
    /// The default for email: Monday–Saturday 08:00–20:00.
    public static let emailDefault = try! WeeklyWindows(spec: "mon-sat 08:00-20:00")

    public var isAlways: Bool { self == .always }

    static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    public struct SpecError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(spec: String) throws {
        let text = spec.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "always" {
            self = .always
            return
        }
        if text == "never" {
            self = .never
            return
        }
        var ranges: [Int: [Range<Int>]] = [:]
        for group in text.split(separator: ";") {
            let parts = group.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2 else {
                throw SpecError(
                    description: "'\(group.trimmingCharacters(in: .whitespaces))': expected days then times, e.g. 'mon-fri 10:00-13:00,14:00-20:00'")
            }
            let days = try Self.parseDays(String(parts[0]))
            for range in parts[1].split(separator: ",") {
                let ends = range.split(separator: "-")
                guard ends.count == 2, let start = Self.parseTime(ends[0]), let end = Self.parseTime(ends[1]), start < end else {
                    throw SpecError(description: "'\(range)': expected a time range HH:MM-HH:MM with the start before the end")
                }
                for day in days { ranges[day, default: []].append(start..<end) }
            }
        }
        for (day, list) in ranges {
            let sorted = list.sorted { $0.lowerBound < $1.lowerBound }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.lowerBound < a.upperBound {
                throw SpecError(description: "overlapping ranges on \(Self.dayNames[day - 1])")
            }
        }
        self.init(ranges: ranges)
    }

    static func parseDays(_ text: String) throws -> [Int] {
        var days: [Int] = []
        for item in text.split(separator: ",") {
            let ends = item.split(separator: "-").map(String.init)
            guard (1...2).contains(ends.count), let first = dayNames.firstIndex(of: ends[0]), let last = ends.last.flatMap({ dayNames.firstIndex(of: $0) }),
                first <= last
            else { throw SpecError(description: "'\(item)': expected days such as mon, mon-fri or mon,wed") }
            days += Array((first + 1)...(last + 1))
        }
        return days
    }

    static func parseTime(_ text: Substring) -> Int? {
        let hm = text.split(separator: ":")
        guard hm.count == 2, hm[0].count == 2, hm[1].count == 2, let h = ASCIIDigits.integer(hm[0]), let m = ASCIIDigits.integer(hm[1]), m < 60,
            h < 24 || (h == 24 && m == 0)
        else {
            return nil
        }
        return h * 60 + m
    }

    public var description: String {
        if isAlways { return "always" }
        if ranges.isEmpty { return "never" }
        func time(_ m: Int) -> String { String(format: "%02d:%02d", m / 60, m % 60) }
        // Group consecutive days with the same ranges: "mon-fri 10:00-13:00,14:00-20:00".
        var groups: [String] = []
        var day = 1
        while day <= 7 {
            guard let list = ranges[day] else {
                day += 1
                continue
            }
            var last = day
            while last < 7, ranges[last + 1] == list { last += 1 }
            let days = last == day ? Self.dayNames[day - 1] : "\(Self.dayNames[day - 1])-\(Self.dayNames[last - 1])"
            groups.append(days + " " + list.map { "\(time($0.lowerBound))-\(time($0.upperBound))" }.joined(separator: ","))
            day = last + 1
        }
        return groups.joined(separator: "; ")
    }
}

/// A calendar of public holidays, from rules: `MM-DD` every year, `YYYY-MM-DD` once, `easter±N`.
public struct HolidayCalendar: Sendable, Hashable, CustomStringConvertible {
    public enum Rule: Sendable, Hashable {
        case yearly(month: Int, day: Int)
        case once(CivilDate)
        case easter(offset: Int)
    }

    public var name: String
    public var rules: [Rule]

    public init(name: String, rules: [Rule]) {
        self.name = name
        self.rules = rules
    }

    public static let none = HolidayCalendar(name: "none", rules: [])

    /// France: 1 January, Easter Monday, 1 May, 8 May, Ascension, Whit Monday, 14 July, 15 August,
    /// 1 November, 11 November, 25 December.
    public static let france = try! HolidayCalendar(
        name: "FR", specs: ["01-01", "easter+1", "05-01", "05-08", "easter+39", "easter+50", "07-14", "08-15", "11-01", "11-11", "12-25"])
    /// Alsace-Moselle (Bas-Rhin, Haut-Rhin, Moselle): France plus Good Friday and 26 December.
    public static let alsaceMoselle = HolidayCalendar(name: "FR-alsace-moselle", rules: france.rules + [.easter(offset: -2), .yearly(month: 12, day: 26)])

    /// The calendars known by name.
    public static func builtIn(_ name: String) -> HolidayCalendar? {
        switch name {
        case "FR": return france
        case "FR-alsace-moselle", "FR-AM": return alsaceMoselle
        case "none": return HolidayCalendar.none
        default: return nil
        }
    }

    public struct SpecError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(name: String, specs: [String]) throws {
        self.name = name
        self.rules = try specs.map(Self.rule)
    }

    static func rule(_ spec: String) throws -> Rule {
        let text = spec.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "easter" { return .easter(offset: 0) }
        if text.hasPrefix("easter"), let sign = text.dropFirst("easter".count).first, sign == "+" || sign == "-",
            let n = ASCIIDigits.integer(text.dropFirst("easter".count + 1)), n <= 200
        {
            return .easter(offset: sign == "-" ? -n : n)
        }
        if let date = CivilDate(text) { return .once(date) }
        let md = text.split(separator: "-")
        if md.count == 2, md[0].count == 2, md[1].count == 2, let m = ASCIIDigits.integer(md[0]), let d = ASCIIDigits.integer(md[1]), (1...12).contains(m),
            d >= 1, d <= CivilDate.daysIn(month: m, year: 2024)
        {
            return .yearly(month: m, day: d)
        }
        throw SpecError(description: "'\(spec)': expected MM-DD (every year), YYYY-MM-DD (once) or easter±N (days after Easter Sunday)")
    }

    /// Easter Sunday of a Gregorian year (anonymous Gregorian algorithm, Meeus/Jones/Butcher).
    public static func easterSunday(year: Int) -> CivilDate {
        let a = year % 19
        let b = year / 100
        let c = year % 100
        let d = b / 4
        let e = b % 4
        let f = (b + 8) / 25
        let g = (b - f + 1) / 3
        let h = (19 * a + b - d - g + 15) % 30
        let i = c / 4
        let k = c % 4
        let l = (32 + 2 * e + 2 * i - h - k) % 7
        let m = (a + 11 * h + 22 * l) / 451
        let month = (h + l - 7 * m + 114) / 31
        let day = (h + l - 7 * m + 114) % 31 + 1
        return CivilDate(year: year, month: month, day: day)
    }

    public func isHoliday(_ date: CivilDate) -> Bool {
        rules.contains { rule in
            switch rule {
            case .yearly(let m, let d): return date.month == m && date.day == d
            case .once(let day): return day == date
            case .easter(let offset): return Self.easterSunday(year: date.year).adding(days: offset) == date
            }
        }
    }

    /// Every holiday of `year`, sorted.
    public func holidays(in year: Int) -> [CivilDate] {
        var days = Set<CivilDate>()
        for rule in rules {
            switch rule {
            case .yearly(let m, let d) where d <= CivilDate.daysIn(month: m, year: year): days.insert(CivilDate(year: year, month: m, day: d))
            case .yearly: break
            case .once(let day) where day.year == year: days.insert(day)
            case .once: break
            case .easter(let offset):
                let day = Self.easterSunday(year: year).adding(days: offset)
                if day.year == year { days.insert(day) }
            }
        }
        return days.sorted()
    }

    public var description: String { name }
}

/// How often one debtor may be contacted, across channels. A reminder counts once however many
/// channels carry it. `perDay` is per calendar day in the debtor's time zone; the others are rolling.
public struct FrequencyCaps: Sendable, Hashable {
    public var perDay: Int?
    public var per7Days: Int?
    public var per30Days: Int?

    public init(perDay: Int? = 1, per7Days: Int? = 2, per30Days: Int? = 4) {
        self.perDay = perDay
        self.per7Days = per7Days
        self.per30Days = per30Days
    }

    public static let none = FrequencyCaps(perDay: nil, per7Days: nil, per30Days: nil)

    /// When the debtor may be contacted again given the instants of earlier contacts, or nil if now.
    public func release(contacts: [Date], now: Date, timeZone: TimeZone, bypassDaily: Bool = false) -> (at: Date, reason: String)? {
        var result: (at: Date, reason: String)?
        func consider(_ at: Date, _ reason: String) {
            if at > now, result == nil || at > result!.at { result = (at, reason) }
        }
        if let perDay, !bypassDaily {
            let today = LocalTime.day(of: now, in: timeZone)
            let count = contacts.filter { LocalTime.day(of: $0, in: timeZone) == today }.count
            if count >= perDay { consider(LocalTime.instant(day: today + 1, minute: 0, in: timeZone), "daily cap of \(perDay) reached") }
        }
        for (cap, days) in [(per7Days, 7), (per30Days, 30)] {
            guard let cap else { continue }
            let span = Double(days) * 86400
            let recent = contacts.filter { now.timeIntervalSince($0) < span && $0 <= now }.sorted()
            if recent.count >= cap {
                // Once enough of the oldest contacts leave the rolling span.
                consider(recent[recent.count - cap].addingTimeInterval(span), "cap of \(cap) per \(days) days reached")
            }
        }
        return result
    }
}

/// The contact policy in force: windows per channel (with per-stage overrides), holiday calendars
/// by country, and frequency caps.
public struct ContactPolicy: Sendable {
    public var windows: [Channel: WeeklyWindows]
    /// Per-stage window overrides.
    public var stageWindows: [String: [Channel: WeeklyWindows]]
    /// Holiday calendar by debtor country; `defaultCalendar` for the others.
    public var calendars: [String: HolidayCalendar]
    public var defaultCalendar: HolidayCalendar
    public var caps: FrequencyCaps
    /// Stages that may go out even when the daily cap is reached (never outside the window).
    public var bypassDailyCap: Set<String>

    public init(
        windows: [Channel: WeeklyWindows] = [.sms: .smsDefault, .email: .emailDefault], stageWindows: [String: [Channel: WeeklyWindows]] = [:],
        calendars: [String: HolidayCalendar] = ["FR": .france], defaultCalendar: HolidayCalendar = .france, caps: FrequencyCaps = FrequencyCaps(),
        bypassDailyCap: Set<String> = []
    ) {
        self.windows = windows
        self.stageWindows = stageWindows
        self.calendars = calendars
        self.defaultCalendar = defaultCalendar
        self.caps = caps
        self.bypassDailyCap = bypassDailyCap
    }

    /// Sends at any time, no caps: for tests and staging.
    public static let unrestricted = ContactPolicy(
        windows: [.sms: .always, .email: .always], calendars: [:], defaultCalendar: .none, caps: .none)

    public func windows(channel: Channel, stage: String) -> WeeklyWindows {
        stageWindows[stage]?[channel] ?? windows[channel] ?? .always
    }

    public func calendar(country: String) -> HolidayCalendar { calendars[country] ?? defaultCalendar }

    /// The first instant at or after `from` inside `windows` and not on a holiday, or nil if none within a year.
    public static func nextAllowed(from: Date, windows: WeeklyWindows, calendar: HolidayCalendar, timeZone: TimeZone) -> Date? {
        if windows.isAlways && calendar.rules.isEmpty { return from }
        let first = LocalTime.day(of: from, in: timeZone)
        for day in first...(first + 400) {
            if calendar.isHoliday(CivilDate(dayNumber: day)) { continue }
            for range in windows.ranges[LocalTime.weekday(ofDay: day)] ?? [] {
                let start = LocalTime.instant(day: day, minute: range.lowerBound, in: timeZone)
                let end = LocalTime.instant(day: day, minute: range.upperBound, in: timeZone)
                if end > from && end > start { return max(start, from) }
            }
        }
        return nil
    }

    public enum Decision: Sendable, Equatable {
        case sendNow
        /// Not now: the exact instant it may go, and why.
        case deferUntil(Date, reason: String)
        /// Never within a year (e.g. windows `never`).
        case noWindow(reason: String)
    }

    /// Decides for one delivery at `now`, given the instants of the debtor's earlier contacts.
    public func decide(channel: Channel, stage: String, country: String, timeZone: TimeZone, now: Date, contacts: [Date]) -> Decision {
        let windows = windows(channel: channel, stage: stage)
        let calendar = calendar(country: country)
        var at = now
        var reasons: [String] = []
        if let release = caps.release(contacts: contacts, now: now, timeZone: timeZone, bypassDaily: bypassDailyCap.contains(stage)) {
            at = release.at
            reasons.append(release.reason)
        }
        guard let allowed = Self.nextAllowed(from: at, windows: windows, calendar: calendar, timeZone: timeZone) else {
            return .noWindow(reason: "no allowed \(channel.rawValue) window within a year (\(windows))")
        }
        if allowed == now { return .sendNow }
        if allowed > at {
            let day = CivilDate(dayNumber: LocalTime.day(of: at, in: timeZone))
            if calendar.isHoliday(day) {
                reasons.append("\(day) is a public holiday (\(calendar.name))")
            } else {
                reasons.append("outside the \(channel.rawValue) window (\(windows)) in \(timeZone.identifier)")
            }
        }
        return .deferUntil(allowed, reason: reasons.joined(separator: "; then "))
    }
}
