import Foundation
import RelanceTestSupport
import Testing

@testable import RelanceCore

/// An instant from an RFC 3339 string.
func at(_ text: String) -> Date { Timestamp.parse(text)! }

let paris = TimeZone(identifier: "Europe/Paris")!

@Suite struct WindowTests {
    @Test func specsParseAndPrint() throws {
        #expect(WeeklyWindows.smsDefault.description == "mon-fri 10:00-13:00,14:00-20:00")
        #expect(WeeklyWindows.emailDefault.description == "mon-sat 08:00-20:00")
        let custom = try WeeklyWindows(spec: "mon,wed 09:00-12:00; sat 10:00-24:00")
        #expect(custom.ranges[1] == [540..<720] && custom.ranges[3] == [540..<720] && custom.ranges[6] == [600..<1440])
        #expect(custom.ranges[2] == nil)
        #expect(try WeeklyWindows(spec: "always").isAlways)
        for bad in ["mon-fri", "funday 10:00-12:00", "mon 12:00-10:00", "mon 10:00-25:00", "mon 10:00-13:00,12:00-14:00", "fri-mon 10:00-11:00"] {
            #expect(throws: WeeklyWindows.SpecError.self, "\(bad)") { try WeeklyWindows(spec: bad) }
        }
    }

    @Test func smsDefaultDefersToTheExactNextInstant() {
        let sms = WeeklyWindows.smsDefault
        func next(_ t: String) -> String? {
            ContactPolicy.nextAllowed(from: at(t), windows: sms, calendar: .france, timeZone: paris).map { Timestamp.format($0, in: paris) }
        }
        // Monday 30 November 2026.
        #expect(next("2026-11-30T10:30:00+01:00") == "2026-11-30T10:30:00+01:00", "inside: now")
        #expect(next("2026-11-30T08:00:00+01:00") == "2026-11-30T10:00:00+01:00")
        #expect(next("2026-11-30T13:00:00+01:00") == "2026-11-30T14:00:00+01:00", "the lunch break")
        #expect(next("2026-11-30T20:00:00+01:00") == "2026-12-01T10:00:00+01:00", "20:00 is already outside")
        #expect(next("2026-12-04T19:59:59+01:00") == "2026-12-04T19:59:59+01:00")
        #expect(next("2026-12-04T21:00:00+01:00") == "2026-12-07T10:00:00+01:00", "Friday night goes to Monday")
        // Christmas Friday 25 December 2026 is a holiday: Monday 28.
        #expect(next("2026-12-24T21:00:00+01:00") == "2026-12-28T10:00:00+01:00")
        // The same instant seen from a debtor in New York is 15:00 there: allowed.
        #expect(
            ContactPolicy.nextAllowed(from: at("2026-11-30T21:00:00+01:00"), windows: sms, calendar: .none, timeZone: TimeZone(identifier: "America/New_York")!)
                == at("2026-11-30T21:00:00+01:00"))
    }

    @Test func springForwardGap() {
        // Paris, Sunday 29 March 2026: 02:00 → 03:00; 02:30 does not exist.
        let w = try! WeeklyWindows(spec: "sun 02:30-04:00")
        let next = ContactPolicy.nextAllowed(from: at("2026-03-29T01:00:00+01:00"), windows: w, calendar: .none, timeZone: paris)!
        #expect(Timestamp.format(next, in: paris) == "2026-03-29T03:00:00+02:00", "the first instant the clock has passed 02:30")
        #expect(LocalTime.instant(day: CivilDate(year: 2026, month: 3, day: 29).dayNumber, minute: 150, in: paris) == at("2026-03-29T01:00:00Z"))
    }

    @Test func fallBackRepeatedHour() {
        // Paris, Sunday 25 October 2026: 03:00 → 02:00; 02:30 happens twice, the first counts.
        let w = try! WeeklyWindows(spec: "sun 02:30-04:00")
        let next = ContactPolicy.nextAllowed(from: at("2026-10-25T01:00:00+02:00"), windows: w, calendar: .none, timeZone: paris)!
        #expect(next == at("2026-10-25T02:30:00+02:00"))
        // During the second 02:15 (CET), the window (opened at the first 02:30) is still open.
        let inside = at("2026-10-25T02:15:00+01:00")
        #expect(ContactPolicy.nextAllowed(from: inside, windows: w, calendar: .none, timeZone: paris) == inside)
        // An ordinary window across the change: Monday 10:00 after the change is 09:00 UTC.
        let sms = ContactPolicy.nextAllowed(from: at("2026-10-24T21:00:00+02:00"), windows: .smsDefault, calendar: .france, timeZone: paris)!
        #expect(sms == at("2026-10-26T09:00:00Z"))
    }

    @Test func southernHemisphereAndHalfHourZones() {
        // Sydney's clocks go forward on 4 October 2026 (02:00 → 03:00); Kathmandu is UTC+05:45.
        let sydney = TimeZone(identifier: "Australia/Sydney")!
        let next = ContactPolicy.nextAllowed(from: at("2026-10-03T21:00:00+10:00"), windows: .smsDefault, calendar: .none, timeZone: sydney)!
        #expect(Timestamp.format(next, in: sydney) == "2026-10-05T10:00:00+11:00")
        let kathmandu = TimeZone(identifier: "Asia/Kathmandu")!
        let k = ContactPolicy.nextAllowed(from: at("2026-11-30T00:00:00Z"), windows: .emailDefault, calendar: .none, timeZone: kathmandu)!
        #expect(Timestamp.format(k, in: kathmandu) == "2026-11-30T08:00:00+05:45")
    }
}

