import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

/// The send path on PostgreSQL, as `Ledger`'s (Sending.swift), with the leases several nodes need:
/// a claim (`pending → sending`) records the node (`locked_by`) and when its claim lapses
/// (`lease_until`); an outcome settles the delivery only if this node still holds that attempt
/// (`locked_by = me AND attempts = n`): a node that lost its claim (frozen, cut off) keeps its late
/// outcome as an event and overwrites nothing.
extension PostgresLedger: SendingStore {
    public func markGroup(
        _ keys: [DeliveryKey], transport: String, recipient: String, now: Date, dailyCap: (limit: Int, since: Date)?, contacts: Ledger.ContactFence?
    ) async throws -> [Ledger.Mark] {
        if keys.count == 1, dailyCap == nil, let key = keys.first, let mark = try await claimInOneCall(key, transport: transport, recipient: recipient, now: now, contacts: contacts) {
            return [mark]
        }
        return try await transaction { connection in
            if let dailyCap, let channel = keys.first?.channel {
                // Concurrent claims on one channel count one after the other: the cap holds across nodes.
                let lockKey = Int64(0x7265_6C63_6170) + Int64(RelanceCore.Channel.allCases.firstIndex(of: channel) ?? 0)
                try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
                if try await Self.messageCount(connection, channel: channel, since: dailyCap.since, logger: logger) >= dailyCap.limit {
                    return keys.map { _ in .overDailyVolume }
                }
            }
            // One message at a time per debtor across nodes (each node's dispatcher keeps it for
            // its own claims): claims for one debtor are taken one after the other, and none while
            // another node is sending to it. The delivery stays pending for a later pass.
            var fenceChecked = contacts == nil
            if let first = keys.first {
                let (id, channel, seed) = (first.reminderID, first.channel.rawValue, Self.debtorLockSeed)
                var debtor: String?
                var lockBinds = PostgresBindings(capacity: 3)
                lockBinds.append(seed)
                lockBinds.append(id)
                lockBinds.append(channel)
                for try await row in try await connection.execute(SendPath.LockDebtor(bindings: lockBinds), logger: logger) {
                    debtor = try row.decode(String.self)
                }
                // A statement of its own, after the lock, so it sees what the previous holder
                // committed: whether another node is sending to the debtor, and its contact history
                // (the frequency caps), which must be what the policy decided on, or another node
                // reached the debtor since and the policy decides again.
                if let debtor, !debtor.isEmpty {
                    let fence = contacts?.debtorID == debtor ? contacts : nil
                    let binds = Self.contactsBinds(debtor: debtor, excluding: fence?.reminderID ?? "", since: fence?.since)
                    var (busy, current) = (false, [Double]())
                    for try await row in try await connection.execute(SendPath.BusyAndContacts(bindings: binds), logger: logger) {
                        (busy, current) = try row.decode((Bool, [Double]).self)
                    }
                    if busy { return keys.map { _ in .notPending } }
                    if let fence {
                        if fence.isStale(current.map(Date.init(timeIntervalSince1970:))) { return keys.map { _ in .contactedMeanwhile } }
                        fenceChecked = true
                    }
                }
            }
            if !fenceChecked, let contacts {
                let current = try await Self.contacts(connection, debtorID: contacts.debtorID, excludingReminder: contacts.reminderID, since: contacts.since, logger: logger)
                if contacts.isStale(current) { return keys.map { _ in .contactedMeanwhile } }
            }
            let group = keys.count > 1 ? keys.first?.reminderID : nil
            var marks: [Ledger.Mark] = []
            for key in keys {
                marks.append(try await mark(connection, key, transport: transport, recipient: recipient, group: group, now: now))
            }
            return marks
        }
    }

