import Foundation
import GRDB
import RelanceCore

/// A gateway's report on a message it accepted, mapped onto the ledger's statuses.
public struct StatusCallback: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// Still on its way (queued, sent, accepted, buffered): recorded, no status change.
        case inFlight = "in_flight"
        case delivered, undelivered, bounced
    }

    /// `twilio`, `vonage`, `brevo`, `generic`: the transport that sent it.
    public var provider: String
    public var messageID: String
    public var status: Status
    /// The provider's own words, for audit (no secrets).
    public var raw: [String: String]

    public init(provider: String, messageID: String, status: Status, raw: [String: String]) {
        self.provider = provider
        self.messageID = messageID
        self.status = status
        self.raw = raw
    }
}

/// What applying a callback did.
public enum CallbackResult: String, Sendable {
    /// The delivery moved (sent → delivered/undelivered/bounced).
    case applied
    /// Kept as an event; the status stays (in flight, a later part pending, or no regress after a final status).
    case recorded
    /// The same report was already applied.
    case duplicate
    /// No send with this id is known (yet): kept, and applied if the send commits within the TTL.
    case orphan
    /// The gateway sent this webhook id before and it was applied then: nothing done again.
    case replay
}

/// A callback as kept in the ledger.
public struct CallbackRecord: Sendable, Codable, Hashable {
    public var provider: String
    public var messageID: String
    public var receivedAt: Date
    public var status: String
    public var raw: String
    public var result: String

    public init(provider: String, messageID: String, receivedAt: Date, status: String, raw: String, result: String) {
        self.provider = provider
        self.messageID = messageID
        self.receivedAt = receivedAt
        self.status = status
        self.raw = raw
        self.result = result
    }
}

extension Ledger {
    /// Records every part id of an accepted send (Vonage gives one per segment, comma-separated),
    /// then applies any callback that arrived before this commit.
    static func registerProviderMessages(_ db: Database, _ key: DeliveryKey, provider: String, ids: String, at now: Date) throws {
        let parts = ids.split(separator: ",").map(String.init).filter { !$0.isEmpty }
        for (i, id) in parts.enumerated() {
            try db.runDirect(
                sql: """
                    INSERT OR IGNORE INTO provider_message (provider, message_id, reminder_id, channel, part, parts)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """, [.text(provider), .text(id), .text(key.reminderID), .text(key.channel.rawValue), .integer(i), .integer(parts.count)])
        }
        // Callbacks that came before the send was recorded, oldest first (one cached query per part:
        // a statement prepared for each send cost more than the insert).
        var orphans: [(id: Int, messageID: String, status: String?)] = []
        for id in parts {
            try db.forEachDirectRow(sql: orphansSQL, [.text(provider), .text(id)]) { row in orphans.append((row.integer(0) ?? 0, row.text(1) ?? "", row.text(2))) }
        }
        orphans.sort { $0.id < $1.id }
        for orphan in orphans {
            guard let status = orphan.status.flatMap(StatusCallback.Status.init(rawValue:)) else {
                throw LedgerCorruption(description: "unknown callback status '\(orphan.status ?? "NULL")' in the ledger")
            }
            let result = try applyKnown(db, provider: provider, messageID: orphan.messageID, status: status, at: now, late: true)
            try db.runDirect(
                sql: "UPDATE callback SET result = ?, reminder_id = ?, channel = ? WHERE id = ?",
                [.text("late-" + result.rawValue), .text(key.reminderID), .text(key.channel.rawValue), .integer(orphan.id)])
        }
    }

