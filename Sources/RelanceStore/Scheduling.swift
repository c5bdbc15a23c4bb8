import Foundation
import GRDB
import RelanceCore

extension Ledger {
    // MARK: Scheduling

    /// A delivery whose time has come.
    public struct Due: Sendable {
        public var key: DeliveryKey
        public var reminder: Reminder
        public var queue: String
        public var attempts: Int
        public var firstAttemptAt: Date?
        public var expiresAt: Date?
        /// Partial payments on its invoices: invoice number → total paid.
        public var paid: [String: String] = [:]
        /// Read with it when `due` was asked to (`Prefetch`): what the policy and the grouping
        /// would otherwise each read again (nil: not read).
        public var prefetched: Prefetched?

        public init(
            key: DeliveryKey, reminder: Reminder, queue: String, attempts: Int, firstAttemptAt: Date?, expiresAt: Date?, paid: [String: String] = [:],
            prefetched: Prefetched? = nil
        ) {
            self.key = key
            self.reminder = reminder
            self.queue = queue
            self.attempts = attempts
            self.firstAttemptAt = firstAttemptAt
            self.expiresAt = expiresAt
            self.paid = paid
            self.prefetched = prefetched
        }
    }

    /// What a delivery's run needs besides the delivery itself, read in the same snapshot.
    public struct Prefetched: Sendable {
        /// The debtor's contacts since `Prefetch.contactsSince` (`contacts(debtorID:excludingReminder:since:)`).
        public var contacts: [Date]
        /// Since when `contacts` were read.
        public var contactsSince: Date
        /// The debtor's other deliveries due on the channel (`groupCandidates`), when grouping.
        public var groupCandidates: [Due]?

        public init(contacts: [Date], contactsSince: Date, groupCandidates: [Due]?) {
            self.contacts = contacts
            self.contactsSince = contactsSince
            self.groupCandidates = groupCandidates
        }
    }

    /// Asks `due` to read each delivery's contact history (and group candidates) in its snapshot:
    /// one read for a batch instead of two per delivery. Sound because a debtor's deliveries go one
    /// at a time: no contact of a debtor that is not busy can be committed between this read and its run.
    public struct Prefetch: Sendable {
        public var contactsSince: Date
        /// At most this many group candidates per delivery; nil when grouping is off.
        public var groupLimit: Int?
        /// Only the first this many deliveries are prefetched (those that can start now); the
        /// others, read in case some of those cannot, query for themselves if they do start.
        public var deliveries: Int
        public init(contactsSince: Date, groupLimit: Int?, deliveries: Int = .max) {
            self.contactsSince = contactsSince
            self.groupLimit = groupLimit
            self.deliveries = deliveries
        }
    }

    /// Pending deliveries due at `now`, highest priority first, then the riskiest debtors (their
    /// band), then oldest first, skipping what `skip` names (asked before a record is decoded: in
    /// flight, its debtor busy, already tried) and at most one per debtor: a debtor's deliveries go
    /// one at a time, so one debtor's big batch is interleaved with everyone else's instead of
    /// holding them back, while its oldest delivery is still the first one looked at.
    public func due(
        now: Date, limit: Int, prefetch: Prefetch? = nil, skip: @escaping @Sendable (DeliveryKey, _ debtor: String) -> Bool = { _, _ in false }
    ) async throws -> [Due] {
        try await pool.read { db in
            var result: [Due] = []
            var debtors: Set<String> = []
            try Self.forEachDue(db, now: now, skip: { key, debtor in debtors.contains(debtor) || skip(key, debtor) }) { due in
                debtors.insert(due.reminder.debtor.id)
                var due = due
                if let prefetch, result.count < prefetch.deliveries {
                    due.prefetched = Prefetched(
                        contacts: try Self.contacts(db, debtorID: due.reminder.debtor.id, excludingReminder: due.key.reminderID, since: prefetch.contactsSince),
                        contactsSince: prefetch.contactsSince,
                        groupCandidates: try prefetch.groupLimit.map { try Self.groupCandidates(db, for: due, now: now, limit: $0) })
                }
                result.append(due)
                return result.count < limit
            }
            return result
        }
    }