    /// The common claim (one reminder in the message, no daily volume cap) in one round trip
    /// (`relance_claim`, with the same checks as below); nil when something stops it, for the
    /// full path to decide and record (`look_again`: nothing was written).
    func claimInOneCall(_ key: DeliveryKey, transport: String, recipient: String, now: Date, contacts: Ledger.ContactFence?) async throws -> Ledger.Mark? {
        var binds = PostgresBindings(capacity: 13)
        binds.append(key.reminderID)
        binds.append(key.channel.rawValue)
        binds.append(now.timeIntervalSince1970)
        binds.append(recipient.lowercased())
        binds.append(recipient)
        binds.append(transport)
        binds.append(node)
        binds.append(now.timeIntervalSince1970 + lease.seconds)
        binds.append(Self.debtorLockSeed)
        binds.append(contacts?.debtorID)
        binds.append(contacts?.reminderID)
        binds.append(contacts?.since.timeIntervalSince1970)
        binds.append(contacts.map { $0.seen.map(\.timeIntervalSince1970) })
        return try await translatingErrors {
            try await client.withConnection { connection in
                var mark: Ledger.Mark?
                for try await row in try await connection.execute(SendPath.ClaimOne(bindings: binds), logger: logger) {
                    let (verdict, attempt) = try row.decode((String, Int?).self)
                    switch verdict {
                    case "attempt": if let attempt { mark = .attempt(attempt) }
                    case "not_pending": mark = .notPending
                    case "contacted_meanwhile": mark = .contactedMeanwhile
                    default: mark = nil
                    }
                }
                return mark
            }
        }
    }

    /// Seed of the per-debtor advisory locks of claims.
    static let debtorLockSeed: Int64 = 0x7265_6C64_6562

