import Foundation

/// When a periodic job runs (`plan.schedule`; DESIGN.md "Schedules"): `daily 07:30` (or just
/// `07:30`), `weekly mon 07:00`, `every 1h` / `every 30m`, `off`. Times are wall-clock times in a
/// time zone (`defaults.timezone`); a time a DST change skips runs at the first instant after it.
public enum Schedule: Sendable, Hashable, CustomStringConvertible {
    case off
    /// Minutes after midnight.
    case daily(minutes: Int)
    /// ISO weekday (1 Monday … 7 Sunday), minutes after midnight.
    case weekly(weekday: Int, minutes: Int)
    case every(seconds: Int)

    static let weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    public init?(_ text: String) {
        let words = text.split(separator: " ").map(String.init)
        func time(_ s: String) -> Int? {
            let parts = s.split(separator: ":")
            guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = ASCIIDigits.integer(parts[0]), let m = ASCIIDigits.integer(parts[1]),
                h < 24, m < 60
            else { return nil }
            return h * 60 + m
        }
        switch words.count {
        case 1 where words[0] == "off": self = .off
        // `weekly` alone: Sunday 03:00, when nothing else runs (the risk score's refit).
        case 1 where words[0] == "weekly": self = .weekly(weekday: (Self.weekdays.firstIndex(of: "sun") ?? 0) + 1, minutes: 180)
        case 1: guard let t = time(words[0]) else { return nil }; self = .daily(minutes: t)
        case 2 where words[0] == "daily": guard let t = time(words[1]) else { return nil }; self = .daily(minutes: t)
        case 2 where words[0] == "every":
            let unit = words[1].last
            guard let n = ASCIIDigits.integer(words[1].dropLast()), n > 0 else { return nil }
            switch unit {
            case "h": self = .every(seconds: n * 3600)
            case "m" where n >= 1: self = .every(seconds: n * 60)
            default: return nil
            }
        case 3 where words[0] == "weekly":
            guard let day = Self.weekdays.firstIndex(of: words[1]), let t = time(words[2]) else { return nil }
            self = .weekly(weekday: day + 1, minutes: t)
        default: return nil
        }
    }

    public var description: String {
        func hm(_ m: Int) -> String { String(format: "%02d:%02d", m / 60, m % 60) }
        switch self {
        case .off: return "off"
        case .daily(let m): return "daily \(hm(m))"
        case .weekly(let d, let m): return "weekly \(Self.weekdays[d - 1]) \(hm(m))"
        case .every(let s): return s % 3600 == 0 ? "every \(s / 3600)h" : "every \(s / 60)m"
        }
    }

    /// The last run at or before `date`; nil when off. `every` counts back from `date`. A run
    /// committed before it was missed (the daemon was down): it is caught up once, at once.
    public func previous(atOrBefore date: Date, in zone: TimeZone) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        switch self {
        case .off: return nil
        case .every(let seconds): return date.addingTimeInterval(-Double(seconds))
        case .daily(let minutes):
            return calendar.nextDate(
                after: date.addingTimeInterval(1), matching: DateComponents(hour: minutes / 60, minute: minutes % 60, second: 0), matchingPolicy: .nextTime,
                direction: .backward)
        case .weekly(let weekday, let minutes):
            return calendar.nextDate(
                after: date.addingTimeInterval(1), matching: DateComponents(hour: minutes / 60, minute: minutes % 60, second: 0, weekday: weekday % 7 + 1),
                matchingPolicy: .nextTime, direction: .backward)
        }
    }

    /// The first run strictly after `date`; nil when off. `every` counts from `date`.
    public func next(after date: Date, in zone: TimeZone) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        switch self {
        case .off: return nil
        case .every(let seconds): return date.addingTimeInterval(Double(seconds))
        case .daily(let minutes):
            return calendar.nextDate(
                after: date, matching: DateComponents(hour: minutes / 60, minute: minutes % 60, second: 0), matchingPolicy: .nextTime)
        case .weekly(let weekday, let minutes):
            // Calendar weekdays: 1 is Sunday.
            return calendar.nextDate(
                after: date, matching: DateComponents(hour: minutes / 60, minute: minutes % 60, second: 0, weekday: weekday % 7 + 1),
                matchingPolicy: .nextTime)
        }
    }

    /// How long a service waits before looking again: until the next run, and at most `limit` (so
    /// that a reloaded schedule is taken into account); `limit` when off.
    public func wait(from date: Date, in zone: TimeZone, atMost limit: Duration = .seconds(60)) -> Duration {
        guard let next = next(after: date, in: zone) else { return limit }
        return min(limit, .milliseconds(Int64(max(0, next.timeIntervalSince(date)) * 1000) + 10))
    }
}
