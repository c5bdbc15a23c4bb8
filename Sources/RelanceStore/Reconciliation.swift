import Foundation
import GRDB
import RelanceCore

/// SMS reconciliation (DESIGN.md "Bounces and reconciliation"): the deliveries still `sent` whose
/// gateway can be asked for their status, in the order they fall due.
extension Ledger {
    /// Seconds a candidate is kept from the next rounds while it is asked about (several nodes,
    /// or a round whose request failed): `polled` sets its real next poll.
    public static let askingHorizon: Double = 60

    /// One SMS to ask about: its gateway, the part ids still without a final status, when it was accepted.
    public struct PollCandidate: Sendable, Hashable {
        public var key: DeliveryKey
        public var transport: String
        public var recipient: String
        public var sentAt: Date
        public var messageIDs: [String]

        public init(key: DeliveryKey, transport: String, recipient: String, sentAt: Date, messageIDs: [String]) {
            self.key = key
            self.transport = transport
            self.recipient = recipient
            self.sentAt = sentAt
            self.messageIDs = messageIDs
        }
    }

    /// The SMS due for a poll: accepted at or before `dueBy` (now - `sms.reconcile_after`) or last
    /// polled a polling interval ago, oldest first; each is kept from the next rounds for
    /// `askingHorizon` unless `polled` comes first. Deliveries that reached a final status
    /// meanwhile leave the schedule here.
    public func pollCandidates(dueBy: Date, limit: Int) async throws -> [PollCandidate] {
        try await batcher.write { db in
            let rows = try Row.fetchAll(
                db,
                cachedSQL: """
                    SELECT d.reminder_id, d.channel, d.status, a.transport, a.recipient, a.finished_at
                    FROM delivery d JOIN attempt a ON a.reminder_id = d.reminder_id AND a.channel = d.channel AND a.number = d.attempts
                    WHERE d.poll_at IS NOT NULL AND d.poll_at <= ? ORDER BY d.poll_at LIMIT ?
                    """, arguments: [dueBy.timeIntervalSince1970, limit])
            var candidates: [PollCandidate] = []
            for row in rows {
                let key = try row.deliveryKey()
                guard row["status"] as String? == DeliveryStatus.sent.rawValue, let transport = row["transport"] as String?, PollSchedule.gatewaysWithStatusAPI.contains(transport)
                else {
                    try db.run(sql: "UPDATE delivery SET poll_at = NULL WHERE reminder_id = ? AND channel = ?", arguments: [key.reminderID, key.channel.rawValue])
                    continue
                }
                // Not handed out again while it is being asked about (`polled` sets the next poll).
                try db.run(
                    sql: "UPDATE delivery SET poll_at = ? WHERE reminder_id = ? AND channel = ?",
                    arguments: [dueBy.timeIntervalSince1970 + Self.askingHorizon, key.reminderID, key.channel.rawValue])
                let parts = try String.fetchAll(
                    db, cachedSQL: "SELECT message_id FROM provider_message WHERE reminder_id = ? AND channel = ? AND status IS NULL ORDER BY part",
                    arguments: [key.reminderID, key.channel.rawValue])
                candidates.append(
                    PollCandidate(
                        key: key, transport: transport, recipient: row["recipient"] ?? "", sentAt: Date(timeIntervalSince1970: row["finished_at"] ?? 0),
                        messageIDs: parts))
            }
            return candidates
        }
    }

    /// After a poll: due again at `next` (as `poll_at`: the next poll comes when it is `reconcile_after`
    /// old), or, with `giveUp`, never again, with a `no final status` event; nothing when the
    /// delivery already left `sent` (the poll's answer applied a final status).
    public func polled(_ key: DeliveryKey, next: Date?, giveUp: String?, now: Date) async throws {
        try await batcher.write { db in
            guard
                let status = try String.fetchOne(
                    db, cachedSQL: "SELECT status FROM delivery WHERE reminder_id = ? AND channel = ?", arguments: [key.reminderID, key.channel.rawValue]),
                status == DeliveryStatus.sent.rawValue
            else { return }
            try db.run(
                sql: "UPDATE delivery SET poll_at = ? WHERE reminder_id = ? AND channel = ?",
                arguments: [giveUp == nil ? next?.timeIntervalSince1970 : nil, key.reminderID, key.channel.rawValue])
            if let giveUp { try Self.insertEvent(db, key, from: .sent, to: .sent, reason: "no final status: \(giveUp)", at: now) }
        }
    }
}
