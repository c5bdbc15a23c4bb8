import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

/// Bounces on PostgreSQL, as `Ledger.applyBounce` (Bounces.swift): one transaction, idempotent per
/// bounce message and delivery, the rules of `BounceRules`; the delivery's row is locked while it
/// is applied, so the same bounce seen by two nodes (the pipe on one, IMAP on another) counts once.
extension PostgresLedger: BounceStore {
    public func applyBounce(_ notice: BounceNotice, rules: BounceRules, now: Date) async throws -> BounceResult {
        let key = notice.key
        let (id, channel, t) = (key.reminderID, key.channel.rawValue, now.timeIntervalSince1970)
        return try await transaction { connection in
            var found: (String, String?, String?)?
            for try await row in try await connection.query(
                """
                SELECT d.status, d.group_lead,
                  (SELECT recipient FROM attempt a WHERE a.reminder_id = d.reminder_id AND a.channel = d.channel AND a.outcome != 'not_sent'
                   ORDER BY a.number DESC LIMIT 1)
                FROM delivery d WHERE d.reminder_id = \(id) AND d.channel = \(channel) FOR UPDATE OF d
                """, logger: logger
            ).decode((String, String?, String?).self) {
                found = row
            }
            guard let (status, groupLead, sentTo) = found, let sentTo, !sentTo.isEmpty else { return .noDelivery }
            let current = try Self.deliveryStatus(status, of: id)
            if current == .sending { return .notYetRecorded }
            guard let recipient = BounceRules.concerning(notice.recipients, sentTo: sentTo) else { return .noDelivery }
            let address = sentTo.lowercased()
            let (reference, kind, code, diagnostic, source) = (
                notice.reference, recipient.kind.rawValue, recipient.status, recipient.diagnostic.map { String($0.prefix(1000)) }, notice.source
            )
            var bounceID: Int64?
            for try await (newID) in try await connection.query(
                """
                INSERT INTO bounce (reference, reminder_id, channel, address, kind, status, diagnostic, source, received_at, result)
                VALUES (\(reference), \(id), \(channel), \(address), \(kind), \(code), \(diagnostic), \(source), \(t), '')
                ON CONFLICT (reference, reminder_id, channel) DO NOTHING RETURNING id
                """, logger: logger
            ).decode(Int64.self) {
                bounceID = newID
            }
            guard let bounceID else { return .duplicate }
            let windowStart = t - rules.softWindow.seconds
            var softCount = 0
            for try await (count) in try await connection.query(
                """
                SELECT COUNT(DISTINCT reminder_id || '/' || channel) FROM bounce WHERE address = \(address) AND kind = 'soft' AND received_at >= \(windowStart)
                """, logger: logger
            ).decode(Int.self) {
                softCount = count
            }
            let decision = rules.decide(recipient, softCount: softCount, current: current, source: source)
            let result: BounceResult
            if decision.suppress {
                let by = "bounce:\(source)"
                try await connection.query(
                    "INSERT INTO suppression (address, reason, source, created_at) VALUES (\(address), 'bounced', \(by), \(t)) ON CONFLICT DO NOTHING",
                    logger: logger)
            }
            if decision.bounce {
                let why = decision.reason
                try await connection.query("UPDATE delivery SET last_error = \(why) WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
                try await Self.move(connection, key, from: .sent, to: .bounced, reason: why, at: now, logger: logger)
                var keys = [key]
                if groupLead == id {
                    keys += try await Self.moveGroupMembers(
                        connection, of: key, to: .bounced, reason: "\(why) (the message shared with \(id))", at: now, logger: logger)
                }
                var fallback: Set<RelanceCore.Channel> = []
                for bounced in keys {
                    let before = try await Self.channels(connection, of: bounced.reminderID, logger: logger)
                    try await Self.fallBack(
                        connection, from: bounced, reason: "the address bounced (\(recipient.status ?? recipient.kind.rawValue))", at: now, logger: logger)
                    fallback.formUnion(try await Self.channels(connection, of: bounced.reminderID, logger: logger).subtracting(before))
                }
                result = .bounced(address: address, fallback: fallback.sorted { $0.rawValue < $1.rawValue })
            } else {
                try await Self.insertEvent(connection, key, from: current, to: current, reason: decision.reason, at: now, logger: logger)
                result = decision.hard ? .suppressed(address: address, status: current) : .softCounted(count: softCount, limit: rules.softLimit)
            }
            let label = result.label
            try await connection.query("UPDATE bounce SET result = \(label) WHERE id = \(bounceID)", logger: logger)
            return result
        }
    }

    static func channels(_ connection: PostgresConnection, of reminderID: String, logger: Logger) async throws -> Set<RelanceCore.Channel> {
        var channels: Set<RelanceCore.Channel> = []
        for try await (name) in try await connection.query("SELECT channel FROM delivery WHERE reminder_id = \(reminderID)", logger: logger).decode(
            String.self)
        {
            if let channel = RelanceCore.Channel(rawValue: name) { channels.insert(channel) }
        }
        return channels
    }

    public func bounceCounts(since: Date) async throws -> [(channel: String, left: Int, bounced: Int)] {
        let t = since.timeIntervalSince1970
        return try await translatingErrors {
            var counts: [(channel: String, left: Int, bounced: Int)] = []
            for try await (channel, left, bounced) in try await client.query(
                """
                SELECT a.channel, COUNT(DISTINCT a.reminder_id), COUNT(DISTINCT CASE WHEN d.status IN ('bounced', 'undelivered') THEN a.reminder_id END)
                FROM attempt a JOIN delivery d ON d.reminder_id = a.reminder_id AND d.channel = a.channel
                WHERE a.outcome = 'sent' AND a.started_at >= \(t)
                GROUP BY a.channel ORDER BY a.channel
                """, logger: logger
            ).decode((String, Int, Int).self) {
                counts.append((channel: channel, left: left, bounced: bounced))
            }
            return counts
        }
    }
}
