import Foundation
import Logging
import RelanceCore
import RelanceStore
import RelanceTemplates
import Synchronization
import RelanceTestSupport
import Testing

@testable import RelanceConfig
@testable import RelanceDaemon
@testable import RelanceDispatch
@testable import RelanceHTTP
@testable import RelanceSpool
@testable import RelanceStore

/// A year of reminders through the real dispatcher and ledger, with an injected clock (no sleeping):
/// debtors in 32 time zones that change clocks twice a year, the shipped default policy. Every
/// message the transports receive is checked against an independent oracle (Foundation's Calendar
/// in the debtor's zone, a hand-written list of French holidays).
@Suite struct SimulatedYearDispatchTests {
    /// Zones with both a spring and an autumn change in 2026.
    static let zones = [
        "Europe/Paris", "Europe/London", "Europe/Lisbon", "Europe/Berlin", "Europe/Athens", "Europe/Helsinki", "Europe/Dublin", "Europe/Madrid",
        "Europe/Warsaw", "Europe/Bucharest", "Atlantic/Azores", "Atlantic/Canary", "America/New_York", "America/Chicago", "America/Denver",
        "America/Los_Angeles", "America/Anchorage", "America/Halifax", "America/St_Johns", "America/Havana", "America/Santiago", "Pacific/Auckland",
        "Pacific/Chatham", "Australia/Sydney", "Australia/Adelaide", "Australia/Hobart", "Australia/Lord_Howe", "Asia/Jerusalem", "Asia/Beirut",
        "Africa/Cairo", "America/Asuncion", "Europe/Chisinau",
    ]
    /// French public holidays of 2026 and 2027, written out by hand.
    static let holidays: Set<String> = [
        "2026-01-01", "2026-04-06", "2026-05-01", "2026-05-08", "2026-05-14", "2026-05-25", "2026-07-14", "2026-08-15", "2026-11-01", "2026-11-11",
        "2026-12-25", "2027-01-01", "2027-03-29", "2027-05-01", "2027-05-06", "2027-05-08", "2027-05-17", "2027-07-14", "2027-08-15", "2027-11-01",
        "2027-11-11", "2027-12-25",
    ]

    final class Clock: Sendable {
        let now = Mutex(Date())
        var date: Date { now.withLock { $0 } }
    }

    struct Sent {
        var debtor: Int
        var lead: String
        var channel: Channel
        var at: Date
    }

