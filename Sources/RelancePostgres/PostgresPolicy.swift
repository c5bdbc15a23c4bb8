import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

/// The contact policy's side of the ledger on PostgreSQL, as `Ledger`'s (Policy.swift,
/// Cancellations.swift): deferrals, kill switches, contact history, cancellations, pauses and
/// partial payments, group candidates, the first letter.
extension PostgresLedger: PolicyStore {
    // MARK: Cancellations and pauses

    public func cancel(_ request: CancellationRequest, source: String, origin: String?, now: Date) async throws -> Ledger.CancelResult {
        try await transaction { connection in try await Self.applyCancellation(connection, request, source: source, origin: origin, now: now, logger: logger) }
    }

    static func applyCancellation(
        _ connection: PostgresConnection, _ request: CancellationRequest, source: String, origin: String?, now: Date, logger: Logger
    ) async throws -> Ledger.CancelResult {
        let (scope, value, reason, until, amount, note, t) = (
            request.scope.rawValue, request.value, request.reason.rawValue, request.until?.timeIntervalSince1970, request.amountPaid, request.note,
            now.timeIntervalSince1970
        )
        var inserted = false
        for try await _ in try await connection.query(
            """
            INSERT INTO cancellation (scope, value, reason, until, amount_paid, note, source, created_at, origin)
            VALUES (\(scope), \(value), \(reason), \(until), \(amount), \(note), \(source), \(t), \(origin))
            ON CONFLICT (origin) WHERE origin IS NOT NULL DO NOTHING RETURNING id
            """, logger: logger)
        {
            inserted = true
        }
        var result = Ledger.CancelResult()
        guard inserted else {
            result.alreadyApplied = true
            return result
        }
        let reminders = try await reminderIDs(connection, scope: request.scope, value: request.value, logger: logger)
        result.matched = reminders.count
        for reminderID in reminders {
            if request.amountPaid != nil {
                // A partial payment: only a reminder with nothing left to pay is cancelled; an
                // erased reminder (retention) has nothing left to send.
                var settled = false
                for try await (record, erasedAt) in try await connection.query(
                    "SELECT record, erased_at FROM reminder WHERE id = \(reminderID)", logger: logger
                ).decode((String, Double?).self) where erasedAt == nil {
                    let paid = try await payments(connection, reminderID: reminderID, logger: logger)
                    settled = try Reminder.stored(record, id: reminderID).applyingPayments(paid) == nil
                }
                guard settled else { continue }
                result.settled += 1
            }
            var deliveries: [(DeliveryKey, DeliveryStatus)] = []
            for try await (channel, status) in try await connection.query(
                "SELECT channel, status FROM delivery WHERE reminder_id = \(reminderID) ORDER BY channel FOR UPDATE", logger: logger
            ).decode((String, String).self) {
                deliveries.append((try key(reminderID, channel), try deliveryStatus(status, of: reminderID)))
            }
            for (key, status) in deliveries {
                guard status == .pending || status == .paused else {
                    // Too late for it: kept as an event, so the receipts show when it came.
                    try await insertEvent(
                        connection, key, from: status, to: status, reason: "\(request.summary) (\(source)) recorded when already \(status.rawValue)", at: now,
                        logger: logger)
                    continue
                }
                if let until = request.until, until > now {
                    let (id, channel, end) = (key.reminderID, key.channel.rawValue, until.timeIntervalSince1970)
                    try await connection.query("UPDATE delivery SET paused_until = \(end) WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
                    let reason = "paused until \(Timestamp.format(until)): \(request.summary) (\(source))"
                    if status == .pending {
                        try await move(connection, key, from: .pending, to: .paused, reason: reason, at: now, logger: logger)
                    } else {
                        try await insertEvent(connection, key, from: .paused, to: .paused, reason: reason, at: now, logger: logger)
                    }
                    result.paused += 1
                } else if request.until == nil {
                    try await move(connection, key, from: status, to: .cancelled, reason: "cancelled: \(request.summary) (\(source))", at: now, logger: logger)
                    result.cancelled += 1
                }
            }
        }
        return result
    }

    static func reminderIDs(_ connection: PostgresConnection, scope: CancellationRequest.Scope, value: String, logger: Logger) async throws -> [String] {
        let query: PostgresQuery
        switch scope {
        case .reminder: query = "SELECT id FROM reminder WHERE id = \(value) ORDER BY id"
        case .debtor: query = "SELECT id FROM reminder WHERE debtor_id = \(value) ORDER BY id"
        case .file: query = "SELECT id FROM reminder WHERE source_file = \(value) ORDER BY id"
        case .invoice: query = "SELECT reminder_id FROM reminder_invoice WHERE invoice = \(value) ORDER BY reminder_id"
        }
        var ids: [String] = []
        for try await (id) in try await connection.query(query, logger: logger).decode(String.self) { ids.append(id) }
        return ids
    }

    /// The cancellation or pause in force for a reminder at `now`, if any (pauses: the latest end).
    static func cancellationInForce(_ connection: PostgresConnection, reminderID: String, now: Date, logger: Logger) async throws -> (
        reason: String, until: Date?
    )? {
        let t = now.timeIntervalSince1970
        for try await (scope, value, reason, until, source) in try await connection.query(
            """
            SELECT c.scope, c.value, c.reason, c.until, c.source FROM cancellation c, reminder r
            WHERE r.id = \(reminderID) AND c.lifted_at IS NULL AND c.amount_paid IS NULL AND (c.until IS NULL OR c.until > \(t))
              AND ((c.scope = 'reminder' AND c.value = r.id) OR (c.scope = 'debtor' AND c.value = r.debtor_id)
                OR (c.scope = 'file' AND c.value = r.source_file)
                OR (c.scope = 'invoice' AND c.value IN (SELECT invoice FROM reminder_invoice WHERE reminder_id = r.id)))
            ORDER BY c.until IS NOT NULL, c.until DESC
            LIMIT 1
            """, logger: logger
        ).decode((String, String, String, Double?, String).self) {
            return Self.cancellation(scope: scope, value: value, reason: reason, until: until, source: source)
        }
        return nil
    }

    /// How a cancellation in force is told (the event's reason), and its end.
    static func cancellation(scope: String, value: String, reason: String, until: Double?, source: String) -> (reason: String, until: Date?) {
        let end = until.map(Date.init(timeIntervalSince1970:))
        var text = "\(scope) \(value): \(reason)"
        if let end { text += " until \(Timestamp.format(end))" }
        return (text + " (\(source))", end)
    }

    public func resumePaused(now: Date) async throws -> Int {
        let t = now.timeIntervalSince1970
        return try await transaction { connection in
            var ended: [DeliveryKey] = []
            for try await (id, channel) in try await connection.query(
                "SELECT reminder_id, channel FROM delivery WHERE status = 'paused' AND paused_until IS NOT NULL AND paused_until <= \(t) FOR UPDATE",
                logger: logger
            ).decode((String, String).self) {
                ended.append(try Self.key(id, channel))
            }
            for key in ended {
                let (id, channel) = (key.reminderID, key.channel.rawValue)
                // A later pause or a cancellation may still be in force.
                if let still = try await Self.cancellationInForce(connection, reminderID: id, now: now, logger: logger) {
                    if let until = still.until?.timeIntervalSince1970 {
                        try await connection.query("UPDATE delivery SET paused_until = \(until) WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
                    } else {
                        try await Self.move(connection, key, from: .paused, to: .cancelled, reason: "cancelled: \(still.reason)", at: now, logger: logger)
                    }
                    continue
                }
                try await connection.query(
                    "UPDATE delivery SET paused_until = NULL, due_at = GREATEST(due_at, \(t)) WHERE reminder_id = \(id) AND channel = \(channel)",
                    logger: logger)
                try await Self.move(connection, key, from: .paused, to: .pending, reason: "pause ended", at: now, logger: logger)
            }
            return ended.count
        }
    }

    public func lift(scope: CancellationRequest.Scope, value: String, now: Date) async throws -> Int {
        let (t, scopeName) = (now.timeIntervalSince1970, scope.rawValue)
        return try await transaction { connection in
            try await connection.query(
                """
                UPDATE cancellation SET lifted_at = \(t) WHERE scope = \(scopeName) AND value = \(value) AND lifted_at IS NULL AND amount_paid IS NULL
                """, logger: logger)
            var resumed = 0
            for reminderID in try await Self.reminderIDs(connection, scope: scope, value: value, logger: logger) {
                if try await Self.cancellationInForce(connection, reminderID: reminderID, now: now, logger: logger) != nil { continue }
                var paused: [DeliveryKey] = []
                for try await (channel) in try await connection.query(
                    "SELECT channel FROM delivery WHERE reminder_id = \(reminderID) AND status = 'paused' ORDER BY channel FOR UPDATE", logger: logger
                ).decode(String.self) {
                    paused.append(try Self.key(reminderID, channel))
                }
                for key in paused {
                    let channel = key.channel.rawValue
                    try await connection.query(
                        "UPDATE delivery SET paused_until = NULL, due_at = GREATEST(due_at, \(t)) WHERE reminder_id = \(reminderID) AND channel = \(channel)",
                        logger: logger)
                    try await Self.move(connection, key, from: .paused, to: .pending, reason: "resumed by an operator", at: now, logger: logger)
                    resumed += 1
                }
            }
            return resumed
        }
    }

    public func paymentsFor(invoices: [String]) async throws -> [String: String] {
        guard !invoices.isEmpty else { return [:] }
        return try await translatingErrors {
            var paid: [String: String] = [:]
            for try await (invoice, amount) in try await client.query(
                """
                SELECT value, amount_paid FROM cancellation WHERE scope = 'invoice' AND amount_paid IS NOT NULL AND lifted_at IS NULL
                  AND value = ANY(\(invoices)) ORDER BY id
                """, logger: logger
            ).decode((String, String).self) {
                paid[invoice] = amount
            }
            return paid
        }
    }

    // MARK: Deferral and ends

    /// The policy said "not now": the delivery stays pending, due at `until`, and the decision is recorded.
    public func deferDelivery(_ key: DeliveryKey, until: Date, reason: String, now: Date) async throws {
        let (id, channel, due, t) = (key.reminderID, key.channel.rawValue, until.timeIntervalSince1970, now.timeIntervalSince1970)
        try await transaction { connection in
            var moved = false
            for try await _ in try await connection.query(
                """
                UPDATE delivery SET due_at = \(due), updated_at = \(t) WHERE reminder_id = \(id) AND channel = \(channel) AND status = 'pending' RETURNING 1
                """, logger: logger)
            {
                moved = true
            }
            if moved { try await Self.insertEvent(connection, key, from: .pending, to: .pending, reason: reason, at: now, logger: logger) }
        }
    }

    public func expire(_ key: DeliveryKey, reason: String, now: Date) async throws { try await end(key, as: .expired, reason: reason, now: now) }

    public func cancelDelivery(_ key: DeliveryKey, reason: String, now: Date) async throws { try await end(key, as: .cancelled, reason: reason, now: now) }

    /// Moves a delivery to a terminal status if its current status allows it (else leaves it).
    func end(_ key: DeliveryKey, as status: DeliveryStatus, reason: String, now: Date) async throws {
        let (id, channel) = (key.reminderID, key.channel.rawValue)
        try await transaction { connection in
            for try await (current) in try await connection.query(
                "SELECT status FROM delivery WHERE reminder_id = \(id) AND channel = \(channel) FOR UPDATE", logger: logger
            ).decode(String.self) {
                let from = try Self.deliveryStatus(current, of: id)
                if from.canMove(to: status) { try await Self.move(connection, key, from: from, to: status, reason: reason, at: now, logger: logger) }
            }
        }
    }

    // MARK: Kill switches

    public func hold(channel: RelanceCore.Channel?, until: Date?, reason: String, now: Date) async throws {
        let (name, end, t) = (channel?.rawValue ?? "*", until?.timeIntervalSince1970, now.timeIntervalSince1970)
        _ = try await translatingErrors {
            try await client.query(
                """
                INSERT INTO hold (channel, until, reason, created_at) VALUES (\(name), \(end), \(reason), \(t))
                ON CONFLICT (channel) DO UPDATE SET until = EXCLUDED.until, reason = EXCLUDED.reason, created_at = EXCLUDED.created_at
                """, logger: logger)
        }
    }

    public func releaseHold(channel: RelanceCore.Channel?) async throws -> Int {
        let name = channel?.rawValue
        return try await translatingErrors {
            var lifted = 0
            for try await _ in try await client.query("DELETE FROM hold WHERE \(name)::text IS NULL OR channel = \(name) RETURNING 1", logger: logger) {
                lifted += 1
            }
            return lifted
        }
    }

    public func holds(now: Date) async throws -> [Ledger.Hold] {
        let t = now.timeIntervalSince1970
        return try await translatingErrors {
            var holds: [Ledger.Hold] = []
            for try await (channel, until, reason, created) in try await client.query(
                "SELECT channel, until, reason, created_at FROM hold WHERE until IS NULL OR until > \(t) ORDER BY channel COLLATE \"C\"", logger: logger
            ).decode((String, Double?, String, Double).self) {
                holds.append(
                    Ledger.Hold(
                        channel: channel, until: until.map(Date.init(timeIntervalSince1970:)), reason: reason, createdAt: Date(timeIntervalSince1970: created)))
            }
            return holds
        }
    }

    static func isHeld(_ connection: PostgresConnection, channel: RelanceCore.Channel, now: Date, logger: Logger) async throws -> Bool {
        let (name, t) = (channel.rawValue, now.timeIntervalSince1970)
        for try await (held) in try await connection.query(
            "SELECT EXISTS (SELECT 1 FROM hold WHERE channel IN ('*', \(name)) AND (until IS NULL OR until > \(t)))", logger: logger
        ).decode(Bool.self) {
            return held
        }
        return false
    }

    // MARK: Contact history

    public func contacts(debtorID: String, excludingReminder reminderID: String, since: Date) async throws -> [Date] {
        try await translatingErrors {
            try await client.withConnection { connection in
                try await Self.contacts(connection, debtorID: debtorID, excludingReminder: reminderID, since: since, logger: logger)
            }
        }
    }

    static func contacts(_ connection: PostgresConnection, debtorID: String, excludingReminder reminderID: String, since: Date, logger: Logger)
        async throws -> [Date]
    {
        var contacts: [Date] = []
        let binds = contactsBinds(debtor: debtorID, excluding: reminderID, since: since)
        for try await row in try await connection.execute(SendPath.Contacts(bindings: binds), logger: logger) {
            contacts.append(Date(timeIntervalSince1970: try row.decode(Double.self)))
        }
        return contacts
    }

    /// The debtor's contacts (`contacts(debtorID:excludingReminder:since:)`), with `$1` the debtor,
    /// `$2` the reminder left out and `$3` the start (`contactsBinds`); claims read it inside a
    /// statement of their own. The debtor's reminders (an index range), then each one's attempts
    /// (an index range): `OFFSET 0` keeps the planner from hashing every attempt instead, which it
    /// does when the tables have no statistics yet (see `refreshStatistics`).
    static let contactsSQL = """
        SELECT MIN(a.started_at) FROM reminder r,
          LATERAL (SELECT a.started_at, a.group_id, a.reminder_id FROM attempt a
                   WHERE a.reminder_id = r.id AND a.outcome IN ('sending', 'sent', 'unknown') OFFSET 0) a
        WHERE r.debtor_id = $1 AND r.id != $2
        GROUP BY COALESCE(a.group_id, a.reminder_id) HAVING MIN(a.started_at) >= $3
        """

    /// The binds of `contactsSQL`; no `since`: none (an empty history).
    static func contactsBinds(debtor: String, excluding reminderID: String, since: Date?) -> PostgresBindings {
        var binds = PostgresBindings(capacity: 3)
        binds.append(debtor)
        binds.append(reminderID)
        binds.append(since?.timeIntervalSince1970 ?? Double.greatestFiniteMagnitude)
        return binds
    }

    public func attemptCount(channel: RelanceCore.Channel, since: Date) async throws -> Int {
        try await translatingErrors {
            try await client.withConnection { connection in try await Self.messageCount(connection, channel: channel, since: since, logger: logger) }
        }
    }

    /// Messages attempted on `channel` since `since` (the daily volume cap; a grouped message counts once).
    static func messageCount(_ connection: PostgresConnection, channel: RelanceCore.Channel, since: Date, logger: Logger) async throws -> Int {
        let (name, t) = (channel.rawValue, since.timeIntervalSince1970)
        for try await (count) in try await connection.query(
            """
            SELECT COUNT(*) FROM attempt WHERE channel = \(name) AND started_at >= \(t) AND outcome IN ('sending', 'sent', 'unknown')
              AND (group_id IS NULL OR group_id = reminder_id)
            """, logger: logger
        ).decode(Int.self) {
            return count
        }
        return 0
    }

    public func groupCandidates(for lead: Ledger.Due, now: Date, limit: Int) async throws -> [Ledger.Due] {
        let (debtor, channel, t, leadID) = (lead.reminder.debtor.id, lead.key.channel.rawValue, now.timeIntervalSince1970, lead.key.reminderID)
        return try await translatingErrors {
            try await client.withConnection { connection in
                var rows: [(String, String, Int, Double?, Double?, String)] = []
                for try await row in try await connection.query(
                    """
                    SELECT d.reminder_id, d.queue, d.attempts, d.first_attempt_at, d.expires_at, r.record
                    FROM delivery d JOIN reminder r ON r.id = d.reminder_id
                    WHERE d.debtor_id = \(debtor) AND d.channel = \(channel) AND d.status = 'pending' AND d.due_at <= \(t) AND d.reminder_id != \(leadID)
                    ORDER BY d.due_at, d.reminder_id LIMIT \(limit)
                    """, logger: logger
                ).decode((String, String, Int, Double?, Double?, String).self) {
                    rows.append(row)
                }
                var candidates: [Ledger.Due] = []
                for (id, queue, attempts, first, expires, record) in rows {
                    candidates.append(
                        Ledger.Due(
                            key: DeliveryKey(reminderID: id, channel: lead.key.channel), reminder: try Reminder.stored(record, id: id), queue: queue,
                            attempts: attempts, firstAttemptAt: first.map(Date.init(timeIntervalSince1970:)),
                            expiresAt: expires.map(Date.init(timeIntervalSince1970:)),
                            paid: try await Self.payments(connection, reminderID: id, logger: logger)))
                }
                return candidates
            }
        }
    }

    public func firstLetter(invoices: [String], excluding key: DeliveryKey) async throws -> (key: DeliveryKey, at: Date)? {
        guard !invoices.isEmpty else { return nil }
        let (id, channel) = (key.reminderID, key.channel.rawValue)
        return try await translatingErrors {
            for try await (reminder, sentOn, at) in try await client.query(
                """
                SELECT a.reminder_id, a.channel, a.started_at FROM attempt a
                WHERE a.outcome IN ('sent', 'unknown')
                  AND a.reminder_id IN (SELECT reminder_id FROM reminder_invoice WHERE invoice = ANY(\(invoices)))
                  AND NOT (a.reminder_id = \(id) AND a.channel = \(channel))
                ORDER BY a.started_at, a.id LIMIT 1
                """, logger: logger
            ).decode((String, String, Double).self) {
                return (try Self.key(reminder, sentOn), Date(timeIntervalSince1970: at))
            }
            return nil
        }
    }

    /// For `preview` and the dry run: what would stop a delivery of `reminder` at `now`, read
    /// without writing (as `Ledger.blocker`).
    public func blocker(for reminder: Reminder, channel: RelanceCore.Channel, recipient: String?, sourceFile: String?, now: Date) async throws -> String? {
        let t = now.timeIntervalSince1970
        let invoices = reminder.invoices.map(\.number)
        return try await translatingErrors {
            try await client.withConnection { connection in
                if try await Self.isHeld(connection, channel: channel, now: now, logger: logger) {
                    return "on hold: every \(channel.rawValue) is paused (relance pause)"
                }
                for try await (scope, value, reason, until) in try await connection.query(
                    """
                    SELECT scope, value, reason, until FROM cancellation
                    WHERE ((scope = 'reminder' AND value = \(reminder.id)) OR (scope = 'debtor' AND value = \(reminder.debtor.id))
                        OR (scope = 'file' AND value = \(sourceFile)) OR (scope = 'invoice' AND value = ANY(\(invoices))))
                      AND lifted_at IS NULL AND amount_paid IS NULL AND (until IS NULL OR until > \(t))
                    ORDER BY until IS NOT NULL, until DESC LIMIT 1
                    """, logger: logger
                ).decode((String, String, String, Double?).self) {
                    let what = "\(scope) \(value): \(reason)"
                    if let until { return "paused until \(Timestamp.format(Date(timeIntervalSince1970: until))) (\(what))" }
                    return "cancelled (\(what))"
                }
                if let recipient, try await Self.isSuppressed(connection, recipient, logger: logger) {
                    return "suppressed: \(recipient) opted out"
                }
                return nil
            }
        }
    }

    static func isSuppressed(_ connection: PostgresConnection, _ address: String, logger: Logger) async throws -> Bool {
        let lowered = address.lowercased()
        for try await (suppressed) in try await connection.query("SELECT EXISTS (SELECT 1 FROM suppression WHERE address = \(lowered))", logger: logger)
            .decode(Bool.self)
        {
            return suppressed
        }
        return false
    }

    // MARK: Rows

    static func key(_ reminderID: String, _ channel: String) throws -> DeliveryKey {
        guard let channel = RelanceCore.Channel(rawValue: channel) else {
            throw LedgerCorruption(description: "delivery \(reminderID) has an unknown channel '\(channel)'")
        }
        return DeliveryKey(reminderID: reminderID, channel: channel)
    }

    static func deliveryStatus(_ text: String, of reminderID: String) throws -> DeliveryStatus {
        guard let status = DeliveryStatus(rawValue: text) else {
            throw LedgerCorruption(description: "delivery \(reminderID) has an unknown status '\(text)'")
        }
        return status
    }
}
