import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

/// SMS reconciliation on PostgreSQL, as `Ledger`'s (Reconciliation.swift). With several nodes,
/// each round takes its candidates with `FOR UPDATE SKIP LOCKED` and moves their `poll_at` on by
/// `Ledger.askingHorizon` while it asks, so two nodes never ask about the same SMS at once;
/// `polled` then sets the real next poll.
extension PostgresLedger: ReconciliationStore {
    public func pollCandidates(dueBy: Date, limit: Int) async throws -> [Ledger.PollCandidate] {
        let (bound, asking) = (dueBy.timeIntervalSince1970, dueBy.timeIntervalSince1970 + Ledger.askingHorizon)
        return try await transaction { connection in
            var rows: [(DeliveryKey, String, String?, String?, Double?)] = []
            for try await (id, channel, status, transport, recipient, finished) in try await connection.query(
                """
                SELECT d.reminder_id, d.channel, d.status, a.transport, a.recipient, a.finished_at
                FROM delivery d JOIN attempt a ON a.reminder_id = d.reminder_id AND a.channel = d.channel AND a.number = d.attempts
                WHERE d.poll_at IS NOT NULL AND d.poll_at <= \(bound) ORDER BY d.poll_at LIMIT \(limit)
                FOR UPDATE OF d SKIP LOCKED
                """, logger: logger
            ).decode((String, String, String, String?, String?, Double?).self) {
                rows.append((try Self.key(id, channel), status, transport, recipient, finished))
            }
            var candidates: [Ledger.PollCandidate] = []
            for (key, status, transport, recipient, finished) in rows {
                let (id, channel) = (key.reminderID, key.channel.rawValue)
                guard status == DeliveryStatus.sent.rawValue, let transport, PollSchedule.gatewaysWithStatusAPI.contains(transport) else {
                    try await connection.query("UPDATE delivery SET poll_at = NULL WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
                    continue
                }
                try await connection.query("UPDATE delivery SET poll_at = \(asking) WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
                var parts: [String] = []
                for try await (part) in try await connection.query(
                    "SELECT message_id FROM provider_message WHERE reminder_id = \(id) AND channel = \(channel) AND status IS NULL ORDER BY part", logger: logger
                ).decode(String.self) {
                    parts.append(part)
                }
                candidates.append(
                    Ledger.PollCandidate(
                        key: key, transport: transport, recipient: recipient ?? "", sentAt: Date(timeIntervalSince1970: finished ?? 0), messageIDs: parts))
            }
            return candidates
        }
    }

    public func polled(_ key: DeliveryKey, next: Date?, giveUp: String?, now: Date) async throws {
        let (id, channel, nextPoll) = (key.reminderID, key.channel.rawValue, giveUp == nil ? next?.timeIntervalSince1970 : nil)
        try await transaction { connection in
            var sent = false
            for try await (status) in try await connection.query(
                "SELECT status FROM delivery WHERE reminder_id = \(id) AND channel = \(channel) FOR UPDATE", logger: logger
            ).decode(String.self) {
                sent = status == DeliveryStatus.sent.rawValue
            }
            guard sent else { return }
            try await connection.query("UPDATE delivery SET poll_at = \(nextPoll) WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
            if let giveUp { try await Self.insertEvent(connection, key, from: .sent, to: .sent, reason: "no final status: \(giveUp)", at: now, logger: logger) }
        }
    }
}
