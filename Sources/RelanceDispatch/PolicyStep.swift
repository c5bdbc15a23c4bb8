import Foundation
import RelanceConfig
import RelanceCore
import RelanceStore

/// The Policy step of DESIGN.md for one delivery, shared by the dispatcher, `preview` and the dry
/// run: partial payments, the daily volume cap, the debtor's windows, holidays and frequency caps.
/// (Cancellations, pauses, kill switches and opt-outs are decided again in the transaction that
/// marks a delivery `sending`.)
public struct PolicyStep: Sendable {
    public var policy: ContactPolicy
    public var maxPerDay: [Channel: Int]
    /// The zone of `policy.max_per_day` days, and of debtors with no usable zone.
    public var home: TimeZone
    /// Merge a debtor's reminders due together (`policy.group`).
    public var group: Bool

    public init(_ configuration: RelanceConfiguration) {
        group = configuration.policy.group
        policy = configuration.policy.contactPolicy
        maxPerDay = configuration.policy.maxPerDay
        home = TimeZone(identifier: configuration.defaults.timezone) ?? .gmt
    }

    public enum Verdict: Sendable {
        /// Send now, this (payment-adjusted) reminder.
        case send(Reminder)
        case deferred(until: Date, reason: String)
        case cancel(reason: String)
        case fail(reason: String)
    }

    /// The daily volume cap of `channel` in force at `now`: the limit, the start of the day, and
    /// the deferral of a delivery over it (to the next day, with its reason).
    public func dailyCap(_ channel: Channel, now: Date) -> (limit: Int, since: Date, deferral: (until: Date, reason: String))? {
        guard let limit = maxPerDay[channel] else { return nil }
        let today = LocalTime.day(of: now, in: home)
        let tomorrow = LocalTime.instant(day: today + 1, minute: 0, in: home)
        let reason = "deferred until \(Timestamp.format(tomorrow, in: home)): daily volume cap of \(limit) \(channel.rawValue) reached (policy.max_per_day)"
        return (limit, LocalTime.instant(day: today, minute: 0, in: home), (tomorrow, reason))
    }

    /// How far back the contact history is read: more than the longest frequency cap's span.
    public static let contactHistory: TimeInterval = 31 * 86400

    /// `ledger` gives the contact history and the day's volume; nil (a dry run with no ledger) means none.
    /// `contacts`: the history when it was read already (`Ledger.Prefetch`), since `contactHistory` or longer.
    public func decide(
        _ reminder: Reminder, channel: Channel, paid: [String: String], now: Date, ledger: (any LedgerStore)?, contacts prefetched: [Date]? = nil
    ) async throws -> Verdict {
        guard let reminder = reminder.applyingPayments(paid) else {
            return .cancel(reason: "cancelled: every invoice is paid (partial payments add up to the amounts)")
        }
        let zone = TimeZone(identifier: reminder.debtor.timezone) ?? home
        // Over the day's volume: no need to render it (the marking transaction decides for good).
        if let cap = dailyCap(channel, now: now), let ledger, try await ledger.attemptCount(channel: channel, since: cap.since) >= cap.limit {
            return .deferred(until: cap.deferral.until, reason: cap.deferral.reason)
        }
        var contacts = prefetched ?? []
        if prefetched == nil, let ledger {
            contacts = try await ledger.contacts(
                debtorID: reminder.debtor.id, excludingReminder: reminder.id, since: now.addingTimeInterval(-Self.contactHistory))
        }
        switch policy.decide(channel: channel, stage: reminder.stage, country: reminder.debtor.country, timeZone: zone, now: now, contacts: contacts) {
        case .sendNow: return .send(reminder)
        case .deferUntil(let until, let reason):
            return .deferred(until: until, reason: "deferred until \(Timestamp.format(until, in: zone)) (\(zone.identifier)): \(reason)")
        case .noWindow(let reason): return .fail(reason: reason)
        }
    }
}