    /// Every pending delivery due at `now`, in sending order, streamed to `body` (never all in memory).
    public func forEachDue(now: Date, _ body: @escaping @Sendable (Due) throws -> Void) async throws {
        try await pool.read { db in
            try Self.forEachDue(db, now: now, skip: { _, _ in false }) { due in
                try body(due)
                return true
            }
        }
    }

    /// Walks the due deliveries; `skip` is asked before a record is decoded, `body` returns whether to go on.
    ///
    /// The order is priority, then the debtor's risk band (riskiest first, `debtor_risk`), then age.
    /// It is walked one index range per (priority, band) present, each ending at `now`: rows not yet
    /// due are never read, however many wait, and finding the next pair is one index seek.
    static func forEachDue(_ db: Database, now: Date, skip: (DeliveryKey, String) -> Bool, _ body: (Due) throws -> Bool) throws {
        // Held channels are left out of the walk rather than skipped row by row: with a channel
        // paused, its whole backlog would be read at every look.
        guard let channels = try openChannelFilter(db, now: now) else { return }
        // Partial payments are rare: when the snapshot has none, no delivery is asked for its own.
        let anyPayment = try Self.anyPartialPayment(db)
        try forEachDueGroup(db) { priority, risk in
            // Columns read by position: this walk runs before every start of a delivery.
            var stopped = false
            try db.walkDirectRows(
                sql: """
                    SELECT d.reminder_id, d.channel, d.queue, d.attempts, d.first_attempt_at, d.expires_at, d.debtor_id, r.record
                    FROM delivery d JOIN reminder r ON r.id = d.reminder_id
                    WHERE d.status = 'pending' AND d.priority = ? AND d.risk = ? AND d.due_at <= ? \(channels.sql)
                    ORDER BY d.due_at, d.reminder_id
                    """, [.integer(priority), .integer(risk), .real(now.timeIntervalSince1970)] + channels.values
            ) { row in
                let reminderID = row.text(0) ?? ""
                let key = DeliveryKey(reminderID: reminderID, channel: try row.channel(1))
                if skip(key, row.text(6) ?? "") { return true }
                let due = Due(
                    key: key, reminder: try Reminder.stored(row.text(7) ?? "", id: reminderID), queue: row.text(2) ?? "", attempts: row.integer(3) ?? 0,
                    firstAttemptAt: row.real(4).map(Date.init(timeIntervalSince1970:)), expiresAt: row.real(5).map(Date.init(timeIntervalSince1970:)),
                    paid: anyPayment ? try payments(db, reminderID: reminderID) : [:])
                stopped = try !body(due)
                return !stopped
            }
            return !stopped
        }
    }

    /// The condition on `channel` that leaves out the channels held at `now` (empty when none is
    /// held, with its values); nil when every channel is held.
    static func openChannelFilter(_ db: Database, now: Date) throws -> (sql: String, values: [DirectValue])? {
        let open = Channel.open(
            held: try String.fetchAll(db, cachedSQL: "SELECT channel FROM hold WHERE until IS NULL OR until > ?", arguments: [now.timeIntervalSince1970]))
        if open.isEmpty { return nil }
        if open.count == Channel.allCases.count { return ("", []) }
        return ("AND channel IN (\(databaseQuestionMarks(count: open.count)))", open.map { .text($0.rawValue) })
    }

    /// Each (priority, band) pair among pending deliveries, in the due order (one index seek
    /// each), until `body` returns false.
    static func forEachDueGroup(_ db: Database, _ body: (_ priority: Int, _ risk: Int) throws -> Bool) throws {
        var group = try Row.fetchOne(
            db, cachedSQL: "SELECT priority, risk FROM delivery WHERE status = 'pending' ORDER BY priority DESC, risk DESC LIMIT 1")
        while let current = group {
            let (priority, risk): (Int, Int) = (current[0], current[1])
            guard try body(priority, risk) else { return }
            group = try nextDueGroup(db, after: (priority, risk))
        }
    }

