import Foundation
import GRDB
import RelanceCore

/// One receipt: an attempt and what came of it, or a delivery that never had an attempt
/// (suppressed, cancelled, expired, deferred, failed before sending): attempt 0, outcome `none`.
public struct Receipt: Sendable, Codable, Hashable {
    public var reminderID: String
    public var channel: String
    public var attempt: Int
    public var transport: String
    public var recipient: String
    /// When the attempt started; for a delivery without one, its last change.
    public var startedAt: Date
    public var finishedAt: Date?
    public var outcome: String
    public var code: Int?
    public var detail: String?
    public var providerID: String?
    /// The delivery's current status.
    public var status: String
    public var stage: String?
    /// The invoice numbers the reminder is about.
    public var invoices: [String] = []
    /// Each invoice's amount and currency (`1234.50 EUR`), in the order of `invoices`.
    public var amounts: [String] = []

    enum CodingKeys: String, CodingKey {
        case reminderID = "reminder_id"
        case channel, attempt, transport, recipient
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case outcome, code, detail
        case providerID = "provider_id"
        case status, stage, invoices, amounts
    }

    public init(
        reminderID: String, channel: String, attempt: Int, transport: String, recipient: String, startedAt: Date, finishedAt: Date?, outcome: String,
        code: Int?, detail: String?, providerID: String?, status: String, stage: String?, invoices: [String], amounts: [String]
    ) {
        self.reminderID = reminderID
        self.channel = channel
        self.attempt = attempt
        self.transport = transport
        self.recipient = recipient
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.outcome = outcome
        self.code = code
        self.detail = detail
        self.providerID = providerID
        self.status = status
        self.stage = stage
        self.invoices = invoices
        self.amounts = amounts
    }
}

extension Receipt {
    /// From a row of `attempt` joined with its delivery's `status`.
    init(row: Row) {
        self.init(
            reminderID: row["reminder_id"], channel: row["channel"], attempt: row["number"] ?? 0, transport: row["transport"] ?? "-",
            recipient: row["recipient"] ?? "-", startedAt: Date(timeIntervalSince1970: row["started_at"] ?? row["updated_at"] ?? 0),
            finishedAt: (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:)), outcome: row["outcome"] ?? "none",
            code: row["code"], detail: row["detail"] ?? row["last_error"], providerID: row["provider_id"], status: row["status"], stage: row["stage"],
            invoices: (row["invoices"] as String?)?.split(separator: "\u{1F}").map(String.init) ?? [],
            amounts: (row["amounts"] as String?)?.split(separator: "\u{1F}").map(String.init) ?? [])
    }
}

/// Which receipts to list.
public struct ReceiptFilter: Sendable {
    /// The delivery's current status.
    public var status: DeliveryStatus?
    /// Attempts started (or deliveries changed) at or after.
    public var since: Date?
    public var reminderID: String?
    public var invoice: String?
    public var debtorID: String?
    /// Also one row for each delivery that never had an attempt.
    public var everyDelivery: Bool

    public init(
        status: DeliveryStatus? = nil, since: Date? = nil, reminderID: String? = nil, invoice: String? = nil, debtorID: String? = nil,
        everyDelivery: Bool = false
    ) {
        self.status = status
        self.since = since
        self.reminderID = reminderID
        self.invoice = invoice
        self.debtorID = debtorID
        self.everyDelivery = everyDelivery
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

    public init(reminderID: String, channel: String, at: Date, from: String?, to: String, reason: String) {
        self.reminderID = reminderID
        self.channel = channel
        self.at = at
        self.from = from
        self.to = to
        self.reason = reason
    }
}

/// A delivery's current state.
public struct DeliverySummary: Sendable, Codable, Hashable {
    public var reminderID: String
    public var channel: String
    public var status: String
    public var attempts: Int
    public var dueAt: Date
    public var lastError: String?

    public init(reminderID: String, channel: String, status: String, attempts: Int, dueAt: Date, lastError: String?) {
        self.reminderID = reminderID
        self.channel = channel
        self.status = status
        self.attempts = attempts
        self.dueAt = dueAt
        self.lastError = lastError
    }
}

extension Ledger {
    /// Receipts, oldest first, filtered by the delivery's current status, start time and reminder id.
    /// Streams rows to `body` so a large ledger is never loaded whole.
    public func receipts(
        status: DeliveryStatus? = nil, since: Date? = nil, reminderID: String? = nil, _ body: @escaping @Sendable (Receipt) throws -> Void
    ) async throws {
        try await receipts(ReceiptFilter(status: status, since: since, reminderID: reminderID), body)
    }

