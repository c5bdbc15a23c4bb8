import Foundation
import GRDB
import RelanceCore

extension Ledger {
    // MARK: Sending

    /// Why a delivery was not marked `sending`.
    public enum Mark: Sendable, Equatable {
        /// Marked: the attempt number.
        case attempt(Int)
        /// No longer pending (cancelled meanwhile, settled by an operator…).
        case notPending
        /// The recipient is on the suppression list: now `suppressed`.
        case suppressed
        /// A cancellation is in force: now `cancelled` (or `paused` when it has an end).
        case cancelled(reason: String)
        case paused(reason: String, until: Date)
        /// A kill switch holds the channel: stays pending.
        case held
        /// The channel's daily volume cap is reached: stays pending.
        case overDailyVolume
        /// The debtor was contacted since the contact policy read its history (by another node):
        /// stays pending, for the policy to decide again with what is known now.
        case contactedMeanwhile
    }

    /// The debtor's contact history the contact policy decided on (its frequency caps): a claim
    /// reads it again in its transaction and refuses when a contact was made since, so the caps
    /// hold when several nodes decide for one debtor at once.
    public struct ContactFence: Sendable, Equatable {
        public var debtorID: String
        /// The reminder the decision was for (its own attempts are not contacts of it).
        public var reminderID: String
        public var since: Date
        /// What the decision saw (`contacts(debtorID:excludingReminder:since:)`).
        public var seen: [Date]

        public init(debtorID: String, reminderID: String, since: Date, seen: [Date]) {
            self.debtorID = debtorID
            self.reminderID = reminderID
            self.since = since
            self.seen = seen
        }

        /// Whether `current` (the same read, now) holds a contact the decision did not see.
        public func isStale(_ current: [Date]) -> Bool {
            let known = Set(seen)
            return current.contains { !known.contains($0) }
        }
    }

    /// Durably records the intent to send: `pending → sending` and a new attempt row. The same
    /// transaction checks the kill switches, the cancellations and pauses in force and the
    /// suppression list, so one committed before this mark is never missed.
    /// Several deliveries merged into one message (grouping) are marked in one transaction; each
    /// gets its own attempt, tied to the others by the lead's reminder id. Returns each one's mark.
    /// `dailyCap`: at most `limit` messages on this channel since `since` (`policy.max_per_day`),
    /// counted in the same transaction, so concurrent sends cannot overshoot it.
    /// `contacts`: the history the contact policy decided on, read again here (`ContactFence`).
    public func markGroup(
        _ keys: [DeliveryKey], transport: String, recipient: String, now: Date, dailyCap: (limit: Int, since: Date)?, contacts: ContactFence?
    ) async throws -> [Mark] {
        try await batcher.write { db in
            if let dailyCap, let channel = keys.first?.channel, try Self.messageCount(db, channel: channel, since: dailyCap.since) >= dailyCap.limit {
                return keys.map { _ in .overDailyVolume }
            }
            if let contacts, contacts.isStale(try Self.contacts(db, debtorID: contacts.debtorID, excludingReminder: contacts.reminderID, since: contacts.since)) {
                return keys.map { _ in .contactedMeanwhile }
            }
            let group = keys.count > 1 ? keys.first?.reminderID : nil
            return try keys.map { try Self.mark(db, $0, transport: transport, recipient: recipient, group: group, now: now) }
        }
    }

