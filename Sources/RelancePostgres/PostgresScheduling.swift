import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

extension PostgresLedger: SchedulingStore {
    /// Pending deliveries due at `now`, in `Ledger.due`'s order (priority, the debtor's risk band,
    /// age), one per debtor, skipping what `skip` names. With `prefetch`, each one comes with its
    /// debtor's contact history (checked again when claimed: `ContactFence`) and, when grouping,
    /// whether the debtor has other deliveries due on the channel (none: no group to look for).
    public func due(
        now: Date, limit: Int, prefetch: Ledger.Prefetch?, room: DueRoom, skip: @escaping @Sendable (DeliveryKey, _ debtor: String) -> Bool
    ) async throws -> [Ledger.Due] {
        guard limit > 0 else { return [] }
        let (node, leaseEnd, t) = (self.node, now.timeIntervalSince1970 + lease.seconds, now.timeIntervalSince1970)
        // The contact history from this instant (nothing before the end of time: none asked for).
        let contactsSince = prefetch?.contactsSince.timeIntervalSince1970 ?? .greatestFiniteMagnitude
        return try await translatingErrors {
            try await client.withConnection { connection in
                let anyPayment = try await Self.anyPartialPayment(connection, logger: logger)
                // Held channels are left out of the walk: their ranges are not read.
                let open = Set(try await Self.openChannels(connection, now: t, logger: logger))
                guard !open.isEmpty else { return [] }
                var result: [Ledger.Due] = []
                var debtors: Set<String> = []
                var left = DueRoom.Left(room)
                var group = try await Self.firstDueGroup(connection, logger: logger)
                while let (priority, risk) = group, result.count < limit {
                    // Each (queue, channel) range of the (priority, band) up to the room its queue and
                    // its channel have left, then merged by age.
                    var candidates: [(dueAt: Double, due: Ledger.Due)] = []
                    for (queue, channel) in try await Self.dueRanges(connection, priority: priority, risk: risk, logger: logger) where open.contains(channel) {
                        let wanted = min(left.wanted(queue: queue, channel: channel), limit - result.count)
                        guard wanted > 0 else { continue }
                        var seen: Set<String> = []
                        var taken = 0
                        // A first page just over what is wanted (rows are records of a kilobyte or
                        // so); more pages only when many are skipped. What this node is given is
                        // reserved for it, so that the nodes do not all decide, render and then race
                        // to claim the same deliveries.
                        var pageSize = min(Self.duePage, wanted + 32)
                        var after: (due: Double, id: String) = (-Double.greatestFiniteMagnitude, "")
                        pages: while true {
                            let page = try await Self.duePage(
                                connection, priority: priority, risk: risk, queue: queue, channel: channel, now: t, after: after, size: pageSize,
                                reservingFor: (node, leaseEnd), contactsSince: contactsSince, logger: logger)
                            for row in page {
                                after = (row.dueAt, row.key.reminderID)
                                if debtors.contains(row.debtor) || seen.contains(row.debtor) || skip(row.key, row.debtor) { continue }
                                seen.insert(row.debtor)
                                var due = Ledger.Due(
                                    key: row.key, reminder: try Reminder.stored(row.record, id: row.key.reminderID), queue: queue, attempts: row.attempts,
                                    firstAttemptAt: row.firstAttemptAt.map(Date.init(timeIntervalSince1970:)),
                                    expiresAt: row.expiresAt.map(Date.init(timeIntervalSince1970:)),
                                    paid: anyPayment ? try await Self.payments(connection, reminderID: row.key.reminderID, logger: logger) : [:])
                                if let prefetch {
                                    // Others due for the debtor on the channel: the run looks for its group itself.
                                    due.prefetched = Ledger.Prefetched(
                                        contacts: row.contacts.map(Date.init(timeIntervalSince1970:)), contactsSince: prefetch.contactsSince,
                                        groupCandidates: prefetch.groupLimit != nil && !row.othersDue ? [] : nil)
                                }
                                candidates.append((row.dueAt, due))
                                taken += 1
                                if taken == wanted { break pages }
                            }
                            if page.count < pageSize { break }
                            pageSize = min(pageSize * 4, Self.duePage)
                        }
                        left.took(taken, queue: queue, channel: channel)
                    }
                    Ledger.Due.merge(candidates, into: &result, debtors: &debtors, limit: limit)
                    group = try await Self.nextDueGroup(connection, after: (priority, risk), logger: logger)
                }
                if let prefetch, result.count > prefetch.deliveries {
                    // Only the first ones can start: the others look for their history themselves.
                    for index in result.indices.dropFirst(prefetch.deliveries) { result[index].prefetched = nil }
                }
                return result
            }
        }
    }