    /// Receipts as `filter` says, oldest first, streamed to `body`.
    public func receipts(_ filter: ReceiptFilter, _ body: @escaping @Sendable (Receipt) throws -> Void) async throws {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let status = filter.status {
                conditions.append("d.status = ?")
                arguments += [status.rawValue]
            }
            if let since = filter.since {
                conditions.append("COALESCE(a.started_at, d.updated_at) >= ?")
                arguments += [since.timeIntervalSince1970]
            }
            if let reminderID = filter.reminderID {
                conditions.append("d.reminder_id = ?")
                arguments += [reminderID]
            }
            if let invoice = filter.invoice {
                conditions.append("d.reminder_id IN (SELECT reminder_id FROM reminder_invoice WHERE invoice = ?)")
                arguments += [invoice]
            }
            if let debtorID = filter.debtorID {
                conditions.append("d.debtor_id = ?")
                arguments += [debtorID]
            }
            if !filter.everyDelivery { conditions.append("a.id IS NOT NULL") }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            // Invoice numbers and amounts come from the record (absent once it is erased); 0x1F separates them.
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT d.reminder_id, d.channel, d.status, d.updated_at, d.last_error, a.number, a.transport, a.recipient, a.started_at,
                      a.finished_at, a.outcome, a.code, a.detail, a.provider_id,
                      json_extract(r.record, '$.stage') AS stage,
                      (SELECT group_concat(json_extract(j.value, '$.number'), char(31)) FROM json_each(r.record, '$.invoices') j) AS invoices,
                      (SELECT group_concat(json_extract(j.value, '$.amount') || ' ' || json_extract(j.value, '$.currency'), char(31))
                         FROM json_each(r.record, '$.invoices') j) AS amounts
                    FROM delivery d JOIN reminder r ON r.id = d.reminder_id
                    LEFT JOIN attempt a ON a.reminder_id = d.reminder_id AND a.channel = d.channel
                    \(whereClause) ORDER BY COALESCE(a.started_at, d.updated_at), a.id, d.reminder_id, d.channel
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
            // One range of the due index per status, counted per channel in SQLite: no sorter (a
            // GROUP BY over every delivery sorted them all in memory, 100 MiB for a million, at
            // each /metrics scrape and systemd status line).
            var counts: [(channel: String, status: String, count: Int)] = []
            for status in DeliveryStatus.allCases {
                guard let row = try Row.fetchOne(db, cachedSQL: Self.statusCountSQL, arguments: [status.rawValue]) else { continue }
                for (i, channel) in Channel.allCases.enumerated() {
                    let n: Int = row[i] ?? 0
                    if n > 0 { counts.append((channel: channel.rawValue, status: status.rawValue, count: n)) }
                }
            }
            return counts.sorted { ($0.channel, $0.status) < ($1.channel, $1.status) }
        }
    }

    /// Deliveries of one status, per channel (one column per `Channel` case, in its order).
    static let statusCountSQL =
        "SELECT " + Channel.allCases.map { "SUM(channel = '\($0.rawValue)')" }.joined(separator: ", ") + " FROM delivery WHERE status = ?"

    /// A delivery that went wrong, and why.
    public struct Problem: Sendable, Hashable {
        public var key: DeliveryKey
        public var status: String
        public var at: Date
        public var reason: String

        public init(key: DeliveryKey, status: String, at: Date, reason: String) {
            self.key = key
            self.status = status
            self.at = at
            self.reason = reason
        }
    }

    /// A node sharing the store (several nodes on PostgreSQL; `relance_node`).
    public struct ClusterNode: Sendable, Equatable {
        public var id: String
        /// What it runs (`schema N`).
        public var version: String
        public var startedAt: Date
        /// Its last heartbeat (every health check: `/healthz`, the systemd watchdog).
        public var seenAt: Date
        /// Deliveries it holds `sending` now (its claims).
        public var claims: Int

        public init(id: String, version: String, startedAt: Date, seenAt: Date, claims: Int) {
            self.id = id
            self.version = version
            self.startedAt = startedAt
            self.seenAt = seenAt
            self.claims = claims
        }
    }

    /// One daemon per SQLite ledger: no cluster.
    public func clusterNodes() async throws -> [ClusterNode] { [] }

    /// The most recent problems, newest first: deliveries that failed, are in doubt, expired, were
    /// suppressed, bounced or undelivered, or wait for a retry, with or without an attempt.
    public func lastProblems(limit: Int) async throws -> [Problem] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT d.reminder_id, d.channel, d.status, d.updated_at,
                      COALESCE(d.last_error, (SELECT e.reason FROM event e WHERE e.reminder_id = d.reminder_id AND e.channel = d.channel ORDER BY e.id DESC LIMIT 1), '') AS reason
                    FROM delivery d
                    WHERE d.status IN ('failed', 'unknown', 'expired', 'suppressed', 'undelivered', 'bounced')
                       OR (d.status = 'pending' AND d.last_error IS NOT NULL)
                    ORDER BY d.updated_at DESC, d.reminder_id LIMIT ?
                    """, arguments: [limit]
            ).map { row in
                Problem(key: try row.deliveryKey(), status: row["status"], at: Date(timeIntervalSince1970: row["updated_at"]), reason: row["reason"])
            }
        }
    }
}