    static func mark(_ db: Database, _ key: DeliveryKey, transport: String, recipient: String, group: String?, now: Date) throws -> Mark {
        let keyValues = DirectValue.key(key)
        // What stops a send is looked for first; the delivery's own row is read (still pending?)
        // only then, and otherwise taken by the update that marks it.
        func isPending() throws -> Bool {
            try db.firstDirectRow(sql: "SELECT 1 FROM delivery WHERE reminder_id = ? AND channel = ? AND status = 'pending'", keyValues, { _ in true }) ?? false
        }
        if try Self.isHeld(db, channel: key.channel, now: now) { return try isPending() ? .held : .notPending }
        if let cancellation = try Self.cancellationInForce(db, reminderID: key.reminderID, now: now) {
            guard try isPending() else { return .notPending }
            if let until = cancellation.until {
                try db.run(
                    sql: "UPDATE delivery SET paused_until = ? WHERE reminder_id = ? AND channel = ?",
                    arguments: [until.timeIntervalSince1970, key.reminderID, key.channel.rawValue])
                try Self.move(db, key, from: .pending, to: .paused, reason: "paused: \(cancellation.reason)", at: now)
                return .paused(reason: cancellation.reason, until: until)
            }
            try Self.move(db, key, from: .pending, to: .cancelled, reason: "cancelled: \(cancellation.reason)", at: now)
            return .cancelled(reason: cancellation.reason)
        }
        if try Self.isSuppressed(db, recipient) {
            guard try isPending() else { return .notPending }
            try Self.suppress(db, key, recipient: recipient, at: now)
            return .suppressed
        }
        let t = now.timeIntervalSince1970
        guard
            let number = try db.firstDirectRow(
                sql: """
                    UPDATE delivery SET status = 'sending', attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?), updated_at = ?,
                      group_lead = ?
                    WHERE reminder_id = ? AND channel = ? AND status = 'pending' RETURNING attempts
                    """,
                [.real(t), .real(t), .text(group)] + keyValues, { $0.integer(0) ?? 0 })
        else { return .notPending }
        try db.runDirect(
            sql: """
                INSERT INTO attempt (reminder_id, channel, number, transport, recipient, started_at, outcome, group_id)
                VALUES (?, ?, ?, ?, ?, ?, 'sending', ?)
                """,
            keyValues + [.integer(number), .text(transport), .text(recipient), .real(t), .text(group)])
        let grouped = group.map { $0 == key.reminderID ? " (one message for several reminders)" : " (in one message with \($0))" } ?? ""
        try Self.insertEvent(db, key, from: .pending, to: .sending, reason: "attempt \(number) via \(transport)\(grouped)", at: now)
        return .attempt(number)
    }

    /// Records the outcome of an attempt. A transient failure goes back to `pending` at `retryAt`,
    /// or to `expired` when `retryAt` is nil (lifetime over).
    /// `via` names the transport that was used when a failover chose another than the one recorded at `sending`.
    public func recordOutcome(_ key: DeliveryKey, attempt: Int, outcome: SendOutcome, retryAt: Date?, now: Date, via: String?) async throws {
        try await batcher.write { db in
            let t = now.timeIntervalSince1970
            let settlement = Settlement(outcome, retryAt: retryAt)
            let (attemptOutcome, status, providerID) = (settlement.attemptOutcome, settlement.status, settlement.providerID)
            // One statement per row: the attempt (naming the transport a failover used, and saying
            // which one it was), then the delivery's move out of `sending` with what the provider said.
            let keyValues = DirectValue.key(key)
            let transport = try db.firstDirectRow(
                sql: """
                    UPDATE attempt SET transport = COALESCE(?, transport), finished_at = ?, outcome = ?, code = ?, detail = ?, provider_id = ?
                    WHERE reminder_id = ? AND channel = ? AND number = ? RETURNING transport
                    """,
                [.text(via), .real(t), .text(attemptOutcome), .integer(outcome.code), .text(outcome.detail), .text(providerID)]
                    + keyValues + [.integer(attempt)],
                { $0.text(0) }) ?? nil
            guard DeliveryStatus.sending.canMove(to: status) else { throw StatusTransitionError(from: .sending, to: status) }
            // An SMS a gateway with a status API accepted is polled while no final status comes (reconciliation).
            let pollAt: Double? = settlement.polled(channel: key.channel, transport: transport) ? t : nil
            try db.runDirect(
                sql: """
                    UPDATE delivery SET status = ?, updated_at = ?, provider_id = COALESCE(?, provider_id), last_code = ?, last_error = ?, due_at = COALESCE(?, due_at),
                      poll_at = ?
                    WHERE reminder_id = ? AND channel = ? AND status = 'sending'
                    """,
                [
                    .text(status.rawValue), .real(t), .text(providerID), .integer(outcome.code), .text(status == .sent ? nil : outcome.detail),
                    .real(retryAt?.timeIntervalSince1970), .real(pollAt),
                ] + keyValues)
            guard db.changesCount == 1 else { throw StatusTransitionError(from: .sending, to: status) }
            try Self.insertEvent(db, key, from: .sending, to: status, reason: settlement.reason, at: now)
            if case .sent(let id?, _, _) = outcome, let transport {
                try Self.registerProviderMessages(db, key, provider: transport, ids: id, at: now)
            }
            if case .transient = outcome, retryAt == nil {
                try Self.move(db, key, from: .pending, to: .expired, reason: "retry lifetime (delivery.retry.lifetime) exceeded", at: now)
            }
            if case .permanent = outcome { try Self.fallBack(db, from: key, reason: outcome.detail, at: now) }
        }
    }

