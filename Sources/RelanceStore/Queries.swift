import Foundation
import GRDB
import RelanceCore

/// One receipt: an attempt and what came of it.
public struct Receipt: Sendable, Codable, Hashable {
    public var reminderID: String
    public var channel: String
    public var attempt: Int
    public var transport: String
    public var recipient: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var outcome: String
    public var code: Int?
    public var detail: String?
    public var providerID: String?
    /// The delivery's current status.
    public var status: String

    enum CodingKeys: String, CodingKey {
        case reminderID = "reminder_id"
        case channel, attempt, transport, recipient
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case outcome, code, detail
        case providerID = "provider_id"
        case status
    }
}

extension Receipt {
    /// From a row of `attempt` joined with its delivery's `status`.
    init(row: Row) {
        self.init(
            reminderID: row["reminder_id"], channel: row["channel"], attempt: row["number"], transport: row["transport"],
            recipient: row["recipient"], startedAt: Date(timeIntervalSince1970: row["started_at"]),
            finishedAt: (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:)), outcome: row["outcome"],
            code: row["code"], detail: row["detail"], providerID: row["provider_id"], status: row["status"])
    }
}

/// A status change of a delivery, for audit.
public struct DeliveryEvent: Sendable, Codable, Hashable {
    public var reminderID: String
    public var channel: String
    public var at: Date
    public var from: String?
    public var to: String
    public var reason: String
}

/// A delivery's current state.
public struct DeliverySummary: Sendable, Codable, Hashable {
    public var reminderID: String
    public var channel: String
    public var status: String
    public var attempts: Int
    public var dueAt: Date
    public var lastError: String?
}

extension Ledger {
    /// Receipts, oldest first, filtered by the delivery's current status, start time and reminder id.
    /// Streams rows to `body` so a large ledger is never loaded whole.
    public func receipts(
        status: DeliveryStatus? = nil, since: Date? = nil, reminderID: String? = nil, _ body: @escaping @Sendable (Receipt) throws -> Void
    ) async throws {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let status {
                conditions.append("d.status = ?")
                arguments += [status.rawValue]
            }
            if let since {
                conditions.append("a.started_at >= ?")
                arguments += [since.timeIntervalSince1970]
            }
            if let reminderID {
                conditions.append("a.reminder_id = ?")
                arguments += [reminderID]
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT a.*, d.status FROM attempt a
                    JOIN delivery d ON d.reminder_id = a.reminder_id AND d.channel = a.channel
                    \(whereClause) ORDER BY a.started_at, a.id
                    """, arguments: arguments)
            while let row = try rows.next() { try body(Receipt(row: row)) }
        }
    }

    /// Deliveries (optionally of one reminder or in one status), in key order.
    public func deliveries(reminderID: String? = nil, status: DeliveryStatus? = nil) async throws -> [DeliverySummary] {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let reminderID {
                conditions.append("reminder_id = ?")
                arguments += [reminderID]
            }
            if let status {
                conditions.append("status = ?")
                arguments += [status.rawValue]
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            return try Row.fetchAll(db, sql: "SELECT * FROM delivery \(whereClause) ORDER BY reminder_id, channel", arguments: arguments).map {
                DeliverySummary(
                    reminderID: $0["reminder_id"], channel: $0["channel"], status: $0["status"], attempts: $0["attempts"],
                    dueAt: Date(timeIntervalSince1970: $0["due_at"]), lastError: $0["last_error"])
            }
        }
    }

    public func events(reminderID: String) async throws -> [DeliveryEvent] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM event WHERE reminder_id = ? ORDER BY id", arguments: [reminderID]).map {
                DeliveryEvent(
                    reminderID: $0["reminder_id"], channel: $0["channel"], at: Date(timeIntervalSince1970: $0["at"]), from: $0["from_status"],
                    to: $0["to_status"], reason: $0["reason"])
            }
        }
    }

    /// Number of deliveries per (channel, status).
    public func statusCounts() async throws -> [(channel: String, status: String, count: Int)] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT channel, status, COUNT(*) AS n FROM delivery GROUP BY channel, status ORDER BY channel, status").map {
                (channel: $0["channel"], status: $0["status"], count: $0["n"])
            }
        }
    }

    /// The most recent failures, newest first.
    public func lastErrors(limit: Int) async throws -> [Receipt] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT a.*, d.status FROM attempt a JOIN delivery d ON d.reminder_id = a.reminder_id AND d.channel = a.channel
                    WHERE a.outcome IN ('transient', 'permanent', 'unknown') ORDER BY a.id DESC LIMIT ?
                    """, arguments: [limit]
            ).map(Receipt.init(row:))
        }
    }
}
