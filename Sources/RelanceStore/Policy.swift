import Foundation
import GRDB
import RelanceCore

/// The ledger's side of the contact policy: deferrals, cancellations and pauses, kill switches,
/// contact history for frequency caps, partial payments.
extension Ledger {
    // MARK: Deferral

    /// Instants of the debtor's earlier contacts (one per reminder, or per group of reminders sent as
    /// one message: its first attempt that may have reached them), since `since`, other than `reminderID`.
    public func contacts(debtorID: String, excludingReminder reminderID: String, since: Date) async throws -> [Date] {
        try await pool.read { db in try Self.contacts(db, debtorID: debtorID, excludingReminder: reminderID, since: since) }
    }

    static func contacts(_ db: Database, debtorID: String, excludingReminder reminderID: String, since: Date) throws -> [Date] {
        var contacts: [Date] = []
        try db.forEachDirectRow(
            sql: """
                SELECT MIN(a.started_at) FROM attempt a JOIN reminder r ON r.id = a.reminder_id
                WHERE r.debtor_id = ? AND a.reminder_id != ? AND a.outcome IN ('sending', 'sent', 'unknown')
                GROUP BY COALESCE(a.group_id, a.reminder_id) HAVING MIN(a.started_at) >= ?
                """,
            [.text(debtorID), .text(reminderID), .real(since.timeIntervalSince1970)]
        ) { row in
            if let at = row.real(0) { contacts.append(Date(timeIntervalSince1970: at)) }
        }
        return contacts
    }

    /// The policy said "not now": the delivery stays pending, due at `until`, and the decision is recorded.
    public func deferDelivery(_ key: DeliveryKey, until: Date, reason: String, now: Date) async throws {
        try await batcher.write { db in
            try db.run(
                sql: "UPDATE delivery SET due_at = ?, updated_at = ? WHERE reminder_id = ? AND channel = ? AND status = 'pending'",
                arguments: [until.timeIntervalSince1970, now.timeIntervalSince1970, key.reminderID, key.channel.rawValue])
            if db.changesCount == 1 { try Self.insertEvent(db, key, from: .pending, to: .pending, reason: reason, at: now) }
        }
    }

    /// A waiting delivery that can no longer go out in time.
    public func expire(_ key: DeliveryKey, reason: String, now: Date) async throws { try await end(key, as: .expired, reason: reason, now: now) }

    /// Cancels one waiting delivery (its invoices are all paid, …).
    public func cancelDelivery(_ key: DeliveryKey, reason: String, now: Date) async throws { try await end(key, as: .cancelled, reason: reason, now: now) }

    /// Moves a delivery to a terminal status if its current status allows it (else leaves it).
    func end(_ key: DeliveryKey, as status: DeliveryStatus, reason: String, now: Date) async throws {
        try await batcher.write { db in
            if let current = try String.fetchOne(
                db, cachedSQL: "SELECT status FROM delivery WHERE reminder_id = ? AND channel = ?", arguments: [key.reminderID, key.channel.rawValue]),
                let from = DeliveryStatus(rawValue: current), from.canMove(to: status)
            {
                try Self.move(db, key, from: from, to: status, reason: reason, at: now)
            }
        }
    }

    // MARK: Kill switches

    public struct Hold: Sendable, Equatable {
        /// A channel, or `*` for all.
        public var channel: String
        public var until: Date?
        public var reason: String
        public var createdAt: Date

        public init(channel: String, until: Date?, reason: String, createdAt: Date) {
            self.channel = channel
            self.until = until
            self.reason = reason
            self.createdAt = createdAt
        }
    }

    /// Stops all sending on a channel (nil: every channel) until `until` or a `releaseHold`.
    public func hold(channel: Channel?, until: Date?, reason: String, now: Date) async throws {
        try await pool.write { db in
            try db.run(
                sql: "INSERT OR REPLACE INTO hold (channel, until, reason, created_at) VALUES (?, ?, ?, ?)",
                arguments: [channel?.rawValue ?? "*", until?.timeIntervalSince1970, reason, now.timeIntervalSince1970])
        }
    }