    /// The (priority, band) pair that follows `after` in the due order among pending deliveries:
    /// two seeks (a row-value comparison would scan the rest of the priority).
    static func nextDueGroup(_ db: Database, after: (priority: Int, risk: Int)) throws -> Row? {
        if let lowerBand = try Row.fetchOne(
            db, cachedSQL: "SELECT priority, risk FROM delivery WHERE status = 'pending' AND priority = ? AND risk < ? ORDER BY risk DESC LIMIT 1",
            arguments: [after.priority, after.risk])
        {
            return lowerBand
        }
        return try Row.fetchOne(
            db, cachedSQL: "SELECT priority, risk FROM delivery WHERE status = 'pending' AND priority < ? ORDER BY priority DESC, risk DESC LIMIT 1",
            arguments: [after.priority])
    }

    /// The keys of every delivery due at `now`, in sending order (keys only: a dry run then reads
    /// each delivery in turn).
    public func dueKeys(now: Date) async throws -> [DeliveryKey] {
        try await pool.read { db in
            var keys: [DeliveryKey] = []
            try Self.forEachDue(
                db, now: now,
                skip: { key, _ in
                    keys.append(key)
                    return true
                }
            ) { _ in true }
            return keys
        }
    }

    /// One delivery, as the dispatcher would take it, if it is still pending.
    public func pendingDelivery(_ key: DeliveryKey) async throws -> Due? {
        try await pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    cachedSQL: """
                        SELECT d.queue, d.attempts, d.first_attempt_at, d.expires_at, r.record FROM delivery d JOIN reminder r ON r.id = d.reminder_id
                        WHERE d.reminder_id = ? AND d.channel = ? AND d.status = 'pending'
                        """, arguments: [key.reminderID, key.channel.rawValue])
            else { return nil }
            return Due(
                key: key, reminder: try Reminder.stored(row["record"], id: key.reminderID), queue: row["queue"], attempts: row["attempts"],
                firstAttemptAt: (row["first_attempt_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                expiresAt: (row["expires_at"] as Double?).map(Date.init(timeIntervalSince1970:)), paid: try Self.payments(db, reminderID: key.reminderID))
        }
    }

    public func sourceFile(reminderID: String) async throws -> String? {
        try await pool.read { db in try String.fetchOne(db, cachedSQL: "SELECT source_file FROM reminder WHERE id = ?", arguments: [reminderID]) }
    }

    /// The earliest instant a pending delivery becomes due, if any.
    public func nextDueDate(now: Date = Date()) async throws -> Date? {
        try await pool.read { db in
            // Held channels (relance pause) do not count: the dispatcher must not spin on them.
            // The earliest of each (priority, band) range of the due index, each one seek: a
            // MIN over every pending delivery read them all, once a second while idle.
            guard let channels = try Self.openChannelFilter(db, now: now) else { return nil }
            var earliest: Double?
            try Self.forEachDueGroup(db) { priority, risk in
                let first = try db.firstDirectRow(
                    sql: """
                        SELECT due_at FROM delivery WHERE status = 'pending' AND priority = ? AND risk = ? \(channels.sql) ORDER BY due_at LIMIT 1
                        """, [.integer(priority), .integer(risk)] + channels.values, { $0.real(0) }) ?? nil
                if let first, first < earliest ?? .infinity { earliest = first }
                return true
            }
            return earliest.map(Date.init(timeIntervalSince1970:))
        }
    }

    /// The waiting deliveries whose `expires_at` has passed. Asked once a second: it reads the
    /// partial index `delivery_expiry` (v15), not every waiting delivery (without statistics the
    /// planner took the due index for its `status`, hence `INDEXED BY`).
    static let overdueSQL = """
        SELECT reminder_id, channel, status FROM delivery INDEXED BY delivery_expiry
        WHERE expires_at IS NOT NULL AND status IN ('pending', 'paused') AND expires_at <= ?
        """

    /// Marks every waiting delivery whose `expires_at` has passed as `expired`. Returns how many.
    @discardableResult
    public func expireOverdue(now: Date) async throws -> Int {
        try await batcher.write { db in
            let keys = try Row.fetchAll(db, cachedSQL: Self.overdueSQL, arguments: [now.timeIntervalSince1970])
            for row in keys {
                let key = try row.deliveryKey()
                try Self.move(
                    db, key, from: try row.deliveryStatus(), to: .expired, reason: "expires_at passed before it could be sent",
                    at: now)
            }
            return keys.count
        }
    }
}