    /// A delivery that cannot be built (template error, no address, a landline for SMS) fails
    /// without a transport call; its receipt has the outcome `not_sent` and the reason.
    public func fail(_ key: DeliveryKey, recipient: String, reason: String, now: Date) async throws {
        try await batcher.write { db in
            let attempts =
                try Int.fetchOne(
                    db, cachedSQL: "SELECT attempts FROM delivery WHERE reminder_id = ? AND channel = ?", arguments: [key.reminderID, key.channel.rawValue])
                ?? 0
            try db.run(
                sql: "UPDATE delivery SET last_error = ? WHERE reminder_id = ? AND channel = ?", arguments: [reason, key.reminderID, key.channel.rawValue])
            try db.run(
                sql: """
                    INSERT INTO attempt (reminder_id, channel, number, transport, recipient, started_at, finished_at, outcome, detail)
                    VALUES (?, ?, ?, '-', ?, ?, ?, 'not_sent', ?)
                    """,
                arguments: [key.reminderID, key.channel.rawValue, attempts + 1, recipient, now.timeIntervalSince1970, now.timeIntervalSince1970, reason])
            try Self.move(db, key, from: .pending, to: .failed, reason: reason, at: now)
            try Self.fallBack(db, from: key, reason: reason, at: now)
        }
    }

    /// At start-up: deliveries left in `sending` by a crash are in doubt. `resend: false` (the
    /// default policy) makes them `unknown`; `resend: true` puts them back to `pending`.
    @discardableResult
    public func recoverInDoubt(resend: Bool, now: Date) async throws -> [DeliveryKey] {
        try await pool.write { db in
            let rows = try Row.fetchAll(db, cachedSQL: "SELECT reminder_id, channel FROM delivery WHERE status = 'sending'")
            var keys: [DeliveryKey] = []
            for row in rows {
                let key = try row.deliveryKey()
                keys.append(key)
                try db.run(
                    sql:
                        "UPDATE attempt SET outcome = 'unknown', detail = 'daemon stopped during the transport call' WHERE reminder_id = ? AND channel = ? AND outcome = 'sending'",
                    arguments: [key.reminderID, key.channel.rawValue])
                if resend {
                    try db.run(
                        sql: "UPDATE delivery SET due_at = ? WHERE reminder_id = ? AND channel = ?",
                        arguments: [now.timeIntervalSince1970, key.reminderID, key.channel.rawValue])
                    try Self.move(db, key, from: .sending, to: .pending, reason: "in doubt after a crash; resent per delivery.in_doubt: resend", at: now)
                } else {
                    try Self.move(
                        db, key, from: .sending, to: .unknown,
                        reason: "in doubt after a crash: the transport call may or may not have happened; settle with relance resolve", at: now)
                }
            }
            return keys
        }
    }