    /// Lifts the hold on a channel (nil: every hold). Returns how many were lifted.
    public func releaseHold(channel: Channel?) async throws -> Int {
        try await pool.write { db in
            if let channel {
                try db.run(sql: "DELETE FROM hold WHERE channel = ?", arguments: [channel.rawValue])
            } else {
                try db.run(sql: "DELETE FROM hold")
            }
            return db.changesCount
        }
    }

    public func holds(now: Date) async throws -> [Hold] {
        try await pool.read { db in
            try Row.fetchAll(db, cachedSQL: "SELECT * FROM hold WHERE until IS NULL OR until > ? ORDER BY channel", arguments: [now.timeIntervalSince1970]).map
            {
                Hold(
                    channel: $0["channel"], until: ($0["until"] as Double?).map(Date.init(timeIntervalSince1970:)), reason: $0["reason"],
                    createdAt: Date(timeIntervalSince1970: $0["created_at"]))
            }
        }
    }

    static func isHeld(_ db: Database, channel: Channel, now: Date) throws -> Bool {
        try db.firstDirectRow(
            sql: "SELECT EXISTS (SELECT 1 FROM hold WHERE channel IN ('*', ?) AND (until IS NULL OR until > ?))",
            [.text(channel.rawValue), .real(now.timeIntervalSince1970)], { $0.integer(0) == 1 }) ?? false
    }

    /// Messages attempted on `channel` since `since` (for the daily volume cap; a grouped message counts once).
    public func attemptCount(channel: Channel, since: Date) async throws -> Int {
        try await pool.read { db in try Self.messageCount(db, channel: channel, since: since) }
    }

    static func messageCount(_ db: Database, channel: Channel, since: Date) throws -> Int {
        try Int.fetchOne(db, cachedSQL: messageCountSQL, arguments: [channel.rawValue, since.timeIntervalSince1970]) ?? 0
    }

    /// Messages on a channel since an instant (the daily volume cap): through the channel's
    /// attempts by start (`attempt_channel_started`), the outcome read from each row.
    static let messageCountSQL = """
        SELECT COUNT(*) FROM attempt WHERE channel = ? AND started_at >= ? AND outcome IN ('sending', 'sent', 'unknown')
          AND (group_id IS NULL OR group_id = reminder_id)
        """

    // MARK: Opt-outs

    /// Removes an address or number from the suppression list. Returns whether it was there.
    public func unsuppress(_ address: String) async throws -> Bool {
        try await pool.write { db in
            try db.run(sql: "DELETE FROM suppression WHERE address = ?", arguments: [address.lowercased()])
            return db.changesCount == 1
        }
    }
}