    public func dueKeys(now: Date) async throws -> [DeliveryKey] {
        let t = now.timeIntervalSince1970
        return try await translatingErrors {
            try await client.withConnection { connection in
                let open = try await Self.openChannels(connection, now: t, logger: logger).map(\.rawValue)
                guard !open.isEmpty else { return [] }
                // A preview lists every key: one sorted read (the dispatcher's walk is by ranges).
                var keys: [DeliveryKey] = []
                for try await (id, channel) in try await connection.query(
                    """
                    SELECT reminder_id, channel FROM delivery WHERE status = 'pending' AND due_at <= \(t) AND channel = ANY(\(open))
                    ORDER BY priority DESC, risk DESC, due_at, reminder_id, channel
                    """, logger: logger
                ).decode((String, String).self) {
                    guard let channel = Channel(rawValue: channel) else { throw LedgerCorruption(description: "delivery \(id) has an unknown channel '\(channel)'") }
                    keys.append(DeliveryKey(reminderID: id, channel: channel))
                }
                return keys
            }
        }
    }

    /// Rows per page of the due walk, at most.
    static let duePage = 256

    /// A row of the due walk, before its record is decoded.
    struct DueRow {
        var key: DeliveryKey
        var attempts: Int
        var firstAttemptAt: Double?
        var expiresAt: Double?
        var debtor: String
        var dueAt: Double
        var record: String
        /// The debtor's contacts since the prefetch's instant.
        var contacts: [Double]
        /// Whether the debtor has other deliveries due on the channel.
        var othersDue: Bool
    }

    /// One page of a (queue, channel) range of the due index (keyset after `after`), reserved for this node
    /// (`locked_by`, and `lease_until` a lease ahead, the delivery still `pending`), skipping the
    /// rows another node reserved (until their reservation lapses) or is reserving now
    /// (`FOR UPDATE SKIP LOCKED`). A reservation only steers: the claim (`markGroup`) decides,
    /// whoever reserved.
    static func duePage(
        _ connection: PostgresConnection, priority: Int, risk: Int, queue: String, channel: RelanceCore.Channel, now t: Double,
        after: (due: Double, id: String), size: Int, reservingFor: (node: String, leaseEnd: Double), contactsSince: Double, logger: Logger
    ) async throws -> [DueRow] {
        let (lastDue, lastID, node, leaseEnd, channelName) = (after.due, after.id, reservingFor.node, reservingFor.leaseEnd, channel.rawValue)
        let rows = try await connection.query(
            """
            WITH picked AS (
              SELECT d.reminder_id, d.channel FROM delivery d
              WHERE d.status = 'pending' AND d.priority = \(priority) AND d.risk = \(risk) AND d.queue = \(queue) AND d.channel = \(channelName)
                AND d.due_at <= \(t) AND (d.due_at, d.reminder_id) > (\(lastDue), \(lastID))
                AND (d.locked_by IS NULL OR d.locked_by = \(node) OR d.lease_until <= \(t))
              ORDER BY d.due_at, d.reminder_id
              LIMIT \(size)
              FOR UPDATE OF d SKIP LOCKED
            ), reserved AS (
              UPDATE delivery d SET locked_by = \(node), lease_until = \(leaseEnd) FROM picked p
              WHERE d.reminder_id = p.reminder_id AND d.channel = p.channel
              RETURNING d.reminder_id, d.channel, d.attempts, d.first_attempt_at, d.expires_at, d.debtor_id, d.due_at
            )
            SELECT d.reminder_id, d.channel, d.attempts, d.first_attempt_at, d.expires_at, d.debtor_id, d.due_at, r.record,
              ARRAY(SELECT MIN(a.started_at) FROM reminder o,
                      LATERAL (SELECT a.started_at, a.group_id, a.reminder_id FROM attempt a
                               WHERE a.reminder_id = o.id AND a.outcome IN ('sending', 'sent', 'unknown') OFFSET 0) a
                    WHERE o.debtor_id = d.debtor_id AND o.id <> d.reminder_id
                    GROUP BY COALESCE(a.group_id, a.reminder_id) HAVING MIN(a.started_at) >= \(contactsSince)),
              EXISTS (SELECT 1 FROM delivery o WHERE o.debtor_id = d.debtor_id AND o.channel = d.channel AND o.status = 'pending'
                        AND o.due_at <= \(t) AND o.reminder_id <> d.reminder_id)
            FROM reserved d JOIN reminder r ON r.id = d.reminder_id
            ORDER BY d.due_at, d.reminder_id, d.channel
            """, logger: logger)
        var page: [DueRow] = []
        for try await row in rows.decode((String, String, Int, Double?, Double?, String, Double, String, [Double], Bool).self) {
            guard let channel = Channel(rawValue: row.1) else {
                throw LedgerCorruption(description: "delivery \(row.0) has an unknown channel '\(row.1)'")
            }
            page.append(
                DueRow(
                    key: DeliveryKey(reminderID: row.0, channel: channel), attempts: row.2, firstAttemptAt: row.3, expiresAt: row.4, debtor: row.5,
                    dueAt: row.6, record: row.7, contacts: row.8, othersDue: row.9))
        }
        return page
    }

