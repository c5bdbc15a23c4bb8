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
    /// `room`: how many more of each queue may start (its share of the concurrency, less what it
    /// has in flight), and how many on each channel (its rate limit, its provider's pause); a queue
    /// or channel without room is not read at all, so that its backlog, however old, does not hide
    /// the others' work.
    public func due(
        now: Date, limit: Int, prefetch: Prefetch?, room: DueRoom, skip: @escaping @Sendable (DeliveryKey, _ debtor: String) -> Bool
    ) async throws -> [Due] {
        try await pool.read { db in
            var result = try Self.dueSelection(db, now: now, limit: limit, room: room, skip: skip)
            if let prefetch {
                for index in result.indices.prefix(prefetch.deliveries) {
                    let due = result[index]
                    result[index].prefetched = Prefetched(
                        contacts: try Self.contacts(db, debtorID: due.reminder.debtor.id, excludingReminder: due.key.reminderID, since: prefetch.contactsSince),
                        contactsSince: prefetch.contactsSince,
                        groupCandidates: try prefetch.groupLimit.map { try Self.groupCandidates(db, for: due, now: now, limit: $0) })
                }
            }
            return result
        }
    }

    /// The due order's first `limit` deliveries (see `due`). The due index is ordered by
    /// (status, priority, band, queue, channel, due_at): each (priority, band) is read one
    /// (queue, channel) range at a time, each range's oldest rows up to the room its queue and its
    /// channel have left (rows not yet due are never read), then merged by age. What a range read
    /// beyond what the merge keeps is at most `limit` rows.
    static func dueSelection(_ db: Database, now: Date, limit: Int, room: DueRoom, skip: (DeliveryKey, String) -> Bool) throws -> [Due] {
        guard limit > 0 else { return [] }
        let held = try heldChannels(db, now: now)
        // Partial payments are rare: when the snapshot has none, no delivery is asked for its own.
        let anyPayment = try Self.anyPartialPayment(db)
        var result: [Due] = []
        var debtors: Set<String> = []
        var left = DueRoom.Left(room)
        try forEachDueGroup(db) { priority, risk in
            var candidates: [(dueAt: Double, due: Due)] = []
            try forEachDueRange(db, priority: priority, risk: risk, skipping: held) { queue, channel in
                let wanted = min(left.wanted(queue: queue, channel: channel), limit - result.count)
                guard wanted > 0 else { return }
                var taken = 0
                var seen: Set<String> = []
                // Columns read by position: this walk runs before every start of a delivery.
                try db.walkDirectRows(
                    sql: dueRangeSQL, [.integer(priority), .integer(risk), .text(queue), .text(channel.rawValue), .real(now.timeIntervalSince1970)]
                ) { row in
                    let reminderID = row.text(0) ?? ""
                    let key = DeliveryKey(reminderID: reminderID, channel: channel)
                    let debtor = row.text(4) ?? ""
                    if debtors.contains(debtor) || seen.contains(debtor) || skip(key, debtor) { return true }
                    seen.insert(debtor)
                    let due = Due(
                        key: key, reminder: try Reminder.stored(row.text(6) ?? "", id: reminderID), queue: queue, attempts: row.integer(1) ?? 0,
                        firstAttemptAt: row.real(2).map(Date.init(timeIntervalSince1970:)), expiresAt: row.real(3).map(Date.init(timeIntervalSince1970:)),
                        paid: anyPayment ? try payments(db, reminderID: reminderID) : [:])
                    candidates.append((row.real(5) ?? 0, due))
                    taken += 1
                    return taken < wanted
                }
                left.took(taken, queue: queue, channel: channel)
            }
            Due.merge(candidates, into: &result, debtors: &debtors, limit: limit)
            return result.count < limit
        }
        return result
    }

    /// One (queue, channel) range of one (priority, band) of the due index, up to `now`, oldest first.
    static let dueRangeSQL = """
        SELECT d.reminder_id, d.attempts, d.first_attempt_at, d.expires_at, d.debtor_id, d.due_at, r.record
        FROM delivery d JOIN reminder r ON r.id = d.reminder_id
        WHERE d.status = 'pending' AND d.priority = ? AND d.risk = ? AND d.queue = ? AND d.channel = ? AND d.due_at <= ?
        ORDER BY d.due_at, d.reminder_id
        """

    /// The keys of every delivery due at `now`, in sending order (keys only: a dry run then reads
    /// each delivery in turn).
    public func dueKeys(now: Date) async throws -> [DeliveryKey] {
        try await pool.read { db in
            let held = try Self.heldChannels(db, now: now)
            var keys: [DeliveryKey] = []
            try Self.forEachDueGroup(db) { priority, risk in
                var group: [(dueAt: Double, key: DeliveryKey)] = []
                try Self.forEachDueRange(db, priority: priority, risk: risk, skipping: held) { queue, channel in
                    try db.forEachDirectRow(
                        sql: """
                            SELECT reminder_id, due_at FROM delivery
                            WHERE status = 'pending' AND priority = ? AND risk = ? AND queue = ? AND channel = ? AND due_at <= ?
                            """, [.integer(priority), .integer(risk), .text(queue), .text(channel.rawValue), .real(now.timeIntervalSince1970)]
                    ) { row in
                        group.append((row.real(1) ?? 0, DeliveryKey(reminderID: row.text(0) ?? "", channel: channel)))
                    }
                }
                group.sort { a, b in (a.dueAt, a.key.reminderID, a.key.channel.rawValue) < (b.dueAt, b.key.reminderID, b.key.channel.rawValue) }
                keys += group.map(\.key)
                return true
            }
            return keys
        }
    }

    /// The channels a kill switch holds at `now`.
    static func heldChannels(_ db: Database, now: Date) throws -> Set<Channel> {
        let open = Channel.open(
            held: try String.fetchAll(db, cachedSQL: "SELECT channel FROM hold WHERE until IS NULL OR until > ?", arguments: [now.timeIntervalSince1970]))
        return Set(Channel.allCases).subtracting(open)
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

    /// Each (queue, channel) range with pending deliveries in a (priority, band), in order, but
    /// those of the `held` channels (a kill switch's backlog is not read): one index seek each (a
    /// row-value comparison would scan).
    static func forEachDueRange(
        _ db: Database, priority: Int, risk: Int, skipping held: Set<Channel>, _ body: (String, Channel) throws -> Void
    ) throws {
        func range(_ row: Row?) throws -> (String, Channel)? {
            guard let row else { return nil }
            return (row[0], try row.channel())
        }
        var current = try range(Row.fetchOne(db, cachedSQL: firstDueRangeSQL, arguments: [priority, risk]))
        while let (queue, channel) = current {
            if !held.contains(channel) { try body(queue, channel) }
            current =
                try range(Row.fetchOne(db, cachedSQL: nextChannelOfQueueSQL, arguments: [priority, risk, queue, channel.rawValue]))
                ?? range(Row.fetchOne(db, cachedSQL: nextDueQueueSQL, arguments: [priority, risk, queue]))
        }
    }

    static let firstDueRangeSQL =
        "SELECT queue, channel FROM delivery WHERE status = 'pending' AND priority = ? AND risk = ? ORDER BY queue, channel LIMIT 1"
    static let nextChannelOfQueueSQL =
        "SELECT queue, channel FROM delivery WHERE status = 'pending' AND priority = ? AND risk = ? AND queue = ? AND channel > ? ORDER BY channel LIMIT 1"
    static let nextDueQueueSQL =
        "SELECT queue, channel FROM delivery WHERE status = 'pending' AND priority = ? AND risk = ? AND queue > ? ORDER BY queue, channel LIMIT 1"

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
            // The earliest of each (priority, band, queue, channel) range of the due index, each
            // one seek: a MIN over every pending delivery read them all, once a second while idle.
            let held = try Self.heldChannels(db, now: now)
            var earliest: Double?
            try Self.forEachDueGroup(db) { priority, risk in
                try Self.forEachDueRange(db, priority: priority, risk: risk, skipping: held) { queue, channel in
                    let first = try db.firstDirectRow(
                        sql: """
                            SELECT due_at FROM delivery WHERE status = 'pending' AND priority = ? AND risk = ? AND queue = ? AND channel = ?
                            ORDER BY due_at LIMIT 1
                            """, [.integer(priority), .integer(risk), .text(queue), .text(channel.rawValue)], { $0.real(0) }) ?? nil
                    if let first, first < earliest ?? .infinity { earliest = first }
                }
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
