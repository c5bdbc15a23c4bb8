import Foundation
import GRDB
import RelanceCore

/// A bounce whose delivery is known and authenticated (a verified VERP token or header, or a
/// provider's signed event), for the ledger to apply by the rules of `BounceRules`.
public struct BounceNotice: Sendable, Hashable {
    public var key: DeliveryKey
    /// Every recipient the report names; the one about the address the delivery went to decides.
    public var recipients: [BounceClassifier.Recipient]
    /// How it came: `pipe`, `maildir`, `imap`, `brevo`.
    public var source: String
    /// What makes it the same bounce when it comes again (the bounce's Message-ID, a digest of
    /// it, a provider's event id): the pipe, the Maildir and IMAP may all see one message.
    public var reference: String

    public init(key: DeliveryKey, recipients: [BounceClassifier.Recipient], source: String, reference: String) {
        self.key = key
        self.recipients = recipients
        self.source = source
        self.reference = reference
    }
}

/// What applying a bounce did.
public enum BounceResult: Sendable, Hashable {
    /// `sent → bounced`, the address suppressed; `fallback`: the channels that take over.
    case bounced(address: String, fallback: [Channel])
    /// Hard (or the soft limit reached) for a delivery no longer `sent`: the address is suppressed,
    /// the status stays, the bounce is an event.
    case suppressed(address: String, status: DeliveryStatus)
    /// A soft bounce counted: `count` of `limit` within the window; nothing else changes.
    case softCounted(count: Int, limit: Int)
    /// This bounce was applied before.
    case duplicate
    /// The ledger has no such email delivery (purged, or a token from another ledger).
    case noDelivery
    /// The send of this message is not recorded yet: try again later.
    case notYetRecorded
}

extension Ledger {
    /// Applies an authenticated bounce by `rules`, in one transaction: the bounce row (idempotent
    /// per reference and delivery), the event, the suppression, the move to `bounced` of the
    /// delivery and of the reminders sent in the same message, and their fallback channels.
    public func applyBounce(_ notice: BounceNotice, rules: BounceRules, now: Date) async throws -> BounceResult {
        try await batcher.write { db in
            let key = notice.key
            guard
                let row = try Row.fetchOne(
                    db,
                    cachedSQL: """
                        SELECT d.status, d.group_lead,
                          (SELECT recipient FROM attempt a WHERE a.reminder_id = d.reminder_id AND a.channel = d.channel AND a.outcome != 'not_sent'
                           ORDER BY a.number DESC LIMIT 1) AS recipient
                        FROM delivery d WHERE d.reminder_id = ? AND d.channel = ?
                        """, arguments: [key.reminderID, key.channel.rawValue]),
                let sentTo = row["recipient"] as String?, !sentTo.isEmpty
            else { return .noDelivery }
            let current = try row.deliveryStatus()
            if current == .sending { return .notYetRecorded }
            guard let recipient = BounceRules.concerning(notice.recipients, sentTo: sentTo) else { return .noDelivery }
            let address = sentTo.lowercased()
            let t = now.timeIntervalSince1970
            try db.run(
                sql: """
                    INSERT OR IGNORE INTO bounce (reference, reminder_id, channel, address, kind, status, diagnostic, source, received_at, result)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '')
                    """,
                arguments: [
                    notice.reference, key.reminderID, key.channel.rawValue, address, recipient.kind.rawValue, recipient.status,
                    recipient.diagnostic.map { String($0.prefix(1000)) }, notice.source, t,
                ])
            guard db.changesCount == 1 else { return .duplicate }
            let bounceID = db.lastInsertedRowID
            let softCount =
                try Int.fetchOne(
                    db,
                    cachedSQL: """
                        SELECT COUNT(DISTINCT reminder_id || '/' || channel) FROM bounce WHERE address = ? AND kind = 'soft' AND received_at >= ?
                        """, arguments: [address, t - rules.softWindow.seconds]) ?? 0
            let decision = rules.decide(recipient, softCount: softCount, current: current, source: notice.source)
            let result: BounceResult
            if decision.suppress {
                try db.run(
                    sql: "INSERT OR IGNORE INTO suppression (address, reason, source, created_at) VALUES (?, 'bounced', ?, ?)",
                    arguments: [address, "bounce:\(notice.source)", t])
            }
            if decision.bounce {
                try db.run(sql: "UPDATE delivery SET last_error = ? WHERE reminder_id = ? AND channel = ?", arguments: [decision.reason, key.reminderID, key.channel.rawValue])
                try Self.move(db, key, from: .sent, to: .bounced, reason: decision.reason, at: now)
                var keys = [key]
                if row["group_lead"] as String? == key.reminderID {
                    for member in try String.fetchAll(
                        db, cachedSQL: "SELECT reminder_id FROM delivery WHERE group_lead = ? AND channel = ? AND reminder_id != ? AND status = 'sent'",
                        arguments: [key.reminderID, key.channel.rawValue, key.reminderID])
                    {
                        let memberKey = DeliveryKey(reminderID: member, channel: key.channel)
                        try Self.move(db, memberKey, from: .sent, to: .bounced, reason: "\(decision.reason) (the message shared with \(key.reminderID))", at: now)
                        keys.append(memberKey)
                    }
                }
                var fallback: Set<Channel> = []
                for bounced in keys {
                    let before = try Set(String.fetchAll(db, cachedSQL: "SELECT channel FROM delivery WHERE reminder_id = ?", arguments: [bounced.reminderID]))
                    try Self.fallBack(db, from: bounced, reason: "the address bounced (\(recipient.status ?? recipient.kind.rawValue))", at: now)
                    let after = try Set(String.fetchAll(db, cachedSQL: "SELECT channel FROM delivery WHERE reminder_id = ?", arguments: [bounced.reminderID]))
                    fallback.formUnion(after.subtracting(before).compactMap(Channel.init(rawValue:)))
                }
                result = .bounced(address: address, fallback: fallback.sorted { $0.rawValue < $1.rawValue })
            } else {
                try Self.insertEvent(db, key, from: current, to: current, reason: decision.reason, at: now)
                result = decision.hard ? .suppressed(address: address, status: current) : .softCounted(count: softCount, limit: rules.softLimit)
            }
            try db.run(sql: "UPDATE bounce SET result = ? WHERE id = ?", arguments: [result.label, bounceID])
            return result
        }
    }

    /// Bounced and left (accepted by the relay or gateway) deliveries per channel since `since`,
    /// for the bounce rate of `relance status`.
    public func bounceCounts(since: Date) async throws -> [(channel: String, left: Int, bounced: Int)] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT a.channel, COUNT(DISTINCT a.reminder_id) AS left,
                      COUNT(DISTINCT CASE WHEN d.status IN ('bounced', 'undelivered') THEN a.reminder_id END) AS bounced
                    FROM attempt a JOIN delivery d ON d.reminder_id = a.reminder_id AND d.channel = a.channel
                    WHERE a.outcome = 'sent' AND a.started_at >= ?
                    GROUP BY a.channel ORDER BY a.channel
                    """, arguments: [since.timeIntervalSince1970]
            ).map { (channel: $0["channel"], left: $0["left"], bounced: $0["bounced"]) }
        }
    }
}

extension BounceResult {
    /// As kept in the `bounce` table and logged.
    public var label: String {
        switch self {
        case .bounced: "bounced"
        case .suppressed: "suppressed"
        case .softCounted: "soft"
        case .duplicate: "duplicate"
        case .noDelivery: "no_delivery"
        case .notYetRecorded: "not_yet_recorded"
        }
    }
}