    /// The (queue, channel) ranges with pending deliveries in a (priority, band), in order: one
    /// index seek each (a row-value comparison would scan).
    static func dueRanges(_ connection: PostgresConnection, priority: Int, risk: Int, logger: Logger) async throws -> [(String, RelanceCore.Channel)] {
        var ranges: [(String, RelanceCore.Channel)] = []
        func first(_ query: PostgresQuery) async throws -> (String, RelanceCore.Channel)? {
            for try await (queue, channel) in try await connection.query(query, logger: logger).decode((String, String).self) {
                guard let channel = RelanceCore.Channel(rawValue: channel) else {
                    throw LedgerCorruption(description: "a delivery of queue \(queue) has an unknown channel '\(channel)'")
                }
                return (queue, channel)
            }
            return nil
        }
        var next = try await first(
            "SELECT queue, channel FROM delivery WHERE status = 'pending' AND priority = \(priority) AND risk = \(risk) ORDER BY queue, channel LIMIT 1")
        while let (queue, channel) = next {
            ranges.append((queue, channel))
            let name = channel.rawValue
            next = try await first(
                """
                SELECT queue, channel FROM delivery WHERE status = 'pending' AND priority = \(priority) AND risk = \(risk) AND queue = \(queue)
                  AND channel > \(name) ORDER BY queue, channel LIMIT 1
                """)
            if next == nil {
                next = try await first(
                    """
                    SELECT queue, channel FROM delivery WHERE status = 'pending' AND priority = \(priority) AND risk = \(risk) AND queue > \(queue)
                    ORDER BY queue, channel LIMIT 1
                    """)
            }
        }
        return ranges
    }

    /// The channels no hold in force at `now` stops.
    static func openChannels(_ connection: PostgresConnection, now t: Double, logger: Logger) async throws -> [RelanceCore.Channel] {
        var held: [String] = []
        for try await channel in try await connection.query("SELECT channel FROM hold WHERE until IS NULL OR until > \(t)", logger: logger).decode(String.self) {
            held.append(channel)
        }
        return RelanceCore.Channel.open(held: held)
    }

    static func firstDueGroup(_ connection: PostgresConnection, logger: Logger) async throws -> (Int, Int)? {
        for try await group in try await connection.query(
            "SELECT priority, risk FROM delivery WHERE status = 'pending' ORDER BY priority DESC, risk DESC LIMIT 1", logger: logger
        ).decode((Int, Int).self) {
            return group
        }
        return nil
    }

    /// The (priority, band) pair after `after` among pending deliveries: two index seeks.
    static func nextDueGroup(_ connection: PostgresConnection, after: (priority: Int, risk: Int), logger: Logger) async throws -> (Int, Int)? {
        let (priority, risk) = after
        for try await group in try await connection.query(
            "SELECT priority, risk FROM delivery WHERE status = 'pending' AND priority = \(priority) AND risk < \(risk) ORDER BY risk DESC LIMIT 1",
            logger: logger
        ).decode((Int, Int).self) {
            return group
        }
        for try await group in try await connection.query(
            "SELECT priority, risk FROM delivery WHERE status = 'pending' AND priority < \(priority) ORDER BY priority DESC, risk DESC LIMIT 1",
            logger: logger
        ).decode((Int, Int).self) {
            return group
        }
        return nil
    }

    public func pendingDelivery(_ key: DeliveryKey) async throws -> Ledger.Due? {
        try await translatingErrors {
            try await client.withConnection { connection in
                let (id, channel) = (key.reminderID, key.channel.rawValue)
                for try await (queue, attempts, first, expires, record) in try await connection.query(
                    """
                    SELECT d.queue, d.attempts, d.first_attempt_at, d.expires_at, r.record FROM delivery d JOIN reminder r ON r.id = d.reminder_id
                    WHERE d.reminder_id = \(id) AND d.channel = \(channel) AND d.status = 'pending'
                    """, logger: logger
                ).decode((String, Int, Double?, Double?, String).self) {
                    return Ledger.Due(
                        key: key, reminder: try Reminder.stored(record, id: id), queue: queue, attempts: attempts,
                        firstAttemptAt: first.map(Date.init(timeIntervalSince1970:)), expiresAt: expires.map(Date.init(timeIntervalSince1970:)),
                        paid: try await Self.payments(connection, reminderID: id, logger: logger))
                }
                return nil
            }
        }
    }