@Suite struct HolidayTests {
    @Test func easterDates() {
        let known = [2024: "2024-03-31", 2025: "2025-04-20", 2026: "2026-04-05", 2027: "2027-03-28", 2038: "2038-04-25", 2285: "2285-03-22"]
        for (year, date) in known { #expect(HolidayCalendar.easterSunday(year: year).description == date) }
    }

    @Test func frenchHolidaysOf2026() {
        #expect(
            HolidayCalendar.france.holidays(in: 2026).map(\.description) == [
                "2026-01-01", "2026-04-06", "2026-05-01", "2026-05-08", "2026-05-14", "2026-05-25", "2026-07-14", "2026-08-15", "2026-11-01",
                "2026-11-11", "2026-12-25",
            ])
        let alsace = HolidayCalendar.alsaceMoselle.holidays(in: 2026).map(\.description)
        #expect(alsace.contains("2026-04-03") && alsace.contains("2026-12-26") && alsace.count == 13)
        // Ascension 2027 is 6 May; Whit Monday 17 May.
        #expect(HolidayCalendar.france.isHoliday(CivilDate("2027-05-06")!) && HolidayCalendar.france.isHoliday(CivilDate("2027-05-17")!))
    }

    @Test func configuredCalendars() throws {
        let be = try HolidayCalendar(name: "BE", specs: ["07-21", "easter+1", "2026-11-02"])
        #expect(be.isHoliday(CivilDate("2030-07-21")!) && be.isHoliday(CivilDate("2026-04-06")!) && be.isHoliday(CivilDate("2026-11-02")!))
        #expect(!be.isHoliday(CivilDate("2027-11-02")!))
        for bad in ["13-01", "02-30", "easter+x", "christmas"] {
            #expect(throws: HolidayCalendar.SpecError.self) { try HolidayCalendar(name: "X", specs: [bad]) }
        }
    }
}

@Suite struct CapTests {
    let caps = FrequencyCaps()  // 1 a day, 2 per 7 days, 4 per 30 days

    @Test func dailyCapWaitsForTheNextLocalDay() {
        let now = at("2026-11-30T15:00:00+01:00")
        let release = caps.release(contacts: [at("2026-11-30T10:05:00+01:00")], now: now, timeZone: paris)
        #expect(release?.at == at("2026-12-01T00:00:00+01:00"))
        #expect(release?.reason == "daily cap of 1 reached")
        // Yesterday evening does not count against today.
        #expect(caps.release(contacts: [at("2026-11-29T19:00:00+01:00")], now: now, timeZone: paris) == nil)
        #expect(caps.release(contacts: [at("2026-11-30T10:05:00+01:00")], now: now, timeZone: paris, bypassDaily: true) == nil)
    }

