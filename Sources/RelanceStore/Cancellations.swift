import Foundation
import GRDB
import RelanceCore

/// Cancellations, pauses and partial payments: recorded, applied to what waits, in force for what comes later.
extension Ledger {
    // MARK: Cancellations and pauses

    /// What a cancellation did.
    public struct CancelResult: Sendable, Equatable {
        public var cancelled = 0
        public var paused = 0
        /// Reminders whose invoices are now all paid (partial payments that completed them).
        public var settled = 0
        /// Reminders matched (any status).
        public var matched = 0
        /// The same record (same `origin`) was applied before: nothing was done again.
        public var alreadyApplied = false
        public init() {}
    }

    /// Records a cancellation, pause or partial payment and applies it to every waiting delivery it
    /// matches, in one transaction. It stays in force for reminders ingested later, and
    /// `markSending` checks it again in the transaction that would start a send.
    /// `origin` names the record where it came from (a file's identity and line): the same origin
    /// applied again changes nothing.
    public func cancel(_ request: CancellationRequest, source: String, origin: String?, now: Date) async throws -> CancelResult {
        try await batcher.write { db in try Self.applyCancellation(db, request, source: source, origin: origin, now: now) }
    }

    /// `cancel` in the open transaction (a settlement imported with the receivables cancels in
    /// the payment's own transaction).
    static func applyCancellation(_ db: Database, _ request: CancellationRequest, source: String, origin: String?, now: Date) throws -> CancelResult {
        try db.run(
            sql: """
                INSERT OR IGNORE INTO cancellation (scope, value, reason, until, amount_paid, note, source, created_at, origin)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                request.scope.rawValue, request.value, request.reason.rawValue, request.until?.timeIntervalSince1970, request.amountPaid, request.note,
                source, now.timeIntervalSince1970, origin,
            ])
        var result = CancelResult()
        guard db.changesCount == 1 else {
            result.alreadyApplied = true
            return result
        }
        let reminders = try Self.reminderIDs(db, scope: request.scope, value: request.value)
        result.matched = reminders.count
        for reminderID in reminders {
            if request.amountPaid != nil {
                // A partial payment: only a reminder with nothing left to pay is cancelled.
                // An erased reminder (retention) has nothing left to send.
                guard let row = try Row.fetchOne(db, cachedSQL: "SELECT record, erased_at FROM reminder WHERE id = ?", arguments: [reminderID]),
                    (row["erased_at"] as Double?) == nil,
                    try Reminder.stored(row["record"], id: reminderID).applyingPayments(try Self.payments(db, reminderID: reminderID)) == nil
                else { continue }
                result.settled += 1
            }
            // Too late for these: kept as an event, so the receipts show when it came.
            for row in try Row.fetchAll(
                db, cachedSQL: "SELECT channel, status FROM delivery WHERE reminder_id = ? AND status NOT IN ('pending', 'paused')", arguments: [reminderID]
            ) {
                let status = try row.deliveryStatus()
                try Self.insertEvent(
                    db, DeliveryKey(reminderID: reminderID, channel: try row.channel()), from: status, to: status,
                    reason: "\(request.summary) (\(source)) recorded when already \(status.rawValue)", at: now)
            }
            let waiting = try Row.fetchAll(
                db, cachedSQL: "SELECT channel, status FROM delivery WHERE reminder_id = ? AND status IN ('pending', 'paused')", arguments: [reminderID])
            for row in waiting {
                let key = DeliveryKey(reminderID: reminderID, channel: try row.channel())
                let from = try row.deliveryStatus()
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

    static func reminderIDs(_ db: Database, scope: CancellationRequest.Scope, value: String) throws -> [String] {
        switch scope {
        case .reminder: return try String.fetchAll(db, cachedSQL: "SELECT id FROM reminder WHERE id = ?", arguments: [value])
        case .debtor: return try String.fetchAll(db, cachedSQL: "SELECT id FROM reminder WHERE debtor_id = ?", arguments: [value])
        case .file: return try String.fetchAll(db, cachedSQL: "SELECT id FROM reminder WHERE source_file = ?", arguments: [value])
        case .invoice: return try String.fetchAll(db, cachedSQL: "SELECT reminder_id FROM reminder_invoice WHERE invoice = ?", arguments: [value])
        }
    }

    /// Total paid per invoice of a reminder, from partial payments (the latest figure wins).
    /// Whether any partial payment is in force (on any invoice).
    static func anyPartialPayment(_ db: Database) throws -> Bool {
        try Bool.fetchOne(
            db, cachedSQL: "SELECT EXISTS (SELECT 1 FROM cancellation WHERE scope = 'invoice' AND amount_paid IS NOT NULL AND lifted_at IS NULL)") ?? false
    }

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
        let first = try db.firstDirectRow(
            sql: """
                SELECT c.scope, c.value, c.reason, c.until, c.source FROM cancellation c, reminder r
                WHERE r.id = ? AND c.lifted_at IS NULL AND c.amount_paid IS NULL AND (c.until IS NULL OR c.until > ?)
                  AND ((c.scope = 'reminder' AND c.value = r.id) OR (c.scope = 'debtor' AND c.value = r.debtor_id)
                    OR (c.scope = 'file' AND c.value = r.source_file)
                    OR (c.scope = 'invoice' AND c.value IN (SELECT invoice FROM reminder_invoice WHERE reminder_id = r.id)))
                ORDER BY c.until IS NOT NULL, c.until DESC
                """, [.text(reminderID), .real(now.timeIntervalSince1970)],
            { row in
                (scope: row.text(0) ?? "", value: row.text(1) ?? "", reason: row.text(2) ?? "", until: row.real(3), source: row.text(4) ?? "")
            })
        guard let first else { return nil }
        let until = first.until.map(Date.init(timeIntervalSince1970:))
        var reason = "\(first.scope) \(first.value): \(first.reason)"
        if let until { reason += " until \(Timestamp.format(until))" }
        return (reason + " (\(first.source))", until)
    }

    /// Paused deliveries whose pause has ended become pending, due now. Returns how many.
    @discardableResult
    public func resumePaused(now: Date) async throws -> Int {
        try await batcher.write { db in
            let keys = try Row.fetchAll(
                db, cachedSQL: "SELECT reminder_id, channel FROM delivery WHERE status = 'paused' AND paused_until IS NOT NULL AND paused_until <= ?",
                arguments: [now.timeIntervalSince1970])
            for row in keys {
                let key = try row.deliveryKey()
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
                for row in try Row.fetchAll(
                    db, cachedSQL: "SELECT reminder_id, channel FROM delivery WHERE reminder_id = ? AND status = 'paused'", arguments: [reminderID])
                {
                    let key = try row.deliveryKey()
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
}
