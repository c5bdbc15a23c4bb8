import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

/// Status callbacks and opt-outs on PostgreSQL, as `Ledger`'s (Callbacks.swift): forward-only,
/// multi-part, duplicates and replays no-ops, every callback kept, orphans applied when their
/// send commits. A callback may reach any node: the part's row is locked while it is applied.
extension PostgresLedger: CallbackStore {
    public func apply(_ callback: StatusCallback, replayID: String?, now: Date, orphanTTL: Duration, replayWindow: Duration) async throws -> CallbackResult {
        let raw = JSONText.object(callback.raw)
        let purge = purgedAt.withLock { last in
            guard abs(now.timeIntervalSince1970 - last) >= 1 else { return false }
            last = now.timeIntervalSince1970
            return true
        }
        let (t, provider, messageID, status) = (now.timeIntervalSince1970, callback.provider, callback.messageID, callback.status.rawValue)
        return try await transaction { connection in
            if purge {
                let (seenBefore, orphanBefore) = (t - replayWindow.seconds, t - orphanTTL.seconds)
                try await connection.query("DELETE FROM webhook_seen WHERE seen_at < \(seenBefore)", logger: logger)
                try await connection.query("DELETE FROM callback WHERE result = 'orphan' AND received_at < \(orphanBefore)", logger: logger)
            }
            if let replayID {
                // New, or seen longer ago than the window (not purged yet): not a replay.
                let windowStart = t - replayWindow.seconds
                var fresh = false
                for try await _ in try await connection.query(
                    """
                    INSERT INTO webhook_seen (id, seen_at) VALUES (\(replayID), \(t))
                    ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at WHERE webhook_seen.seen_at < \(windowStart) RETURNING 1
                    """, logger: logger)
                {
                    fresh = true
                }
                if !fresh { return .replay }
            }
            let owner = try await Self.owner(connection, provider: provider, messageID: messageID, status: callback.status, logger: logger)
            let result: CallbackResult
            if let owner {
                result =
                    owner.duplicate
                    ? .duplicate
                    : try await Self.applyKnown(connection, owner: owner, provider: provider, messageID: messageID, status: callback.status, at: now, late: false, logger: logger)
            } else {
                result = .orphan
            }
            let (reminderID, channel, outcome) = (owner?.key.reminderID, owner?.key.channel.rawValue, result.rawValue)
            try await connection.query(
                """
                INSERT INTO callback (provider, message_id, reminder_id, channel, received_at, status, raw, result)
                VALUES (\(provider), \(messageID), \(reminderID), \(channel), \(t), \(status), \(raw), \(outcome))
                """, logger: logger)
            return result
        }
    }

    /// The part's row (locked), its delivery's status and group lead, and whether a callback
    /// with this status was already applied to it.
    static func owner(_ connection: PostgresConnection, provider: String, messageID: String, status: StatusCallback.Status, logger: Logger) async throws
        -> CallbackPart?
    {
        let wanted = status.rawValue
        for try await (id, channel, partStatus, parts, deliveryStatus, groupLead, duplicate) in try await connection.query(
            """
            SELECT pm.reminder_id, pm.channel, pm.status, pm.parts, d.status, d.group_lead,
              EXISTS (SELECT 1 FROM callback c WHERE c.provider = pm.provider AND c.message_id = pm.message_id AND c.status = \(wanted) AND c.result != 'orphan')
            FROM provider_message pm LEFT JOIN delivery d ON d.reminder_id = pm.reminder_id AND d.channel = pm.channel
            WHERE pm.provider = \(provider) AND pm.message_id = \(messageID)
            FOR UPDATE OF pm
            """, logger: logger
        ).decode((String, String, String?, Int, String?, String?, Bool).self) {
            return CallbackPart(
                key: try key(id, channel), partStatus: partStatus, parts: parts, deliveryStatus: deliveryStatus.flatMap(DeliveryStatus.init(rawValue:)),
                groupLead: groupLead, duplicate: duplicate)
        }
        return nil
    }