extension Ledger {
    /// For `preview` and the dry run: what would stop a delivery of `reminder` at `now` (a kill
    /// switch, a cancellation or pause, an opt-out), read without writing. The reminder need not
    /// be in the ledger yet.
    public func blocker(for reminder: Reminder, channel: Channel, recipient: String?, sourceFile: String?, now: Date) async throws -> String? {
        try await pool.read { db in
            if try Self.isHeld(db, channel: channel, now: now) { return "on hold: every \(channel.rawValue) is paused (relance pause)" }
            var clauses = ["(scope = 'reminder' AND value = ?)", "(scope = 'debtor' AND value = ?)"]
            var arguments: [any DatabaseValueConvertible] = [reminder.id, reminder.debtor.id]
            if let sourceFile {
                clauses.append("(scope = 'file' AND value = ?)")
                arguments.append(sourceFile)
            }
            for invoice in reminder.invoices {
                clauses.append("(scope = 'invoice' AND value = ?)")
                arguments.append(invoice.number)
            }
            arguments.append(now.timeIntervalSince1970)
            if let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT scope, value, reason, until FROM cancellation
                    WHERE (\(clauses.joined(separator: " OR "))) AND lifted_at IS NULL AND amount_paid IS NULL AND (until IS NULL OR until > ?)
                    ORDER BY until IS NOT NULL, until DESC LIMIT 1
                    """, arguments: StatementArguments(arguments))
            {
                let what = "\(row["scope"] as String) \(row["value"] as String): \(row["reason"] as String)"
                if let until = row["until"] as Double? {
                    return "paused until \(Timestamp.format(Date(timeIntervalSince1970: until))) (\(what))"
                }
                return "cancelled (\(what))"
            }
            if let recipient, try Self.isSuppressed(db, recipient) {
                return "suppressed: \(recipient) opted out"
            }
            return nil
        }
    }
}

extension Ledger {
    /// Other deliveries of the same debtor on the same channel, due at `now`, that may be merged
    /// into `lead`'s message: same stage, same locale, same recipient (checked by the caller on the
    /// decoded records), oldest first.
    public func groupCandidates(for lead: Due, now: Date, limit: Int) async throws -> [Due] {
        try await pool.read { db in try Self.groupCandidates(db, for: lead, now: now, limit: limit) }
    }

    /// The debtor's other deliveries due on the channel (`delivery_debtor`).
    static let groupCandidatesSQL = """
        SELECT d.reminder_id, d.queue, d.attempts, d.first_attempt_at, d.expires_at, r.record
        FROM delivery d JOIN reminder r ON r.id = d.reminder_id
        WHERE d.debtor_id = ? AND d.channel = ? AND d.status = 'pending' AND d.due_at <= ? AND d.reminder_id != ?
        ORDER BY d.due_at, d.reminder_id LIMIT ?
        """

    static func groupCandidates(_ db: Database, for lead: Due, now: Date, limit: Int) throws -> [Due] {
        // Rows read first, then each one's payments: the payments query must not run while this
        // statement is stepping.
        var rows: [(key: DeliveryKey, record: String, queue: String, attempts: Int, firstAttemptAt: Double?, expiresAt: Double?)] = []
        try db.forEachDirectRow(
            sql: groupCandidatesSQL,
            [.text(lead.reminder.debtor.id), .text(lead.key.channel.rawValue), .real(now.timeIntervalSince1970), .text(lead.key.reminderID), .integer(limit)]
        ) { row in
            rows.append(
                (DeliveryKey(reminderID: row.text(0) ?? "", channel: lead.key.channel), row.text(5) ?? "", row.text(1) ?? "", row.integer(2) ?? 0, row.real(3), row.real(4)))
        }
        return try rows.map { row in
            Due(
                key: row.key, reminder: try Reminder.stored(row.record, id: row.key.reminderID), queue: row.queue, attempts: row.attempts,
                firstAttemptAt: row.firstAttemptAt.map(Date.init(timeIntervalSince1970:)), expiresAt: row.expiresAt.map(Date.init(timeIntervalSince1970:)),
                paid: try Self.payments(db, reminderID: row.key.reminderID))
        }
    }
}

extension Ledger {
    /// The first message that went out about any of these invoices, other than `excluding` itself:
    /// the reminder, channel and instant of its first attempt that may have reached the debtor.
    public func firstLetter(invoices: [String], excluding key: DeliveryKey) async throws -> (key: DeliveryKey, at: Date)? {
        guard !invoices.isEmpty else { return nil }
        return try await pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT a.reminder_id, a.channel, a.started_at FROM attempt a
                        WHERE a.outcome IN ('sent', 'unknown')
                          AND a.reminder_id IN (SELECT reminder_id FROM reminder_invoice WHERE invoice IN (\(invoices.map { _ in "?" }.joined(separator: ","))))
                          AND NOT (a.reminder_id = ? AND a.channel = ?)
                        ORDER BY a.started_at, a.id LIMIT 1
                        """, arguments: StatementArguments(invoices + [key.reminderID, key.channel.rawValue]))
            else { return nil }
            return (
                try row.deliveryKey(),
                Date(timeIntervalSince1970: row["started_at"])
            )
        }
    }
}