    public func nextDueDate(now: Date) async throws -> Date? {
        let t = now.timeIntervalSince1970
        return try await translatingErrors {
            // Held channels (relance pause) do not count: the dispatcher must not spin on them.
            try await client.withConnection { connection in
                let open = try await Self.openChannels(connection, now: t, logger: logger).map(\.rawValue)
                guard !open.isEmpty else { return nil }
                // The earliest of each (priority, band, queue, channel) range of the due index, each one
                // seek: a MIN over every pending delivery read them all, once a second while idle.
                var earliest: Double?
                var group = try await Self.firstDueGroup(connection, logger: logger)
                while let (priority, risk) = group {
                    for (queue, channel) in try await Self.dueRanges(connection, priority: priority, risk: risk, logger: logger) where open.contains(channel.rawValue) {
                        let name = channel.rawValue
                        for try await first in try await connection.query(
                            """
                            SELECT due_at FROM delivery
                            WHERE status = 'pending' AND priority = \(priority) AND risk = \(risk) AND queue = \(queue) AND channel = \(name)
                            ORDER BY priority DESC, risk DESC, queue, channel, due_at LIMIT 1
                            """, logger: logger
                        ).decode(Double.self) where first < earliest ?? .infinity {
                            earliest = first
                        }
                    }
                    group = try await Self.nextDueGroup(connection, after: (priority, risk), logger: logger)
                }
                return earliest.map(Date.init(timeIntervalSince1970:))
            }
        }
    }

    @discardableResult
    public func expireOverdue(now: Date) async throws -> Int {
        // Once a second from the dispatcher's housekeeping: also when the planner's statistics are looked at.
        await refreshStatistics(now: now)
        let t = now.timeIntervalSince1970
        return try await transaction { connection in
            var overdue: [(DeliveryKey, DeliveryStatus)] = []
            for try await (id, channel, status) in try await connection.query(
                """
                SELECT reminder_id, channel, status FROM delivery
                WHERE expires_at IS NOT NULL AND status IN ('pending', 'paused') AND expires_at <= \(t) FOR UPDATE
                """, logger: logger
            ).decode((String, String, String).self) {
                guard let channel = Channel(rawValue: channel), let status = DeliveryStatus(rawValue: status) else {
                    throw LedgerCorruption(description: "delivery \(id) has an unknown channel or status")
                }
                overdue.append((DeliveryKey(reminderID: id, channel: channel), status))
            }
            for (key, status) in overdue {
                try await Self.move(connection, key, from: status, to: .expired, reason: "expires_at passed before it could be sent", at: now, logger: logger)
            }
            return overdue.count
        }
    }

    /// A delivery's status move and its event; a move the status machine forbids, or from a status
    /// the delivery is no longer in, is an error (a bug or a race), never applied.
    static func move(
        _ connection: PostgresConnection, _ key: DeliveryKey, from: DeliveryStatus, to: DeliveryStatus, reason: String, at now: Date, logger: Logger
    ) async throws {
        guard from.canMove(to: to) else { throw StatusTransitionError(from: from, to: to) }
        let (id, channel, fromStatus, toStatus, t) = (key.reminderID, key.channel.rawValue, from.rawValue, to.rawValue, now.timeIntervalSince1970)
        var moved = 0
        for try await _ in try await connection.query(
            """
            UPDATE delivery SET status = \(toStatus), updated_at = \(t), poll_at = NULL
            WHERE reminder_id = \(id) AND channel = \(channel) AND status = \(fromStatus) RETURNING 1
            """, logger: logger)
        {
            moved += 1
        }
        guard moved == 1 else { throw StatusTransitionError(from: from, to: to) }
        try await insertEvent(connection, key, from: from, to: to, reason: reason, at: now, logger: logger)
    }

    static func anyPartialPayment(_ connection: PostgresConnection, logger: Logger) async throws -> Bool {
        for try await (any) in try await connection.query(
            "SELECT EXISTS (SELECT 1 FROM cancellation WHERE scope = 'invoice' AND amount_paid IS NOT NULL AND lifted_at IS NULL)", logger: logger
        ).decode(Bool.self) {
            return any
        }
        return false
    }

    /// Partial payments recorded on a reminder's invoices: invoice number → total paid.
    static func payments(_ connection: PostgresConnection, reminderID: String, logger: Logger) async throws -> [String: String] {
        var paid: [String: String] = [:]
        for try await (invoice, amount) in try await connection.query(
            """
            SELECT value, amount_paid FROM cancellation
            WHERE scope = 'invoice' AND amount_paid IS NOT NULL AND lifted_at IS NULL
              AND value IN (SELECT invoice FROM reminder_invoice WHERE reminder_id = \(reminderID))
            ORDER BY id
            """, logger: logger
        ).decode((String, String).self) {
            paid[invoice] = amount
        }
        return paid
    }
}