    /// Claims one delivery in two statements: a look (its row locked until commit, so a concurrent
    /// claim by another node waits, then finds it no longer pending; the kill switches, the
    /// cancellation in force and the suppression list read with it), then the claim itself (the
    /// delivery, its attempt and its event in one statement).
    func mark(_ connection: PostgresConnection, _ key: DeliveryKey, transport: String, recipient: String, group: String?, now: Date) async throws
        -> Ledger.Mark
    {
        let (id, channel, t, address) = (key.reminderID, key.channel.rawValue, now.timeIntervalSince1970, recipient.lowercased())
        var look: (attempts: Int, held: Bool, suppressed: Bool, cancellation: (reason: String, until: Date?)?)?
        var lookBinds = PostgresBindings(capacity: 4)
        lookBinds.append(t)
        lookBinds.append(address)
        lookBinds.append(id)
        lookBinds.append(channel)
        for try await row in try await connection.execute(SendPath.Look(bindings: lookBinds), logger: logger) {
            let (status, attempts, held, suppressed, scope, value, reason, until, source) = try row.decode(
                (String, Int, Bool, Bool, String?, String?, String?, Double?, String?).self)
            guard status == DeliveryStatus.pending.rawValue else { continue }
            var cancellation: (reason: String, until: Date?)?
            if let scope, let value, let reason, let source {
                cancellation = Self.cancellation(scope: scope, value: value, reason: reason, until: until, source: source)
            }
            look = (attempts, held, suppressed, cancellation)
        }
        guard let look else { return .notPending }
        if look.held { return .held }
        if let cancellation = look.cancellation {
            if let until = cancellation.until {
                let end = until.timeIntervalSince1970
                try await connection.query("UPDATE delivery SET paused_until = \(end) WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
                try await Self.move(connection, key, from: .pending, to: .paused, reason: "paused: \(cancellation.reason)", at: now, logger: logger)
                return .paused(reason: cancellation.reason, until: until)
            }
            try await Self.move(connection, key, from: .pending, to: .cancelled, reason: "cancelled: \(cancellation.reason)", at: now, logger: logger)
            return .cancelled(reason: cancellation.reason)
        }
        if look.suppressed {
            try await Self.suppress(connection, key, recipient: recipient, at: now, logger: logger)
            return .suppressed
        }
        let (number, node, leaseEnd) = (look.attempts + 1, self.node, t + lease.seconds)
        let grouped = group.map { $0 == id ? " (one message for several reminders)" : " (in one message with \($0))" } ?? ""
        let reason = "attempt \(number) via \(transport)\(grouped)"
        var claimBinds = PostgresBindings(capacity: 10)
        claimBinds.append(number)
        claimBinds.append(t)
        claimBinds.append(group)
        claimBinds.append(node)
        claimBinds.append(leaseEnd)
        claimBinds.append(id)
        claimBinds.append(channel)
        claimBinds.append(transport)
        claimBinds.append(recipient)
        claimBinds.append(reason)
        try await SendPath.Claim(bindings: claimBinds).run(on: connection, logger: logger)
        return .attempt(number)
    }

    public func recordOutcome(_ key: DeliveryKey, attempt: Int, outcome: SendOutcome, retryAt: Date?, now: Date, via: String?) async throws {
        let settlement = Settlement(outcome, retryAt: retryAt)
        let (attemptOutcome, status, providerID) = (settlement.attemptOutcome, settlement.status, settlement.providerID)
        guard DeliveryStatus.sending.canMove(to: status) else { throw StatusTransitionError(from: .sending, to: status) }
        let (id, channel, t, code, detail, node) = (key.reminderID, key.channel.rawValue, now.timeIntervalSince1970, outcome.code, outcome.detail, self.node)
        let lateReason = "late outcome of attempt \(attempt) on node \(node) (its claim had lapsed): \(attemptOutcome): \(detail); not applied"
        if Self.settlesInOneStatement(outcome, retryAt: retryAt) {
            // Nothing follows (no provider ids to register, no fallback, no expiry): the attempt,
            // the delivery and its event in one statement, atomic without a transaction around it.
            let (newStatus, lastError, due) = (status.rawValue, status == .sent ? nil : detail, retryAt?.timeIntervalSince1970)
            let reason = settlement.reason
            var binds = PostgresBindings(capacity: 15)
            binds.append(via)
            binds.append(t)
            binds.append(attemptOutcome)
            binds.append(code)
            binds.append(detail)
            binds.append(providerID)
            binds.append(id)
            binds.append(channel)
            binds.append(attempt)
            binds.append(newStatus)
            binds.append(lastError)
            binds.append(due)
            binds.append(node)
            binds.append(reason)
            binds.append(lateReason)
            try await translatingErrors {
                try await client.withConnection { connection in try await SendPath.Settle(bindings: binds).run(on: connection, logger: logger) }
            }
            return
        }
        try await transaction { connection in
            // The attempt is what happened, whoever holds the delivery now.
            var transport: String?
            for try await (used) in try await connection.query(
                """
                UPDATE attempt SET transport = COALESCE(\(via), transport), finished_at = \(t), outcome = \(attemptOutcome), code = \(code),
                  detail = \(detail), provider_id = \(providerID)
                WHERE reminder_id = \(id) AND channel = \(channel) AND number = \(attempt) RETURNING transport
                """, logger: logger
            ).decode(String.self) {
                transport = used
            }
            // An SMS a gateway with a status API accepted is polled while no final status comes.
            let pollAt: Double? = settlement.polled(channel: key.channel, transport: transport) ? t : nil
            let (newStatus, lastError, due) = (status.rawValue, status == .sent ? nil : detail, retryAt?.timeIntervalSince1970)
            var settled = false
            for try await _ in try await connection.query(
                """
                UPDATE delivery SET status = \(newStatus), updated_at = \(t), provider_id = COALESCE(\(providerID), provider_id), last_code = \(code),
                  last_error = \(lastError), due_at = COALESCE(\(due), due_at), poll_at = \(pollAt), locked_by = NULL, lease_until = NULL
                WHERE reminder_id = \(id) AND channel = \(channel) AND status = 'sending' AND locked_by = \(node) AND attempts = \(attempt)
                RETURNING 1
                """, logger: logger)
            {
                settled = true
            }
            guard settled else {
                // This node no longer holds the attempt (its lease lapsed and the delivery was
                // rescued, or a newer attempt runs): the outcome is kept, the status is not touched.
                var current = "gone"
                for try await (now) in try await connection.query(
                    "SELECT status FROM delivery WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger
                ).decode(String.self) {
                    current = now
                }
                let state = DeliveryStatus(rawValue: current)
                if let state {
                    try await Self.insertEvent(
                        connection, key, from: state, to: state,
                        reason: lateReason,
                        at: now, logger: logger)
                }
                return
            }
            try await Self.insertEvent(connection, key, from: .sending, to: status, reason: settlement.reason, at: now, logger: logger)
            if case .sent(let ids?, _, _) = outcome, let transport {
                try await registerProviderMessages(connection, key, provider: transport, ids: ids, at: now)
            }
            if case .transient = outcome, retryAt == nil {
                try await Self.move(connection, key, from: .pending, to: .expired, reason: "retry lifetime (delivery.retry.lifetime) exceeded", at: now, logger: logger)
            }
            if case .permanent = outcome { try await Self.fallBack(connection, from: key, reason: detail, at: now, logger: logger) }
        }
    }

    /// Whether an outcome is settled by the attempt, the delivery and an event alone: accepted
    /// without a provider id to register (SMTP), a retry with its time, or in doubt.
    static func settlesInOneStatement(_ outcome: SendOutcome, retryAt: Date?) -> Bool {
        switch outcome {
        case .sent(let id, _, _): return id == nil
        case .transient: return retryAt != nil
        case .inDoubt: return true
        case .permanent: return false
        }
    }

    public func fail(_ key: DeliveryKey, recipient: String, reason: String, now: Date) async throws {
        let (id, channel, t) = (key.reminderID, key.channel.rawValue, now.timeIntervalSince1970)
        try await transaction { connection in
            var attempts = 0
            for try await (count) in try await connection.query(
                "SELECT attempts FROM delivery WHERE reminder_id = \(id) AND channel = \(channel) FOR UPDATE", logger: logger
            ).decode(Int.self) {
                attempts = count
            }
            let number = attempts + 1
            try await connection.query("UPDATE delivery SET last_error = \(reason) WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
            try await connection.query(
                """
                INSERT INTO attempt (reminder_id, channel, number, transport, recipient, started_at, finished_at, outcome, detail)
                VALUES (\(id), \(channel), \(number), '-', \(recipient), \(t), \(t), 'not_sent', \(reason))
                """, logger: logger)
            try await Self.move(connection, key, from: .pending, to: .failed, reason: reason, at: now, logger: logger)
            try await Self.fallBack(connection, from: key, reason: reason, at: now, logger: logger)
        }
    }

    /// What is in doubt: this node's own claims from before (a restart with the same `node_id`),
    /// and every claim whose lease has lapsed, whichever node made it (a node killed, frozen or cut
    /// off). `resend: false` makes them `unknown`; `resend: true` puts them back to `pending`.
    public func recoverInDoubt(resend: Bool, now: Date) async throws -> [DeliveryKey] {
        try await recover(resend: resend, now: now, ownClaims: true)
    }

    /// Only the claims whose lease lapsed, whichever node made them (this one's running claims stay).
    public func rescueLapsedClaims(resend: Bool, now: Date) async throws -> [DeliveryKey] {
        try await recover(resend: resend, now: now, ownClaims: false)
    }

    public var claimRenewalInterval: Duration? { lease / 3 }

    public func renewClaims(_ keys: [DeliveryKey], now: Date) async throws {
        guard !keys.isEmpty else { return }
        let (node, until, channel, ids) = (self.node, now.timeIntervalSince1970 + lease.seconds, keys[0].channel.rawValue, keys.map(\.reminderID))
        _ = try await translatingErrors {
            try await client.query(
                """
                UPDATE delivery SET lease_until = \(until)
                WHERE reminder_id = ANY(\(ids)) AND channel = \(channel) AND status = 'sending' AND locked_by = \(node)
                """, logger: logger)
        }
    }

    func recover(resend: Bool, now: Date, ownClaims: Bool) async throws -> [DeliveryKey] {
        let (t, node, own) = (now.timeIntervalSince1970, self.node, ownClaims)
        return try await transaction { connection in
            var keys: [(DeliveryKey, String?)] = []
            for try await (id, channel, owner) in try await connection.query(
                """
                SELECT reminder_id, channel, locked_by FROM delivery
                WHERE status = 'sending' AND ((\(own) AND locked_by = \(node)) OR locked_by IS NULL OR lease_until <= \(t))
                ORDER BY reminder_id, channel FOR UPDATE SKIP LOCKED
                """, logger: logger
            ).decode((String, String, String?).self) {
                keys.append((try Self.key(id, channel), owner))
            }
            for (key, owner) in keys {
                let (id, channel) = (key.reminderID, key.channel.rawValue)
                let who = owner.map { $0 == node ? "this node stopped" : "node \($0) lost its claim" } ?? "a node stopped"
                try await connection.query(
                    """
                    UPDATE attempt SET outcome = 'unknown', detail = \("in doubt: \(who) during the transport call")
                    WHERE reminder_id = \(id) AND channel = \(channel) AND outcome = 'sending'
                    """, logger: logger)
                try await connection.query(
                    "UPDATE delivery SET locked_by = NULL, lease_until = NULL WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
                if resend {
                    try await connection.query("UPDATE delivery SET due_at = \(t) WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
                    try await Self.move(
                        connection, key, from: .sending, to: .pending, reason: "in doubt (\(who)); resent per delivery.in_doubt: resend", at: now, logger: logger)
                } else {
                    try await Self.move(
                        connection, key, from: .sending, to: .unknown,
                        reason: "in doubt (\(who)): the transport call may or may not have happened; settle with relance resolve", at: now, logger: logger)
                }
            }
            return keys.map(\.0)
        }
    }

    /// A waiting delivery whose recipient opted out: `pending → suppressed`, never sent, and its
    /// fallback channels take over.
    static func suppress(_ connection: PostgresConnection, _ key: DeliveryKey, recipient: String, at now: Date, logger: Logger) async throws {
        let (id, channel, why) = (key.reminderID, key.channel.rawValue, "\(recipient) opted out")
        try await connection.query("UPDATE delivery SET last_error = \(why) WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
        try await move(connection, key, from: .pending, to: .suppressed, reason: "\(recipient) is on the suppression list (opt-out)", at: now, logger: logger)
        try await fallBack(connection, from: key, reason: why, at: now, logger: logger)
    }

    /// When a channel fails for good (or the recipient opted out), the reminder's `fallback`
    /// channels that it does not use yet get a delivery, due as early as the failed one.
    static func fallBack(_ connection: PostgresConnection, from key: DeliveryKey, reason: String, at now: Date, logger: Logger) async throws {
        let (id, channel) = (key.reminderID, key.channel.rawValue)
        var stored: (String, String)?
        for try await (record, queue, erasedAt) in try await connection.query(
            "SELECT record, queue, erased_at FROM reminder WHERE id = \(id)", logger: logger
        ).decode((String, String, Double?).self) where erasedAt == nil {
            stored = (record, queue)
        }
        // An erased reminder (retention) keeps no address to fall back to.
        guard let (record, queue) = stored else { return }
        let reminder = try Reminder.stored(record, id: id)
        var failed: (Int, Double)?
        for try await row in try await connection.query(
            "SELECT priority, due_at FROM delivery WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger
        ).decode((Int, Double).self) {
            failed = row
        }
        guard let (priority, failedDue) = failed else { return }
        let (due, t, expires, debtor) = (min(failedDue, now.timeIntervalSince1970), now.timeIntervalSince1970, reminder.expiresAt?.timeIntervalSince1970, reminder.debtor.id)
        for other in reminder.fallback where other != key.channel {
            if reminder.debtor.address(on: other) == nil { continue }
            let name = other.rawValue
            var inserted = false
            for try await _ in try await connection.query(
                """
                INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, expires_at, updated_at, debtor_id, risk)
                VALUES (\(id), \(name), 'pending', \(queue), \(priority), \(due), \(expires), \(t), \(debtor),
                        COALESCE((SELECT band FROM debtor_risk WHERE debtor_id = \(debtor)), \(Ledger.unscoredBand)))
                ON CONFLICT (reminder_id, channel) DO NOTHING RETURNING 1
                """, logger: logger)
            {
                inserted = true
            }
            if inserted {
                try await insertEvent(
                    connection, DeliveryKey(reminderID: id, channel: other), from: nil, to: .pending, reason: "fallback from \(channel): \(reason)", at: now,
                    logger: logger)
            }
        }
    }
}