    @Test func aYearOfRemindersRespectsWindowsHolidaysAndCaps() async throws {
        var configuration = RelanceConfiguration()
        configuration.templates.path = Package.templates
        configuration.delivery.concurrency = 8
        // The shipped policy, with every holiday calendar French (the oracle's list).
        configuration.policy.holidays = .france
        let components = try Components(configuration)
        let ledger = try Ledger(path: NSTemporaryDirectory() + "relance-year-" + UUID().uuidString + "/ledger.sqlite")
        let clock = Clock()
        let start = Timestamp.parse("2026-01-01T00:00:00Z")!
        clock.now.withLock { $0 = start }

        // 64 debtors, 2 per zone, 6 reminders each spread over 2026 (one every two months or so),
        // some in bursts right after the previous one.
        var rng = SplitMix64(seed: 1789)
        var records: [Reminder] = []
        var zoneOf: [String: String] = [:]
        for d in 0..<(Self.zones.count * 2) {
            let zone = Self.zones[d % Self.zones.count]
            var t = start.timeIntervalSince1970
            for i in 0..<6 {
                if i > 0 && rng.next() % 3 == 0 {
                    t += Double(rng.next() % 3600)
                } else {
                    t = start.timeIntervalSince1970 + Double(i) * 61 * 86400 + Double(rng.next() % (25 * 86400))
                }
                let channels: [Channel] = [[.email], [.sms], [.email, .sms]][Int(rng.next() % 3)]
                let stage = ["reminder_1", "reminder_2", "final_notice"][Int(rng.next() % 3)]
                let id = "Y\(d)-\(i)"
                records.append(
                    Reminder(
                        id: id, stage: stage, channels: channels, notBefore: Date(timeIntervalSince1970: t),
                        debtor: Debtor(
                            id: "D\(d)", name: "Débiteur \(d)", email: "d\(d)@example.org", phone: String(format: "+3361%07d", d), country: "FR",
                            locale: "fr-FR", timezone: zone, kind: .consumer),
                        invoices: [
                            Invoice(
                                number: "F-\(id)", amount: "100.00", currency: "EUR", issuedOn: CivilDate(year: 2025, month: 12, day: 1),
                                dueOn: CivilDate(year: 2025, month: 12, day: 31))
                        ]))
                zoneOf["D\(d)"] = zone
            }
        }
        _ = try await ledger.ingest(records, sourceFile: "year.jsonl", queue: "default", priority: 0, now: start)

        let log = Mutex<[Sent]>([])
        let transports = Transports(
            emailName: "sim", smsName: "sim",
            sendEmail: { _, to, data in
                let text = String(decoding: data.prefix(4000), as: UTF8.self)
                let lead = text.components(separatedBy: "Message-ID: <relance.").dropFirst().first?.components(separatedBy: ".email@").first ?? "?"
                log.withLock { $0.append(Sent(debtor: Int(to.dropFirst().prefix { $0.isNumber }) ?? -1, lead: lead, channel: .email, at: clock.date)) }
                return .sent(providerID: nil, code: 250, detail: "ok")
            },
            sendSMS: { message, reminderID in
                log.withLock { $0.append(Sent(debtor: Int(message.to.suffix(7)) ?? -1, lead: reminderID, channel: .sms, at: clock.date)) }
                return .sent(providerID: nil, code: 201, detail: "ok")
            })
        let dispatcher = Dispatcher(
            ledger: ledger, components: components, transports: transports, logger: testLogger("year"), clock: { clock.date })
        var passes = 0
        while let next = try await ledger.nextDueDate() {
            clock.now.withLock { $0 = max($0, next) }
            await dispatcher.run(untilIdle: true, shouldStop: { false })
            passes += 1
            if passes > 20_000 { break }
        }
        let sends = log.withLock { $0 }
        let statuses = try await ledger.deliveries()
        #expect(statuses.allSatisfy { $0.status == "sent" }, "every delivery went out in the end: \(statuses.filter { $0.status != "sent" }.prefix(3))")
        #expect(!sends.isEmpty)

        var outside = 0
        for send in sends {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: zoneOf["D\(send.debtor)"]!)!
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: send.at)
            let minutes = c.hour! * 60 + c.minute!
            let day = String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
            let ok =
                send.channel == .sms
                ? (2...6).contains(c.weekday!) && ((600..<780).contains(minutes) || (840..<1200).contains(minutes))
                : (2...7).contains(c.weekday!) && (480..<1200).contains(minutes)
            if !ok || Self.holidays.contains(day) {
                outside += 1
                Issue.record("\(send.lead)/\(send.channel) at \(Timestamp.format(send.at, in: calendar.timeZone)) is outside its window")
            }
        }
        #expect(outside == 0)
        // Sends on both sides of the clock changes, in every zone.
        var sides: [String: Set<Bool>] = [:]
        for send in sends {
            let zone = TimeZone(identifier: zoneOf["D\(send.debtor)"]!)!
            sides[zone.identifier, default: []].insert(zone.isDaylightSavingTime(for: send.at))
        }
        #expect(sides.filter { $0.value.count == 2 }.count >= 30, "sends in summer and winter time in \(sides.filter { $0.value.count == 2 }.count) zones")

        // Caps: one contact per message lead (a reminder's email and SMS may be two), per debtor.
        var contacts: [Int: [String: Date]] = [:]
        for send in sends { contacts[send.debtor, default: [:]][send.lead] = min(contacts[send.debtor]?[send.lead] ?? send.at, send.at) }
        var worst = (day: 0, week: 0, month: 0)
        for (d, byLead) in contacts {
            // The email and SMS of one reminder are one contact: keep each reminder's first message.
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: zoneOf["D\(d)"]!)!
            let times = byLead.values.sorted()
            let days = times.map { calendar.dateComponents([.year, .month, .day], from: $0) }
            worst.day = max(worst.day, days.reduce(into: [DateComponents: Int]()) { $0[$1, default: 0] += 1 }.values.max() ?? 0)
            for (i, t) in times.enumerated() {
                worst.week = max(worst.week, times[i...].prefix { $0.timeIntervalSince(t) < 7 * 86400 }.count)
                worst.month = max(worst.month, times[i...].prefix { $0.timeIntervalSince(t) < 30 * 86400 }.count)
            }
        }
        #expect(worst.day <= 1 && worst.week <= 2 && worst.month <= 4, "caps: \(worst)")
        let deferrals = try await ledger.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event WHERE reason LIKE 'deferred until%'") ?? 0 }
        #expect(deferrals > records.count / 2, "the policy deferred a lot (\(deferrals))")
        print(
            "simulated year: \(Self.zones.count) zones, \(records.count) reminders, \(sends.count) messages, \(deferrals) deferrals, \(passes) passes, "
                + "0 outside windows or on holidays, worst caps \(worst)")
    }
}