    @Test func rollingCaps() {
        let now = at("2026-11-30T15:00:00+01:00")
        let two = [at("2026-11-25T10:00:00+01:00"), at("2026-11-27T10:00:00+01:00")]
        #expect(caps.release(contacts: two, now: now, timeZone: paris)?.at == at("2026-12-02T10:00:00+01:00"), "when the oldest leaves the 7 days")
        let four = [at("2026-11-05T10:00:00+01:00"), at("2026-11-12T10:00:00+01:00"), at("2026-11-19T10:00:00+01:00"), at("2026-11-26T10:00:00+01:00")]
        let r = caps.release(contacts: four, now: now, timeZone: paris)
        #expect(r?.at == at("2026-12-05T10:00:00+01:00") && r?.reason == "cap of 4 per 30 days reached")
    }

    @Test func policyCombinesCapsAndWindows() {
        let policy = ContactPolicy()
        let now = at("2026-11-30T15:00:00+01:00")
        #expect(policy.decide(channel: .sms, stage: "reminder_1", country: "FR", timeZone: paris, now: now, contacts: []) == .sendNow)
        // Capped until midnight, then the SMS window opens at 10:00.
        let d = policy.decide(channel: .sms, stage: "reminder_1", country: "FR", timeZone: paris, now: now, contacts: [at("2026-11-30T10:00:00+01:00")])
        guard case .deferUntil(let when, let reason) = d else {
            Issue.record("\(d)")
            return
        }
        #expect(when == at("2026-12-01T10:00:00+01:00"))
        #expect(reason == "daily cap of 1 reached; then outside the sms window (mon-fri 10:00-13:00,14:00-20:00) in Europe/Paris")
        // A stage that bypasses the daily cap still waits for its window.
        var final = ContactPolicy()
        final.bypassDailyCap = ["final_notice"]
        let late = at("2026-11-30T21:00:00+01:00")
        #expect(
            final.decide(channel: .sms, stage: "final_notice", country: "FR", timeZone: paris, now: late, contacts: [at("2026-11-30T10:00:00+01:00")])
                == .deferUntil(at("2026-12-01T10:00:00+01:00"), reason: "outside the sms window (mon-fri 10:00-13:00,14:00-20:00) in Europe/Paris"))
        let holiday = policy.decide(channel: .email, stage: "reminder_1", country: "FR", timeZone: paris, now: at("2026-12-25T09:00:00+01:00"), contacts: [])
        #expect(holiday == .deferUntil(at("2026-12-26T08:00:00+01:00"), reason: "2026-12-25 is a public holiday (FR)"))
    }
}

/// A year of reminders to debtors in 32 time zones, scheduled by the policy with a simulated clock,
/// checked against an independent oracle (Foundation's Calendar for local time, a literal holiday list).
@Suite struct SimulatedYearTests {
    static let zones = [
        "Europe/Paris", "Europe/London", "Europe/Lisbon", "Europe/Berlin", "Europe/Athens", "Europe/Helsinki", "Europe/Moscow", "Atlantic/Azores",
        "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Anchorage", "America/Sao_Paulo", "America/Santiago",
        "America/St_Johns", "America/Havana", "Pacific/Honolulu", "Pacific/Auckland", "Pacific/Chatham", "Australia/Sydney", "Australia/Adelaide",
        "Australia/Lord_Howe", "Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tehran", "Asia/Jerusalem", "Africa/Casablanca", "Africa/Cairo",
        "Indian/Reunion", "America/Martinique",
    ]
    /// French public holidays of 2026 and 2027, written out by hand.
    static let holidays: Set<String> = [
        "2026-01-01", "2026-04-06", "2026-05-01", "2026-05-08", "2026-05-14", "2026-05-25", "2026-07-14", "2026-08-15", "2026-11-01", "2026-11-11",
        "2026-12-25", "2027-01-01", "2027-03-29", "2027-05-01", "2027-05-06", "2027-05-08", "2027-05-17", "2027-07-14", "2027-08-15", "2027-11-01",
        "2027-11-11", "2027-12-25",
    ]

    struct Reminder {
        var id: Int
        var debtor: Int
        var channels: [Channel]
    }

