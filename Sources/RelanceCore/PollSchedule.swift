import Foundation

/// When an SMS still `sent` is asked about (SMS reconciliation): first `after` its acceptance, then
/// every `every`, until `giveUp` after its acceptance. The ledger keeps one instant per delivery,
/// `poll_at`, due when `poll_at <= now - after`; this type turns the schedule into those instants.
public struct PollSchedule: Sendable, Hashable {
    public var after: Duration
    public var every: Duration
    public var giveUp: Duration

    public init(after: Duration, every: Duration, giveUp: Duration) {
        self.after = after
        self.every = every
        self.giveUp = giveUp
    }

    /// The `dueBy` bound of a round at `now`: deliveries whose `poll_at` is at or before it are due.
    public func dueBy(_ now: Date) -> Date { now.addingTimeInterval(-after.seconds) }

    /// The `poll_at` after a poll at `now`: due again one interval later.
    public func next(after now: Date) -> Date { now.addingTimeInterval(every.seconds - after.seconds) }

    /// Whether a message accepted at `sentAt` and still without a final status at `now` is given up.
    public func givesUp(sentAt: Date, now: Date) -> Bool { now.timeIntervalSince(sentAt) >= giveUp.seconds }

    /// How long a round waits before looking again: short enough to keep each delivery's schedule
    /// within a fraction of its interval, never busy.
    public var tick: Duration { max(.milliseconds(200), min(every, after, .seconds(30)) / 2) }

    /// The SMS gateways (transport names) with a status API: the ledger schedules polls only for
    /// what they accepted, and the reconciler has a client for each of them.
    public static let gatewaysWithStatusAPI: Set<String> = ["twilio", "vonage", "brevo"]
}
