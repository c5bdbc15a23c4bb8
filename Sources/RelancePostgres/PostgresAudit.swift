import Foundation
import PostgresNIO
import RelanceCore
import RelanceStore

/// What an operator reads and settles by hand on PostgreSQL, as `Ledger`'s (Queries.swift,
/// Callbacks.swift, Sending.swift): receipts, events, callbacks, `relance resolve`, opt-outs lifted.
extension PostgresLedger: AuditStore {
    public func receipts(_ filter: ReceiptFilter, _ body: @escaping @Sendable (Receipt) throws -> Void) async throws {
        var conditions: [String] = []
        var binds = PostgresBindings()
        func bind(_ condition: String, _ value: some PostgresDynamicTypeEncodable) {
            binds.append(value)
            conditions.append(condition.replacingOccurrences(of: "?", with: "$\(binds.count)"))
        }
        if let status = filter.status { bind("d.status = ?", status.rawValue) }
        if let since = filter.since { bind("COALESCE(a.started_at, d.updated_at) >= ?", since.timeIntervalSince1970) }
        if let reminderID = filter.reminderID { bind("d.reminder_id = ?", reminderID) }
        if let invoice = filter.invoice { bind("d.reminder_id IN (SELECT reminder_id FROM reminder_invoice WHERE invoice = ?)", invoice) }
        if let debtorID = filter.debtorID { bind("d.debtor_id = ?", debtorID) }
        if !filter.everyDelivery { conditions.append("a.id IS NOT NULL") }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        // Invoice numbers and amounts come from the record (an erased one keeps none), in its order.
        let sql = """
            SELECT d.reminder_id, d.channel, d.status, d.updated_at, d.last_error, a.number, a.transport, a.recipient, a.started_at,
              a.finished_at, a.outcome, a.code, a.detail, a.provider_id, rec.j ->> 'stage',
              (SELECT string_agg(i ->> 'number', chr(31) ORDER BY n) FROM jsonb_array_elements(rec.j -> 'invoices') WITH ORDINALITY AS x(i, n)),
              (SELECT string_agg((i ->> 'amount') || ' ' || (i ->> 'currency'), chr(31) ORDER BY n)
                 FROM jsonb_array_elements(rec.j -> 'invoices') WITH ORDINALITY AS x(i, n))
            FROM delivery d JOIN reminder r ON r.id = d.reminder_id
            CROSS JOIN LATERAL (SELECT r.record::jsonb AS j) rec
            LEFT JOIN attempt a ON a.reminder_id = d.reminder_id AND a.channel = d.channel
            \(whereClause) ORDER BY COALESCE(a.started_at, d.updated_at), a.id, d.reminder_id, d.channel
            """
        try await translatingErrors {
            try await client.withConnection { connection in
                let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
                for try await row in rows {
                    let c = row.makeRandomAccess()
                    let (id, channel, status, updatedAt) = (try c[0].decode(String.self), try c[1].decode(String.self), try c[2].decode(String.self), try c[3].decode(Double.self))
                    let (lastError, number, transport, recipient) = (try c[4].decode(String?.self), try c[5].decode(Int?.self), try c[6].decode(String?.self), try c[7].decode(String?.self))
                    let (startedAt, finishedAt, outcome, code) = (try c[8].decode(Double?.self), try c[9].decode(Double?.self), try c[10].decode(String?.self), try c[11].decode(Int?.self))
                    let (detail, providerID, stage) = (try c[12].decode(String?.self), try c[13].decode(String?.self), try c[14].decode(String?.self))
                    let (invoices, amounts) = (try c[15].decode(String?.self), try c[16].decode(String?.self))
                    try body(
                        Receipt(
                            reminderID: id, channel: channel, attempt: number ?? 0, transport: transport ?? "-", recipient: recipient ?? "-",
                            startedAt: Date(timeIntervalSince1970: startedAt ?? updatedAt), finishedAt: finishedAt.map(Date.init(timeIntervalSince1970:)),
                            outcome: outcome ?? "none", code: code, detail: detail ?? lastError, providerID: providerID, status: status, stage: stage,
                            invoices: invoices?.split(separator: "\u{1F}").map(String.init) ?? [],
                            amounts: amounts?.split(separator: "\u{1F}").map(String.init) ?? []))
                }
            }
        }
    }

    public func events(reminderID: String) async throws -> [DeliveryEvent] {
        try await translatingErrors {
            var events: [DeliveryEvent] = []
            for try await (id, channel, at, from, to, reason) in try await client.query(
                "SELECT reminder_id, channel, at, from_status, to_status, reason FROM event WHERE reminder_id = \(reminderID) ORDER BY id", logger: logger
            ).decode((String, String, Double, String?, String, String).self) {
                events.append(DeliveryEvent(reminderID: id, channel: channel, at: Date(timeIntervalSince1970: at), from: from, to: to, reason: reason))
            }
            return events
        }
    }

    public func callbacks(reminderID: String?) async throws -> [CallbackRecord] {
        try await translatingErrors {
            var callbacks: [CallbackRecord] = []
            // NULL: every orphan.
            for try await (provider, messageID, receivedAt, status, raw, result) in try await client.query(
                """
                SELECT provider, message_id, received_at, status, raw, result FROM callback
                WHERE reminder_id IS NOT DISTINCT FROM \(reminderID) ORDER BY id
                """, logger: logger
            ).decode((String, String, Double, String, String, String).self) {
                callbacks.append(
                    CallbackRecord(
                        provider: provider, messageID: messageID, receivedAt: Date(timeIntervalSince1970: receivedAt), status: status, raw: raw, result: result))
            }
            return callbacks
        }
    }

    public func resolve(_ key: DeliveryKey, as resolution: Ledger.Resolution, reason: String, now: Date) async throws {
        let (id, channel, t) = (key.reminderID, key.channel.rawValue, now.timeIntervalSince1970)
        try await transaction { connection in
            var status: String?
            for try await (current) in try await connection.query(
                "SELECT status FROM delivery WHERE reminder_id = \(id) AND channel = \(channel) FOR UPDATE", logger: logger
            ).decode(String.self) {
                status = current
            }
            guard let status else { throw Ledger.ResolveError(description: "no delivery \(key)") }
            guard status == DeliveryStatus.unknown.rawValue else {
                throw Ledger.ResolveError(description: "\(key) is \(status), not unknown: only in-doubt deliveries are resolved")
            }
            if resolution == .resend {
                try await connection.query("UPDATE delivery SET due_at = \(t) WHERE reminder_id = \(id) AND channel = \(channel)", logger: logger)
            }
            try await Self.move(connection, key, from: .unknown, to: resolution == .sent ? .sent : .pending, reason: reason, at: now, logger: logger)
        }
    }

    public func unsuppress(_ address: String) async throws -> Bool {
        let lowered = address.lowercased()
        return try await translatingErrors {
            var removed = false
            for try await _ in try await client.query("DELETE FROM suppression WHERE address = \(lowered) RETURNING 1", logger: logger) { removed = true }
            return removed
        }
    }
}