    /// Updates the part and, when the parts agree, the delivery (only up its rank).
    static func applyKnown(
        _ connection: PostgresConnection, owner: CallbackPart, provider: String, messageID: String, status: StatusCallback.Status, at now: Date, late: Bool,
        logger: Logger
    ) async throws -> CallbackResult {
        guard status != .inFlight else { return .recorded }
        let key = owner.key
        let (id, channel, reported) = (key.reminderID, key.channel.rawValue, status.rawValue)
        // A part's own status only moves forward too: a late `delivered` after `undelivered` is kept as an event.
        if owner.partStatus == nil {
            try await connection.query(
                "UPDATE provider_message SET status = \(reported) WHERE provider = \(provider) AND message_id = \(messageID)", logger: logger)
        }
        var parts: [String?] = [owner.partStatus ?? reported]
        if owner.parts != 1 {
            parts = []
            for try await (part) in try await connection.query(
                "SELECT status FROM provider_message WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger
            ).decode(String?.self) {
                parts.append(part)
            }
        }
        // Nothing settled while some parts are still unknown.
        guard let combined = Settlement.combined(parts: parts), let current = owner.deliveryStatus else { return .recorded }
        guard current == .sent else {
            try await insertEvent(
                connection, key, from: current, to: current,
                reason: "\(provider) reported \(combined.rawValue) after \(current.rawValue): kept as an event, no change", at: now, logger: logger)
            return .recorded
        }
        try await move(
            connection, key, from: .sent, to: combined,
            reason: "\(provider) reported \(combined.rawValue)\(late ? " (callback received before the send was committed)" : "")", at: now, logger: logger)
        // The other reminders sent in the same message share its fate.
        guard owner.groupLead == id else { return .applied }
        _ = try await moveGroupMembers(
            connection, of: key, to: combined, reason: "\(provider) reported \(combined.rawValue) for the message shared with \(id)", at: now, logger: logger)
        return .applied
    }

    /// The other reminders sent in `lead`'s message, still `sent`, moved with it; their keys.
    static func moveGroupMembers(_ connection: PostgresConnection, of lead: DeliveryKey, to status: DeliveryStatus, reason: String, at now: Date, logger: Logger)
        async throws -> [DeliveryKey]
    {
        let (id, channel) = (lead.reminderID, lead.channel.rawValue)
        var members: [DeliveryKey] = []
        for try await (member) in try await connection.query(
            "SELECT reminder_id FROM delivery WHERE group_lead = \(id) AND channel = \(channel) AND reminder_id != \(id) AND status = 'sent' ORDER BY reminder_id",
            logger: logger
        ).decode(String.self) {
            members.append(DeliveryKey(reminderID: member, channel: lead.channel))
        }
        for member in members {
            try await move(connection, member, from: .sent, to: status, reason: reason, at: now, logger: logger)
        }
        return members
    }

    /// Records every part id of an accepted send (Vonage gives one per segment, comma-separated),
    /// then applies any callback that arrived before this commit, oldest first.
    func registerProviderMessages(_ connection: PostgresConnection, _ key: DeliveryKey, provider: String, ids: String, at now: Date) async throws {
        let parts = ids.split(separator: ",").map(String.init).filter { !$0.isEmpty }
        let (id, channel, count) = (key.reminderID, key.channel.rawValue, parts.count)
        for (i, part) in parts.enumerated() {
            try await connection.query(
                """
                INSERT INTO provider_message (provider, message_id, reminder_id, channel, part, parts)
                VALUES (\(provider), \(part), \(id), \(channel), \(i), \(count)) ON CONFLICT DO NOTHING
                """, logger: logger)
        }
        var orphans: [(Int64, String, String)] = []
        for try await row in try await connection.query(
            "SELECT id, message_id, status FROM callback WHERE provider = \(provider) AND result = 'orphan' AND message_id = ANY(\(parts)) ORDER BY id FOR UPDATE",
            logger: logger
        ).decode((Int64, String, String).self) {
            orphans.append(row)
        }
        for (callbackID, messageID, text) in orphans {
            guard let status = StatusCallback.Status(rawValue: text) else {
                throw LedgerCorruption(description: "unknown callback status '\(text)' in the ledger")
            }
            var result = CallbackResult.recorded
            if let owner = try await Self.owner(connection, provider: provider, messageID: messageID, status: status, logger: logger) {
                result = try await Self.applyKnown(connection, owner: owner, provider: provider, messageID: messageID, status: status, at: now, late: true, logger: logger)
            }
            let outcome = "late-" + result.rawValue
            try await connection.query(
                "UPDATE callback SET result = \(outcome), reminder_id = \(id), channel = \(channel) WHERE id = \(callbackID)", logger: logger)
        }
    }

    // MARK: Suppression

    public func suppress(_ address: String, reason: String, source: String, now: Date) async throws {
        let (lowered, t) = (address.lowercased(), now.timeIntervalSince1970)
        _ = try await translatingErrors {
            try await client.query(
                "INSERT INTO suppression (address, reason, source, created_at) VALUES (\(lowered), \(reason), \(source), \(t)) ON CONFLICT DO NOTHING",
                logger: logger)
        }
    }

    public func forEachSuppression(_ body: @escaping @Sendable (Ledger.Suppression) throws -> Void) async throws {
        try await translatingErrors {
            for try await (address, reason, source, created) in try await client.query(
                "SELECT address, reason, source, created_at FROM suppression ORDER BY created_at, address COLLATE \"C\"", logger: logger
            ).decode((String, String, String, Double).self) {
                try body(Ledger.Suppression(address: address, reason: reason, source: source, since: Date(timeIntervalSince1970: created)))
            }
        }
    }
}