    /// One daemon per SQLite ledger (its lock): no claim of another node can lapse.
    public func rescueLapsedClaims(resend: Bool, now: Date) async throws -> [DeliveryKey] { [] }

    /// Claims on SQLite carry no lease.
    public var claimRenewalInterval: Duration? { nil }
    public func renewClaims(_ keys: [DeliveryKey], now: Date) async throws {}

    /// How an operator settles an in-doubt delivery.
    public enum Resolution: String, Sendable, CaseIterable {
        /// The message did go out (checked at the relay or gateway): `unknown → sent`.
        case sent
        /// It did not: send it again now, `unknown → pending`.
        case resend
    }

    /// Settles an `unknown` delivery, audited as an event naming the operator.
    public func resolve(_ key: DeliveryKey, as resolution: Resolution, reason: String, now: Date) async throws {
        try await batcher.write { db in
            guard
                let status = try String.fetchOne(
                    db, cachedSQL: "SELECT status FROM delivery WHERE reminder_id = ? AND channel = ?", arguments: [key.reminderID, key.channel.rawValue])
            else { throw ResolveError(description: "no delivery \(key)") }
            guard status == DeliveryStatus.unknown.rawValue else {
                throw ResolveError(description: "\(key) is \(status), not unknown: only in-doubt deliveries are resolved")
            }
            if resolution == .resend {
                try db.run(
                    sql: "UPDATE delivery SET due_at = ? WHERE reminder_id = ? AND channel = ?",
                    arguments: [now.timeIntervalSince1970, key.reminderID, key.channel.rawValue])
            }
            try Self.move(db, key, from: .unknown, to: resolution == .sent ? .sent : .pending, reason: reason, at: now)
        }
    }

    public struct ResolveError: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// When a channel fails for good (or the recipient opted out), the reminder's `fallback`
    /// channels that it does not use yet get a delivery, due now, with the reason recorded.
    static func fallBack(_ db: Database, from key: DeliveryKey, reason: String, at now: Date) throws {
        // An erased reminder (retention) keeps no address to fall back to.
        guard let row = try Row.fetchOne(db, cachedSQL: "SELECT record, queue, erased_at FROM reminder WHERE id = ?", arguments: [key.reminderID]),
            (row["erased_at"] as Double?) == nil
        else { return }
        let reminder = try Reminder.stored(row["record"], id: key.reminderID)
        guard
            let failed = try Row.fetchOne(
                db, cachedSQL: "SELECT priority, due_at FROM delivery WHERE reminder_id = ? AND channel = ?", arguments: [key.reminderID, key.channel.rawValue])
        else { return }
        let priority: Int = failed["priority"]
        // Due as early as the failed one was: the same pass can send it.
        let due = min(failed["due_at"] as Double, now.timeIntervalSince1970)
        for channel in reminder.fallback where channel != key.channel {
            if reminder.debtor.address(on: channel) == nil { continue }
            let exists =
                try Bool.fetchOne(
                    db, cachedSQL: "SELECT EXISTS (SELECT 1 FROM delivery WHERE reminder_id = ? AND channel = ?)",
                    arguments: [key.reminderID, channel.rawValue])
                ?? false
            if exists { continue }
            try db.run(
                sql: """
                    INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, expires_at, updated_at, debtor_id, risk)
                    VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, COALESCE((SELECT band FROM debtor_risk WHERE debtor_id = ?), 2))
                    """,
                arguments: [
                    key.reminderID, channel.rawValue, row["queue"] as String, priority, due, reminder.expiresAt?.timeIntervalSince1970,
                    now.timeIntervalSince1970, reminder.debtor.id, reminder.debtor.id,
                ])
            try insertEvent(
                db, DeliveryKey(reminderID: key.reminderID, channel: channel), from: nil, to: .pending,
                reason: "fallback from \(key.channel.rawValue): \(reason)", at: now)
        }
    }
}
