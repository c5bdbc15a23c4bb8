import Foundation
import GRDB
import RelanceCore

/// The ledger: reminders, deliveries (the queue), attempts (receipts) and status events, in SQLite.
///
/// Writes that sit on the send path (marking `sending`, recording outcomes) go through a group
/// commit: concurrent callers share one transaction and one fsync. SQLite calls run on GRDB's own
/// dispatch queues, never on the cooperative thread pool.
public final class Ledger: Sendable {
    public let path: String
    let pool: DatabasePool
    let batcher: GroupCommit

    /// Opens (creating if needed) the ledger at `path` and migrates it.
    public init(path: String, readOnly: Bool = false) throws {
        self.path = path
        var config = Configuration()
        config.readonly = readOnly
        config.busyMode = .timeout(10)
        config.label = "relance.ledger"
        config.prepareDatabase { db in
            // Durable commits: a `sending` mark lost to a power cut could mean a resend.
            if !db.configuration.readonly { try db.run(sql: "PRAGMA synchronous = FULL") }
            // Erased personal data (retention, forget) is overwritten where that costs no extra I/O.
            try db.run(sql: "PRAGMA secure_delete = FAST")
        }
        if !readOnly {
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        }
        self.pool = try DatabasePool(path: path, configuration: config)
        self.batcher = GroupCommit(pool: pool)
        if !readOnly { try Self.migrator.migrate(pool) }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE reminder (
                        id TEXT PRIMARY KEY NOT NULL,
                        record TEXT NOT NULL,
                        source_file TEXT NOT NULL,
                        queue TEXT NOT NULL,
                        ingested_at DOUBLE NOT NULL
                    );
                    CREATE TABLE delivery (
                        reminder_id TEXT NOT NULL REFERENCES reminder(id),
                        channel TEXT NOT NULL,
                        status TEXT NOT NULL,
                        queue TEXT NOT NULL,
                        priority INTEGER NOT NULL,
                        due_at DOUBLE NOT NULL,
                        expires_at DOUBLE,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        first_attempt_at DOUBLE,
                        provider_id TEXT,
                        last_code INTEGER,
                        last_error TEXT,
                        updated_at DOUBLE NOT NULL,
                        PRIMARY KEY (reminder_id, channel)
                    ) WITHOUT ROWID;
                    CREATE INDEX delivery_due ON delivery(status, priority DESC, due_at);
                    CREATE TABLE attempt (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        reminder_id TEXT NOT NULL,
                        channel TEXT NOT NULL,
                        number INTEGER NOT NULL,
                        transport TEXT NOT NULL,
                        recipient TEXT NOT NULL,
                        started_at DOUBLE NOT NULL,
                        finished_at DOUBLE,
                        outcome TEXT NOT NULL,
                        code INTEGER,
                        detail TEXT,
                        provider_id TEXT,
                        FOREIGN KEY (reminder_id, channel) REFERENCES delivery(reminder_id, channel)
                    );
                    CREATE INDEX attempt_delivery ON attempt(reminder_id, channel);
                    CREATE INDEX attempt_started ON attempt(started_at);
                    CREATE TABLE event (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        reminder_id TEXT NOT NULL,
                        channel TEXT NOT NULL,
                        at DOUBLE NOT NULL,
                        from_status TEXT,
                        to_status TEXT NOT NULL,
                        reason TEXT NOT NULL
                    );
                    CREATE INDEX event_delivery ON event(reminder_id, channel);
                    """)
        }
        m.registerMigration("v2-callbacks") { db in
            try db.execute(
                sql: """
                    CREATE TABLE provider_message (
                        provider TEXT NOT NULL,
                        message_id TEXT NOT NULL,
                        reminder_id TEXT NOT NULL,
                        channel TEXT NOT NULL,
                        part INTEGER NOT NULL,
                        parts INTEGER NOT NULL,
                        status TEXT,
                        PRIMARY KEY (provider, message_id)
                    ) WITHOUT ROWID;
                    CREATE INDEX provider_message_delivery ON provider_message(reminder_id, channel);
                    CREATE TABLE callback (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        provider TEXT NOT NULL,
                        message_id TEXT NOT NULL,
                        reminder_id TEXT,
                        channel TEXT,
                        received_at DOUBLE NOT NULL,
                        status TEXT NOT NULL,
                        raw TEXT NOT NULL,
                        result TEXT NOT NULL
                    );
                    CREATE INDEX callback_message ON callback(provider, message_id);
                    CREATE INDEX callback_delivery ON callback(reminder_id, channel);
                    CREATE TABLE suppression (
                        address TEXT PRIMARY KEY NOT NULL,
                        reason TEXT NOT NULL,
                        source TEXT NOT NULL,
                        created_at DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE webhook_seen (
                        id TEXT PRIMARY KEY NOT NULL,
                        seen_at DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE health (id INTEGER PRIMARY KEY, checked_at DOUBLE NOT NULL);
                    """)
        }
        m.registerMigration("v3-purge-indexes") { db in
            // The orphan TTL and replay-window purges run on every callback: keep them off full scans.
            try db.execute(
                sql: """
                    CREATE INDEX callback_result_received ON callback(result, received_at);
                    CREATE INDEX webhook_seen_at ON webhook_seen(seen_at);
                    """)
        }
        m.registerMigration("v4-debtors") { db in
            // Who each reminder is for and which invoices it is about: fairness across debtors,
            // frequency caps, and cancellation by debtor or invoice, all without decoding records.
            try db.execute(
                sql: """
                    ALTER TABLE reminder ADD COLUMN debtor_id TEXT NOT NULL DEFAULT '';
                    UPDATE reminder SET debtor_id = json_extract(record, '$.debtor.id');
                    CREATE INDEX reminder_debtor ON reminder(debtor_id);
                    CREATE INDEX reminder_source ON reminder(source_file);
                    ALTER TABLE delivery ADD COLUMN debtor_id TEXT NOT NULL DEFAULT '';
                    UPDATE delivery SET debtor_id = (SELECT debtor_id FROM reminder WHERE reminder.id = delivery.reminder_id);
                    CREATE INDEX delivery_debtor ON delivery(debtor_id, status);
                    CREATE TABLE reminder_invoice (
                        invoice TEXT NOT NULL,
                        reminder_id TEXT NOT NULL REFERENCES reminder(id),
                        PRIMARY KEY (invoice, reminder_id)
                    ) WITHOUT ROWID;
                    INSERT OR IGNORE INTO reminder_invoice (invoice, reminder_id)
                        SELECT json_extract(j.value, '$.number'), r.id FROM reminder r, json_each(r.record, '$.invoices') j;
                    """)
        }
        registerPolicyMigrations(&m)
        registerRetentionMigrations(&m)
        m.registerMigration("v7-grouping") { db in
            // Several reminders sent as one message: each attempt names the group's lead reminder.
            try db.execute(
                sql: """
                    ALTER TABLE attempt ADD COLUMN group_id TEXT;
                    ALTER TABLE delivery ADD COLUMN group_lead TEXT;
                    CREATE INDEX delivery_group ON delivery(group_lead, channel);
                    """)
        }
        return m
    }

    // MARK: Intake

    /// What one ingest did.
    public struct IngestResult: Sendable, Equatable {
        public var inserted: [String] = []
        public var duplicates: [String] = []
        /// Ids already in the ledger with different content: never overwritten.
        public var conflicts: [String] = []
    }

    /// Inserts the reminders of one spool file in one transaction, idempotently on reminder id.
    public func ingest(
        _ reminders: [Reminder], sourceFile: String, queue: String, priority: Int, now: Date
    ) async throws -> IngestResult {
        try await pool.write { db in
            var result = IngestResult()
            for reminder in reminders {
                let record = reminder.canonicalJSON()
                if let existing = try String.fetchOne(db, cachedSQL: "SELECT record FROM reminder WHERE id = ?", arguments: [reminder.id]) {
                    // An erased reminder (retention) is one already handled: never sent again.
                    if existing == record || existing.contains("\"erased\":") {
                        result.duplicates.append(reminder.id)
                    } else {
                        result.conflicts.append(reminder.id)
                    }
                    continue
                }
                try db.run(
                    sql: "INSERT INTO reminder (id, record, source_file, queue, ingested_at, debtor_id) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [reminder.id, record, sourceFile, queue, now.timeIntervalSince1970, reminder.debtor.id])
                for invoice in Set(reminder.invoices.map(\.number)) {
                    try db.run(sql: "INSERT INTO reminder_invoice (invoice, reminder_id) VALUES (?, ?)", arguments: [invoice, reminder.id])
                }
                for channel in reminder.channels {
                    let due = max(reminder.notBefore ?? now, Date(timeIntervalSince1970: 0))
                    try db.run(
                        sql: """
                            INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, expires_at, updated_at, debtor_id)
                            VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [
                            reminder.id, channel.rawValue, queue, priority, due.timeIntervalSince1970,
                            reminder.expiresAt?.timeIntervalSince1970, now.timeIntervalSince1970, reminder.debtor.id,
                        ])
                    try Self.insertEvent(
                        db, DeliveryKey(reminderID: reminder.id, channel: channel), from: nil, to: .pending, reason: "ingested from \(sourceFile)", at: now)
                }
                result.inserted.append(reminder.id)
            }
            return result
        }
    }

    /// Whether the ledger already holds `reminder` (same content), a different one under its id, or nothing.
    public enum Presence: Sendable { case absent, same, conflict }

    public func presence(of reminder: Reminder) async throws -> Presence {
        try await pool.read { db in
            guard let existing = try String.fetchOne(db, cachedSQL: "SELECT record FROM reminder WHERE id = ?", arguments: [reminder.id]) else {
                return .absent
            }
            return existing == reminder.canonicalJSON() ? .same : .conflict
        }
    }

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
    }

    /// Pending deliveries due at `now`, highest priority first, then oldest first, skipping
    /// `excluding` and at most one per debtor, none for the debtors in `busyDebtors`: a debtor's
    /// deliveries go one at a time, so one debtor's big batch is interleaved with everyone else's
    /// instead of holding them back, while the oldest delivery is still the first one looked at.
    public func due(now: Date, limit: Int, excluding: Set<DeliveryKey> = [], busyDebtors: Set<String> = []) async throws -> [Due] {
        try await pool.read { db in
            var result: [Due] = []
            var debtors = busyDebtors
            try Self.forEachDue(db, now: now, skip: { key, debtor in excluding.contains(key) || debtors.contains(debtor) }) { due in
                debtors.insert(due.reminder.debtor.id)
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
    static func forEachDue(_ db: Database, now: Date, skip: (DeliveryKey, String) -> Bool, _ body: (Due) throws -> Bool) throws {
        let rows = try Row.fetchCursor(
            db,
            cachedSQL: """
                SELECT d.reminder_id, d.channel, d.queue, d.attempts, d.first_attempt_at, d.expires_at, d.debtor_id, r.record
                FROM delivery d JOIN reminder r ON r.id = d.reminder_id
                WHERE d.status = 'pending' AND d.due_at <= ?
                  AND NOT EXISTS (SELECT 1 FROM hold h WHERE h.channel IN ('*', d.channel) AND (h.until IS NULL OR h.until > ?))
                ORDER BY d.priority DESC, d.due_at, d.reminder_id
                """,
            arguments: [now.timeIntervalSince1970, now.timeIntervalSince1970])
        while let row = try rows.next() {
            let key = DeliveryKey(reminderID: row["reminder_id"], channel: Channel(rawValue: row["channel"]) ?? .email)
            if skip(key, row["debtor_id"]) { continue }
            let due = Due(
                key: key, reminder: try Reminder.fromCanonicalJSON(row["record"]), queue: row["queue"], attempts: row["attempts"],
                firstAttemptAt: (row["first_attempt_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                expiresAt: (row["expires_at"] as Double?).map(Date.init(timeIntervalSince1970:)), paid: try payments(db, reminderID: key.reminderID))
            if try !body(due) { return }
        }
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
                key: key, reminder: try Reminder.fromCanonicalJSON(row["record"]), queue: row["queue"], attempts: row["attempts"],
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
            try Double.fetchOne(
                db,
                cachedSQL: """
                    SELECT MIN(d.due_at) FROM delivery d WHERE d.status = 'pending'
                      AND NOT EXISTS (SELECT 1 FROM hold h WHERE h.channel IN ('*', d.channel) AND (h.until IS NULL OR h.until > ?))
                    """, arguments: [now.timeIntervalSince1970]
            ).map(Date.init(timeIntervalSince1970:))
        }
    }

    /// Marks every waiting delivery whose `expires_at` has passed as `expired`. Returns how many.
    @discardableResult
    public func expireOverdue(now: Date) async throws -> Int {
        try await batcher.write { db in
            let keys = try Row.fetchAll(
                db,
                cachedSQL:
                    "SELECT reminder_id, channel, status FROM delivery WHERE status IN ('pending','paused') AND expires_at IS NOT NULL AND expires_at <= ?",
                arguments: [now.timeIntervalSince1970])
            for row in keys {
                let key = DeliveryKey(reminderID: row["reminder_id"], channel: Channel(rawValue: row["channel"]) ?? .email)
                try Self.move(
                    db, key, from: DeliveryStatus(rawValue: row["status"]) ?? .pending, to: .expired, reason: "expires_at passed before it could be sent",
                    at: now)
            }
            return keys.count
        }
    }

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
    }

    /// Durably records the intent to send: `pending → sending` and a new attempt row. The same
    /// transaction checks the kill switches, the cancellations and pauses in force and the
    /// suppression list, so one committed before this mark is never missed.
    /// Several deliveries merged into one message (grouping) are marked in one transaction; each
    /// gets its own attempt, tied to the others by the lead's reminder id. Returns each one's mark.
    /// `dailyCap`: at most `limit` messages on this channel since `since` (`policy.max_per_day`),
    /// counted in the same transaction, so concurrent sends cannot overshoot it.
    public func markGroup(
        _ keys: [DeliveryKey], transport: String, recipient: String, now: Date, dailyCap: (limit: Int, since: Date)? = nil
    ) async throws -> [Mark] {
        try await batcher.write { db in
            if let dailyCap, let channel = keys.first?.channel, try Self.messageCount(db, channel: channel, since: dailyCap.since) >= dailyCap.limit {
                return keys.map { _ in .overDailyVolume }
            }
            let group = keys.count > 1 ? keys.first?.reminderID : nil
            return try keys.map { try Self.mark(db, $0, transport: transport, recipient: recipient, group: group, now: now) }
        }
    }

    static func mark(_ db: Database, _ key: DeliveryKey, transport: String, recipient: String, group: String?, now: Date) throws -> Mark {
        guard
            let row = try Row.fetchOne(
                db, cachedSQL: "SELECT status, attempts FROM delivery WHERE reminder_id = ? AND channel = ?", arguments: [key.reminderID, key.channel.rawValue]),
            row["status"] == DeliveryStatus.pending.rawValue
        else { return .notPending }
        if try Self.isHeld(db, channel: key.channel, now: now) { return .held }
        if let cancellation = try Self.cancellationInForce(db, reminderID: key.reminderID, now: now) {
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
            try Self.suppress(db, key, recipient: recipient, at: now)
            return .suppressed
        }
        let number: Int = row["attempts"] + 1
        try db.run(
            sql: """
                UPDATE delivery SET status = 'sending', attempts = ?, first_attempt_at = COALESCE(first_attempt_at, ?), updated_at = ?, group_lead = ?
                WHERE reminder_id = ? AND channel = ?
                """,
            arguments: [number, now.timeIntervalSince1970, now.timeIntervalSince1970, group, key.reminderID, key.channel.rawValue])
        try db.run(
            sql: """
                INSERT INTO attempt (reminder_id, channel, number, transport, recipient, started_at, outcome, group_id)
                VALUES (?, ?, ?, ?, ?, ?, 'sending', ?)
                """,
            arguments: [key.reminderID, key.channel.rawValue, number, transport, recipient, now.timeIntervalSince1970, group])
        let grouped = group.map { $0 == key.reminderID ? " (one message for several reminders)" : " (in one message with \($0))" } ?? ""
        try Self.insertEvent(db, key, from: .pending, to: .sending, reason: "attempt \(number) via \(transport)\(grouped)", at: now)
        return .attempt(number)
    }

    /// One delivery's `markGroup`, reduced to the attempt number (nil when not marked).
    public func markSending(_ key: DeliveryKey, transport: String, recipient: String, now: Date) async throws -> Int? {
        if case .attempt(let n) = try await markGroup([key], transport: transport, recipient: recipient, now: now).first { return n }
        return nil
    }

    /// Records the outcome of an attempt. A transient failure goes back to `pending` at `retryAt`,
    /// or to `expired` when `retryAt` is nil (lifetime over).
    /// `via` names the transport that was used when a failover chose another than the one recorded at `sending`.
    public func recordOutcome(_ key: DeliveryKey, attempt: Int, outcome: SendOutcome, retryAt: Date?, now: Date, via: String? = nil) async throws {
        try await batcher.write { db in
            if let via {
                try db.run(
                    sql: "UPDATE attempt SET transport = ? WHERE reminder_id = ? AND channel = ? AND number = ?",
                    arguments: [via, key.reminderID, key.channel.rawValue, attempt])
            }
            let t = now.timeIntervalSince1970
            let (attemptOutcome, status, providerID): (String, DeliveryStatus, String?)
            switch outcome {
            case .sent(let id, _, _): (attemptOutcome, status, providerID) = ("sent", .sent, id)
            case .transient: (attemptOutcome, status, providerID) = ("transient", .pending, nil)
            case .permanent: (attemptOutcome, status, providerID) = ("permanent", .failed, nil)
            }
            try db.run(
                sql:
                    "UPDATE attempt SET finished_at = ?, outcome = ?, code = ?, detail = ?, provider_id = ? WHERE reminder_id = ? AND channel = ? AND number = ?",
                arguments: [t, attemptOutcome, outcome.code, outcome.detail, providerID, key.reminderID, key.channel.rawValue, attempt])
            try db.run(
                sql:
                    "UPDATE delivery SET provider_id = COALESCE(?, provider_id), last_code = ?, last_error = ?, due_at = COALESCE(?, due_at) WHERE reminder_id = ? AND channel = ?",
                arguments: [
                    providerID, outcome.code, status == .sent ? nil : outcome.detail, retryAt?.timeIntervalSince1970, key.reminderID,
                    key.channel.rawValue,
                ])
            var reason = outcome.detail
            if case .transient = outcome {
                reason =
                    retryAt.map { "transient failure, retry at \(Timestamp.format($0)): \(outcome.detail)" }
                    ?? "transient failures past the retry lifetime: \(outcome.detail)"
            }
            try Self.move(db, key, from: .sending, to: status, reason: reason, at: now)
            if case .sent(let id?, _, _) = outcome,
                let transport = try String.fetchOne(
                    db, cachedSQL: "SELECT transport FROM attempt WHERE reminder_id = ? AND channel = ? AND number = ?",
                    arguments: [key.reminderID, key.channel.rawValue, attempt])
            {
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
                let key = DeliveryKey(reminderID: row["reminder_id"], channel: Channel(rawValue: row["channel"]) ?? .email)
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

    /// How an operator settles an in-doubt delivery.
    public enum Resolution: String, Sendable, CaseIterable {
        /// The message did go out (checked at the relay or gateway): `unknown → sent`.
        case sent
        /// It did not: send it again now, `unknown → pending`.
        case resend
    }

    /// Settles an `unknown` delivery, audited as an event naming the operator.
    public func resolve(_ key: DeliveryKey, as resolution: Resolution, operator name: String, now: Date) async throws {
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
            try Self.move(
                db, key, from: .unknown, to: resolution == .sent ? .sent : .pending,
                reason: "resolved by \(name) as \(resolution.rawValue) (relance resolve)", at: now)
        }
    }

    public struct ResolveError: Error, CustomStringConvertible {
        public var description: String
    }

    /// When a channel fails for good (or the recipient opted out), the reminder's `fallback`
    /// channels that it does not use yet get a delivery, due now, with the reason recorded.
    static func fallBack(_ db: Database, from key: DeliveryKey, reason: String, at now: Date) throws {
        guard let row = try Row.fetchOne(db, cachedSQL: "SELECT record, queue FROM reminder WHERE id = ?", arguments: [key.reminderID]),
            let reminder = try? Reminder.fromCanonicalJSON(row["record"])
        else { return }
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
                    INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, expires_at, updated_at, debtor_id)
                    VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    key.reminderID, channel.rawValue, row["queue"] as String, priority, due, reminder.expiresAt?.timeIntervalSince1970,
                    now.timeIntervalSince1970, reminder.debtor.id,
                ])
            try insertEvent(
                db, DeliveryKey(reminderID: key.reminderID, channel: channel), from: nil, to: .pending,
                reason: "fallback from \(key.channel.rawValue): \(reason)", at: now)
        }
    }

    // MARK: Status machine

    static func move(_ db: Database, _ key: DeliveryKey, from: DeliveryStatus, to: DeliveryStatus, reason: String, at now: Date) throws {
        guard from.canMove(to: to) else { throw StatusTransitionError(from: from, to: to) }
        try db.run(
            sql: "UPDATE delivery SET status = ?, updated_at = ? WHERE reminder_id = ? AND channel = ? AND status = ?",
            arguments: [to.rawValue, now.timeIntervalSince1970, key.reminderID, key.channel.rawValue, from.rawValue])
        guard db.changesCount == 1 else { throw StatusTransitionError(from: from, to: to) }
        try insertEvent(db, key, from: from, to: to, reason: reason, at: now)
    }

    static func insertEvent(_ db: Database, _ key: DeliveryKey, from: DeliveryStatus?, to: DeliveryStatus, reason: String, at now: Date) throws {
        try db.run(
            sql: "INSERT INTO event (reminder_id, channel, at, from_status, to_status, reason) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [key.reminderID, key.channel.rawValue, now.timeIntervalSince1970, from?.rawValue, to.rawValue, reason])
    }
}
