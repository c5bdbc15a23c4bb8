import Foundation
import GRDB
import RelanceCore

/// The ledger's side of the contact policy: deferrals, cancellations and pauses, kill switches,
/// contact history for frequency caps, partial payments.
extension Ledger {
    static func registerPolicyMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("v5-policy") { db in
            try db.execute(
                sql: """
                    CREATE TABLE cancellation (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        scope TEXT NOT NULL,
                        value TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        until DOUBLE,
                        amount_paid TEXT,
                        note TEXT,
                        source TEXT NOT NULL,
                        created_at DOUBLE NOT NULL,
                        lifted_at DOUBLE
                    );
                    CREATE INDEX cancellation_scope ON cancellation(scope, value);
                    CREATE TABLE hold (
                        channel TEXT PRIMARY KEY NOT NULL,
                        until DOUBLE,
                        reason TEXT NOT NULL,
                        created_at DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    ALTER TABLE delivery ADD COLUMN paused_until DOUBLE;
                    CREATE INDEX attempt_outcome_started ON attempt(outcome, started_at);
                    CREATE INDEX reminder_invoice_reminder ON reminder_invoice(reminder_id);
                    """)
        }
    }

    // MARK: Deferral

    /// Instants of the debtor's earlier contacts (one per reminder, or per group of reminders sent as
    /// one message: its first attempt that may have reached them), since `since`, other than `reminderID`.
    public func contacts(debtorID: String, excludingReminder reminderID: String, since: Date) async throws -> [Date] {
        try await pool.read { db in
            try Double.fetchAll(
                db,
                cachedSQL: """
                    SELECT MIN(a.started_at) FROM attempt a JOIN reminder r ON r.id = a.reminder_id
                    WHERE r.debtor_id = ? AND a.reminder_id != ? AND a.outcome IN ('sending', 'sent', 'unknown')
                    GROUP BY COALESCE(a.group_id, a.reminder_id) HAVING MIN(a.started_at) >= ?
                    """,
                arguments: [debtorID, reminderID, since.timeIntervalSince1970]
            ).map(Date.init(timeIntervalSince1970:))
        }
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

    // MARK: Cancellations and pauses

    /// What a cancellation did.
    public struct CancelResult: Sendable, Equatable {
        public var cancelled = 0
        public var paused = 0
        /// Reminders whose invoices are now all paid (partial payments that completed them).
        public var settled = 0
        /// Reminders matched (any status).
        public var matched = 0
    }

    /// Records a cancellation, pause or partial payment and applies it to every waiting delivery it
    /// matches, in one transaction. It stays in force for reminders ingested later, and
    /// `markSending` checks it again in the transaction that would start a send.
    public func cancel(_ request: CancellationRequest, source: String, now: Date) async throws -> CancelResult {
        try await batcher.write { db in
            try db.run(
                sql: """
                    INSERT INTO cancellation (scope, value, reason, until, amount_paid, note, source, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    request.scope.rawValue, request.value, request.reason.rawValue, request.until?.timeIntervalSince1970, request.amountPaid, request.note,
                    source, now.timeIntervalSince1970,
                ])
            var result = CancelResult()
            let reminders = try Self.reminderIDs(db, scope: request.scope, value: request.value)
            result.matched = reminders.count
            for reminderID in reminders {
                if request.amountPaid != nil {
                    // A partial payment: only a reminder with nothing left to pay is cancelled.
                    guard let record = try String.fetchOne(db, cachedSQL: "SELECT record FROM reminder WHERE id = ?", arguments: [reminderID]),
                        let reminder = try? Reminder.fromCanonicalJSON(record),
                        reminder.applyingPayments(try Self.payments(db, reminderID: reminderID)) == nil
                    else { continue }
                    result.settled += 1
                }
                // Too late for these: kept as an event, so the receipts show when it came.
                for row in try Row.fetchAll(
                    db, cachedSQL: "SELECT channel, status FROM delivery WHERE reminder_id = ? AND status NOT IN ('pending', 'paused')", arguments: [reminderID]
                ) {
                    let status = DeliveryStatus(rawValue: row["status"]) ?? .unknown
                    try Self.insertEvent(
                        db, DeliveryKey(reminderID: reminderID, channel: Channel(rawValue: row["channel"]) ?? .email), from: status, to: status,
                        reason: "\(request.summary) (\(source)) recorded when already \(status.rawValue)", at: now)
                }
                let waiting = try Row.fetchAll(
                    db, cachedSQL: "SELECT channel, status FROM delivery WHERE reminder_id = ? AND status IN ('pending', 'paused')", arguments: [reminderID])
                for row in waiting {
                    let key = DeliveryKey(reminderID: reminderID, channel: Channel(rawValue: row["channel"]) ?? .email)
                    let from = DeliveryStatus(rawValue: row["status"]) ?? .pending
                    if let until = request.until, until > now {
                        try db.run(
                            sql: "UPDATE delivery SET paused_until = ? WHERE reminder_id = ? AND channel = ?",
                            arguments: [until.timeIntervalSince1970, key.reminderID, key.channel.rawValue])
                        let reason = "paused until \(Timestamp.format(until)): \(request.summary) (\(source))"
                        if from == .pending {
                            try Self.move(db, key, from: .pending, to: .paused, reason: reason, at: now)
                        } else {
                            try Self.insertEvent(db, key, from: .paused, to: .paused, reason: reason, at: now)
                        }
                        result.paused += 1
                    } else if request.until == nil {
                        try Self.move(db, key, from: from, to: .cancelled, reason: "cancelled: \(request.summary) (\(source))", at: now)
                        result.cancelled += 1
                    }
                }
            }
            return result
        }
    }

    static func reminderIDs(_ db: Database, scope: CancellationRequest.Scope, value: String) throws -> [String] {
        switch scope {
        case .reminder: return try String.fetchAll(db, cachedSQL: "SELECT id FROM reminder WHERE id = ?", arguments: [value])
        case .debtor: return try String.fetchAll(db, cachedSQL: "SELECT id FROM reminder WHERE debtor_id = ?", arguments: [value])
        case .file: return try String.fetchAll(db, cachedSQL: "SELECT id FROM reminder WHERE source_file = ?", arguments: [value])
        case .invoice: return try String.fetchAll(db, cachedSQL: "SELECT reminder_id FROM reminder_invoice WHERE invoice = ?", arguments: [value])
        }
    }

    /// Total paid per invoice of a reminder, from partial payments (the latest figure wins).
    static func payments(_ db: Database, reminderID: String) throws -> [String: String] {
        var paid: [String: String] = [:]
        for row in try Row.fetchAll(
            db,
            cachedSQL: """
                SELECT value, amount_paid FROM cancellation
                WHERE scope = 'invoice' AND amount_paid IS NOT NULL AND lifted_at IS NULL
                  AND value IN (SELECT invoice FROM reminder_invoice WHERE reminder_id = ?)
                ORDER BY id
                """, arguments: [reminderID])
        {
            paid[row["value"]] = row["amount_paid"]
        }
        return paid
    }

    /// Partial payments recorded for these invoice numbers (for a reminder not ingested yet).
    public func paymentsFor(invoices: [String]) async throws -> [String: String] {
        guard !invoices.isEmpty else { return [:] }
        return try await pool.read { db in
            var paid: [String: String] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT value, amount_paid FROM cancellation WHERE scope = 'invoice' AND amount_paid IS NOT NULL AND lifted_at IS NULL
                    AND value IN (\(invoices.map { _ in "?" }.joined(separator: ","))) ORDER BY id
                    """, arguments: StatementArguments(invoices))
            {
                paid[row["value"]] = row["amount_paid"]
            }
            return paid
        }
    }

    public func payments(reminderID: String) async throws -> [String: String] {
        try await pool.read { db in try Self.payments(db, reminderID: reminderID) }
    }

    /// The cancellation or pause in force for a reminder at `now`, if any (pauses: the latest end).
    static func cancellationInForce(_ db: Database, reminderID: String, now: Date) throws -> (reason: String, until: Date?)? {
        let rows = try Row.fetchAll(
            db,
            cachedSQL: """
                SELECT c.scope, c.value, c.reason, c.until, c.source FROM cancellation c, reminder r
                WHERE r.id = ? AND c.lifted_at IS NULL AND c.amount_paid IS NULL AND (c.until IS NULL OR c.until > ?)
                  AND ((c.scope = 'reminder' AND c.value = r.id) OR (c.scope = 'debtor' AND c.value = r.debtor_id)
                    OR (c.scope = 'file' AND c.value = r.source_file)
                    OR (c.scope = 'invoice' AND c.value IN (SELECT invoice FROM reminder_invoice WHERE reminder_id = r.id)))
                ORDER BY c.until IS NOT NULL, c.until DESC
                """, arguments: [reminderID, now.timeIntervalSince1970])
        guard let row = rows.first else { return nil }
        let until = (row["until"] as Double?).map(Date.init(timeIntervalSince1970:))
        var reason = "\(row["scope"] as String) \(row["value"] as String): \(row["reason"] as String)"
        if let until { reason += " until \(Timestamp.format(until))" }
        return (reason + " (\(row["source"] as String))", until)
    }

    /// Paused deliveries whose pause has ended become pending, due now. Returns how many.
    @discardableResult
    public func resumePaused(now: Date) async throws -> Int {
        try await batcher.write { db in
            let keys = try Row.fetchAll(
                db, cachedSQL: "SELECT reminder_id, channel FROM delivery WHERE status = 'paused' AND paused_until IS NOT NULL AND paused_until <= ?",
                arguments: [now.timeIntervalSince1970])
            for row in keys {
                let key = DeliveryKey(reminderID: row["reminder_id"], channel: Channel(rawValue: row["channel"]) ?? .email)
                // A later pause or a cancellation may still be in force.
                if let still = try Self.cancellationInForce(db, reminderID: key.reminderID, now: now) {
                    if let until = still.until {
                        try db.run(
                            sql: "UPDATE delivery SET paused_until = ? WHERE reminder_id = ? AND channel = ?",
                            arguments: [until.timeIntervalSince1970, key.reminderID, key.channel.rawValue])
                    } else {
                        try Self.move(db, key, from: .paused, to: .cancelled, reason: "cancelled: \(still.reason)", at: now)
                    }
                    continue
                }
                try db.run(
                    sql: "UPDATE delivery SET paused_until = NULL, due_at = MAX(due_at, ?) WHERE reminder_id = ? AND channel = ?",
                    arguments: [now.timeIntervalSince1970, key.reminderID, key.channel.rawValue])
                try Self.move(db, key, from: .paused, to: .pending, reason: "pause ended", at: now)
            }
            return keys.count
        }
    }

    /// Lifts the pauses and cancellations recorded for a target (`relance resume --invoice …`):
    /// paused deliveries go back to pending; cancelled ones stay cancelled (terminal).
    public func lift(scope: CancellationRequest.Scope, value: String, now: Date) async throws -> Int {
        try await batcher.write { db in
            try db.run(
                sql: "UPDATE cancellation SET lifted_at = ? WHERE scope = ? AND value = ? AND lifted_at IS NULL AND amount_paid IS NULL",
                arguments: [now.timeIntervalSince1970, scope.rawValue, value])
            var resumed = 0
            for reminderID in try Self.reminderIDs(db, scope: scope, value: value) {
                if try Self.cancellationInForce(db, reminderID: reminderID, now: now) != nil { continue }
                for channel in try String.fetchAll(
                    db, cachedSQL: "SELECT channel FROM delivery WHERE reminder_id = ? AND status = 'paused'", arguments: [reminderID])
                {
                    let key = DeliveryKey(reminderID: reminderID, channel: Channel(rawValue: channel) ?? .email)
                    try db.run(
                        sql: "UPDATE delivery SET paused_until = NULL, due_at = MAX(due_at, ?) WHERE reminder_id = ? AND channel = ?",
                        arguments: [now.timeIntervalSince1970, key.reminderID, key.channel.rawValue])
                    try Self.move(db, key, from: .paused, to: .pending, reason: "resumed by an operator", at: now)
                    resumed += 1
                }
            }
            return resumed
        }
    }

    // MARK: Kill switches

    public struct Hold: Sendable, Equatable {
        /// A channel, or `*` for all.
        public var channel: String
        public var until: Date?
        public var reason: String
        public var createdAt: Date
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
        try Bool.fetchOne(
            db, cachedSQL: "SELECT EXISTS (SELECT 1 FROM hold WHERE channel IN ('*', ?) AND (until IS NULL OR until > ?))",
            arguments: [channel.rawValue, now.timeIntervalSince1970]) ?? false
    }

    /// Messages attempted on `channel` since `since` (for the daily volume cap; a grouped message counts once).
    public func attemptCount(channel: Channel, since: Date) async throws -> Int {
        try await pool.read { db in try Self.messageCount(db, channel: channel, since: since) }
    }

    static func messageCount(_ db: Database, channel: Channel, since: Date) throws -> Int {
        try Int.fetchOne(
            db,
            cachedSQL: """
                SELECT COUNT(*) FROM attempt WHERE channel = ? AND started_at >= ? AND outcome IN ('sending', 'sent', 'unknown')
                  AND (group_id IS NULL OR group_id = reminder_id)
                """, arguments: [channel.rawValue, since.timeIntervalSince1970]) ?? 0
    }

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
        try await pool.read { db in
            let rows = try Row.fetchAll(
                db,
                cachedSQL: """
                    SELECT d.reminder_id, d.queue, d.attempts, d.first_attempt_at, d.expires_at, r.record
                    FROM delivery d JOIN reminder r ON r.id = d.reminder_id
                    WHERE d.debtor_id = ? AND d.channel = ? AND d.status = 'pending' AND d.due_at <= ? AND d.reminder_id != ?
                    ORDER BY d.due_at, d.reminder_id LIMIT ?
                    """,
                arguments: [lead.reminder.debtor.id, lead.key.channel.rawValue, now.timeIntervalSince1970, lead.key.reminderID, limit])
            return try rows.compactMap { row in
                guard let reminder = try? Reminder.fromCanonicalJSON(row["record"]) else { return nil }
                let key = DeliveryKey(reminderID: row["reminder_id"], channel: lead.key.channel)
                return Due(
                    key: key, reminder: reminder, queue: row["queue"], attempts: row["attempts"],
                    firstAttemptAt: (row["first_attempt_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    expiresAt: (row["expires_at"] as Double?).map(Date.init(timeIntervalSince1970:)), paid: try Self.payments(db, reminderID: key.reminderID))
            }
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
                DeliveryKey(reminderID: row["reminder_id"], channel: Channel(rawValue: row["channel"]) ?? .email),
                Date(timeIntervalSince1970: row["started_at"])
            )
        }
    }
}