    @Test func noSendOutsideWindowsOrOnHolidaysAndCapsHold() throws {
        var rng = SplitMix(seed: 2026)
        let policy = ContactPolicy()
        let start = at("2026-01-01T00:00:00Z").timeIntervalSince1970
        let year = 365.0 * 86400
        // 96 debtors, 3 per zone, 12 reminders each, due at random instants of 2026 (some in bursts).
        var queue: [(at: Date, reminder: Int, channel: Channel)] = []
        var reminders: [Reminder] = []
        for debtor in 0..<(Self.zones.count * 3) {
            var t = start + Double(rng.next() % UInt64(year / 2))
            for _ in 0..<12 {
                t += rng.next() % 3 == 0 ? Double(rng.next() % 600) : Double(rng.next() % UInt64(year / 20))
                let channels: [Channel] = [[.email], [.sms], [.email, .sms]][Int(rng.next() % 3)]
                reminders.append(Reminder(id: reminders.count, debtor: debtor, channels: channels))
                for c in channels { queue.append((Date(timeIntervalSince1970: t), reminders.count - 1, c)) }
            }
        }
        var contacts: [Int: [Date]] = [:]  // per debtor, one per reminder
        var contacted: [Int: Date] = [:]  // reminder → first contact
        var sends: [(at: Date, reminder: Int, channel: Channel)] = []
        var deferrals = 0
        while !queue.isEmpty {
            // The earliest due delivery (ties: lower reminder id).
            let i = queue.indices.min { (queue[$0].at, queue[$0].reminder) < (queue[$1].at, queue[$1].reminder) }!
            let item = queue.remove(at: i)
            let r = reminders[item.reminder]
            let zone = TimeZone(identifier: Self.zones[r.debtor % Self.zones.count])!
            // The other channel of a reminder already sent does not count again.
            let history = (contacts[r.debtor] ?? []).filter { contacted[item.reminder] != $0 }
            switch policy.decide(channel: item.channel, stage: "reminder_1", country: "FR", timeZone: zone, now: item.at, contacts: history) {
            case .sendNow:
                sends.append(item)
                if contacted[item.reminder] == nil {
                    contacted[item.reminder] = item.at
                    contacts[r.debtor, default: []].append(item.at)
                }
            case .deferUntil(let when, _):
                #expect(when > item.at)
                deferrals += 1
                queue.append((when, item.reminder, item.channel))
            case .noWindow(let reason):
                Issue.record("no window: \(reason)")
            }
        }
        #expect(sends.count == reminders.reduce(0) { $0 + $1.channels.count }, "every delivery goes out in the end")
        #expect(deferrals > sends.count / 2, "the simulation exercises deferrals (\(deferrals))")

        // The oracle: Foundation's calendar in the debtor's zone.
        var outside = 0
        var changesCrossed = Set<String>()
        for send in sends {
            let zone = TimeZone(identifier: Self.zones[reminders[send.reminder].debtor % Self.zones.count])!
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: send.at)
            let minutes = c.hour! * 60 + c.minute!
            let weekday = c.weekday!  // 1 = Sunday
            let day = String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
            let ok: Bool
            switch send.channel {
            case .sms: ok = (2...6).contains(weekday) && ((600..<780).contains(minutes) || (840..<1200).contains(minutes))
            case .email: ok = (2...7).contains(weekday) && (480..<1200).contains(minutes)
            }
            if !ok || Self.holidays.contains(day) { outside += 1 }
            if zone.isDaylightSavingTime(for: send.at) != zone.isDaylightSavingTime(for: send.at.addingTimeInterval(-30 * 86400)) {
                changesCrossed.insert(zone.identifier)
            }
        }
        #expect(outside == 0, "sends outside windows or on holidays")
        #expect(changesCrossed.count >= 15, "sends on both sides of DST changes in many zones (\(changesCrossed.count))")

        for (debtor, list) in contacts {
            let zone = TimeZone(identifier: Self.zones[debtor % Self.zones.count])!
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            let days = list.map { calendar.dateComponents([.year, .month, .day], from: $0) }
            #expect(Set(days).count == days.count, "at most one contact a day for debtor \(debtor)")
            let sorted = list.sorted()
            for (i, t) in sorted.enumerated() {
                let in7 = sorted[i...].prefix { $0.timeIntervalSince(t) < 7 * 86400 }.count
                let in30 = sorted[i...].prefix { $0.timeIntervalSince(t) < 30 * 86400 }.count
                #expect(in7 <= 2 && in30 <= 4, "caps for debtor \(debtor) from \(t): \(in7) in 7 days, \(in30) in 30")
            }
        }
    }
}

/// The randomized tests of this module name the shared generator so.
typealias SplitMix = SplitMix64