    /// Applies a status callback: forward-only, duplicates are no-ops, every callback is kept.
    /// `replayID` (a webhook id the gateway repeats when it retries) is recorded in the same
    /// transaction: a callback whose apply failed is not taken for a replay when it comes again.
    public func apply(
        _ callback: StatusCallback, replayID: String?, now: Date, orphanTTL: Duration, replayWindow: Duration
    ) async throws -> CallbackResult {
        let raw = Self.encodeRaw(callback.raw)
        let purge = purgeDue(now: now)
        return try await batcher.write { db in
            if purge {
                // Expired replay ids and orphans, at most once a second (not for every callback).
                try db.run(sql: "DELETE FROM webhook_seen WHERE seen_at < ?", arguments: [now.timeIntervalSince1970 - replayWindow.seconds])
                try db.run(sql: Self.orphanPurgeSQL, arguments: [now.timeIntervalSince1970 - orphanTTL.seconds])
            }
            if let replayID {
                // New, or seen longer ago than the window (not purged yet): not a replay.
                try db.runDirect(
                    sql: "INSERT INTO webhook_seen (id, seen_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at WHERE seen_at < ?",
                    [.text(replayID), .real(now.timeIntervalSince1970), .real(now.timeIntervalSince1970 - replayWindow.seconds)])
                if db.changesCount == 0 { return .replay }
            }
            let owner = try Self.owner(db, provider: callback.provider, messageID: callback.messageID, status: callback.status)
            let result: CallbackResult
            if let owner {
                result =
                    owner.duplicate
                    ? .duplicate
                    : try Self.applyKnown(
                        db, owner: owner, provider: callback.provider, messageID: callback.messageID, status: callback.status, at: now, late: false)
            } else {
                result = .orphan
            }
            try db.runDirect(
                sql: """
                    INSERT INTO callback (provider, message_id, reminder_id, channel, received_at, status, raw, result)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                [
                    .text(callback.provider), .text(callback.messageID), .text(owner?.key.reminderID), .text(owner?.key.channel.rawValue), .real(now.timeIntervalSince1970),
                    .text(callback.status.rawValue), .text(raw), .text(result.rawValue),
                ])
            return result
        }
    }

    /// Whether the purges of expired replay ids and orphans are due: once a second of `now`
    /// (which may run backwards in tests: any jump of a second or more purges).
    func purgeDue(now: Date) -> Bool {
        purgedAt.withLock { last in
            guard abs(now.timeIntervalSince1970 - last) >= 1 else { return false }
            last = now.timeIntervalSince1970
            return true
        }
    }

    /// Updates the part and, when the parts agree, the delivery (only up its rank).
    static func applyKnown(_ db: Database, provider: String, messageID: String, status: StatusCallback.Status, at now: Date, late: Bool) throws
        -> CallbackResult
    {
        guard let owner = try owner(db, provider: provider, messageID: messageID, status: status) else { return .recorded }
        return try applyKnown(db, owner: owner, provider: provider, messageID: messageID, status: status, at: now, late: late)
    }

    /// The callbacks kept while no send with this id was known (one part of a message).
    static let orphansSQL = "SELECT id, message_id, status FROM callback WHERE provider = ? AND result = 'orphan' AND message_id = ?"

    /// Orphans older than their TTL (bound: the oldest `received_at` kept).
    static let orphanPurgeSQL = "DELETE FROM callback WHERE result = 'orphan' AND received_at < ?"

    /// A part, its delivery, and whether this status was applied to it before. The earlier
    /// callbacks are found through their delivery (`callback_delivery`, a few rows): an index on
    /// the provider's message id, a random key, cost a page written in each commit for every
    /// callback, and only orphans are looked up by it (see `orphansSQL`).
    static let ownerSQL = """
        SELECT pm.reminder_id, pm.channel, pm.status, pm.parts, d.status AS delivery_status, d.group_lead,
          EXISTS (
            SELECT 1 FROM callback c
            WHERE c.reminder_id = pm.reminder_id AND c.channel = pm.channel AND c.provider = pm.provider AND c.message_id = pm.message_id
              AND c.status = ? AND c.result != 'orphan'
          ) AS duplicate
        FROM provider_message pm LEFT JOIN delivery d ON d.reminder_id = pm.reminder_id AND d.channel = pm.channel
        WHERE pm.provider = ? AND pm.message_id = ?
        """

    /// What applying a callback needs, in one query: the part's row of `provider_message`
    /// (reminder_id, channel, status, parts), its delivery's status and group lead, and whether a
    /// callback with this status was already applied to it (`duplicate`).
    static func owner(_ db: Database, provider: String, messageID: String, status: StatusCallback.Status) throws -> CallbackPart? {
        try db.firstDirectRow(sql: ownerSQL, [.text(status.rawValue), .text(provider), .text(messageID)]) { row in
            CallbackPart(
                key: DeliveryKey(reminderID: row.text(0) ?? "", channel: try row.channel(1)), partStatus: row.text(2), parts: row.integer(3) ?? 0,
                deliveryStatus: row.text(4).flatMap(DeliveryStatus.init(rawValue:)), groupLead: row.text(5), duplicate: row.integer(6) == 1)
        }
    }

    /// `owner`: a row of `owner(_:provider:messageID:status:)`.
    static func applyKnown(_ db: Database, owner: CallbackPart, provider: String, messageID: String, status: StatusCallback.Status, at now: Date, late: Bool) throws
        -> CallbackResult
    {
        guard status != .inFlight else { return .recorded }
        let key = owner.key
        // A part's own status only moves forward too: a late `delivered` after `undelivered` is kept as an event.
        if owner.partStatus == nil {
            try db.runDirect(
                sql: "UPDATE provider_message SET status = ? WHERE provider = ? AND message_id = ?", [.text(status.rawValue), .text(provider), .text(messageID)])
        }
        // A message in one part is settled by this part's status; several are read together.
        let parts =
            owner.parts == 1
            ? [owner.partStatus ?? status.rawValue]
            : try String?.fetchAll(
                db, cachedSQL: "SELECT status FROM provider_message WHERE reminder_id = ? AND channel = ?", arguments: [key.reminderID, key.channel.rawValue])
        guard let combined = Settlement.combined(parts: parts) else { return .recorded }  // some parts still unknown
        guard let current = owner.deliveryStatus else { return .recorded }
        guard current == .sent else {
            try insertEvent(
                db, key, from: current, to: current, reason: "\(provider) reported \(combined.rawValue) after \(current.rawValue): kept as an event, no change",
                at: now)
            return .recorded
        }
        try move(
            db, key, from: .sent, to: combined,
            reason: "\(provider) reported \(combined.rawValue)\(late ? " (callback received before the send was committed)" : "")", at: now)
        // The other reminders sent in the same message share its fate.
        guard owner.groupLead == key.reminderID else { return .applied }
        for member in try String.fetchAll(
            db, cachedSQL: "SELECT reminder_id FROM delivery WHERE group_lead = ? AND channel = ? AND reminder_id != ? AND status = 'sent'",
            arguments: [key.reminderID, key.channel.rawValue, key.reminderID])
        {
            try move(
                db, DeliveryKey(reminderID: member, channel: key.channel), from: .sent, to: combined,
                reason: "\(provider) reported \(combined.rawValue) for the message shared with \(key.reminderID)", at: now)
        }
        return .applied
    }

    static func encodeRaw(_ raw: [String: String]) -> String { JSONText.object(raw) }

    /// The callbacks kept for one reminder (or all orphans with `reminderID == nil`), oldest first.
    public func callbacks(reminderID: String?) async throws -> [CallbackRecord] {
        try await pool.read { db in
            let rows =
                if let reminderID {
                    try Row.fetchAll(db, cachedSQL: "SELECT * FROM callback WHERE reminder_id = ? ORDER BY id", arguments: [reminderID])
                } else {
                    try Row.fetchAll(db, cachedSQL: "SELECT * FROM callback WHERE reminder_id IS NULL ORDER BY id")
                }
            return rows.map {
                CallbackRecord(
                    provider: $0["provider"], messageID: $0["message_id"], receivedAt: Date(timeIntervalSince1970: $0["received_at"]), status: $0["status"],
                    raw: $0["raw"], result: $0["result"])
            }
        }
    }

    // MARK: Suppression

    /// Adds an address or E.164 number to the suppression list (opt-out). Idempotent.
    public func suppress(_ address: String, reason: String, source: String, now: Date) async throws {
        try await batcher.write { db in
            try db.run(
                sql: "INSERT OR IGNORE INTO suppression (address, reason, source, created_at) VALUES (?, ?, ?, ?)",
                arguments: [address.lowercased(), reason, source, now.timeIntervalSince1970])
        }
    }

    /// One entry of the suppression list.
    public struct Suppression: Sendable, Hashable {
        public var address: String
        public var reason: String
        /// Who put it there: `cli:USER`, a provider (`twilio`, `brevo`…).
        public var source: String
        public var since: Date

        public init(address: String, reason: String, source: String, since: Date) {
            self.address = address
            self.reason = reason
            self.source = source
            self.since = since
        }
    }

    /// The suppression list, oldest first, one entry at a time (`relance suppress --list`).
    public func forEachSuppression(_ body: @escaping @Sendable (Suppression) throws -> Void) async throws {
        try await pool.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT address, reason, source, created_at FROM suppression ORDER BY created_at, address")
            while let row = try rows.next() {
                try body(Suppression(address: row["address"], reason: row["reason"], source: row["source"], since: Date(timeIntervalSince1970: row["created_at"])))
            }
        }
    }

    static func isSuppressed(_ db: Database, _ address: String) throws -> Bool {
        try db.firstDirectRow(sql: "SELECT EXISTS (SELECT 1 FROM suppression WHERE address = ?)", [.text(address.lowercased())], { $0.integer(0) == 1 }) ?? false
    }

    public func isSuppressed(_ address: String) async throws -> Bool {
        try await pool.read { db in
            try Self.isSuppressed(db, address)
        }
    }

    /// A waiting delivery whose recipient opted out: `pending → suppressed`, never sent, and its
    /// fallback channels take over. Runs inside the transaction that would mark it `sending`.
    static func suppress(_ db: Database, _ key: DeliveryKey, recipient: String, at now: Date) throws {
        try db.run(
            sql: "UPDATE delivery SET last_error = ? WHERE reminder_id = ? AND channel = ?",
            arguments: ["\(recipient) opted out", key.reminderID, key.channel.rawValue])
        try move(db, key, from: .pending, to: .suppressed, reason: "\(recipient) is on the suppression list (opt-out)", at: now)
        try fallBack(db, from: key, reason: "\(recipient) opted out", at: now)
    }

    /// Nil when a write transaction reaches the disk, else why not (for `/healthz`).
    public func writeProblem(now: Date) async -> String? {
        do {
            try await pool.write { db in
                try db.run(sql: "INSERT OR REPLACE INTO health (id, checked_at) VALUES (1, ?)", arguments: [now.timeIntervalSince1970])
            }
            return nil
        } catch {
            return "the ledger is not writable: \(error)"
        }
    }
}
