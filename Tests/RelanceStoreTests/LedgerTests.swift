import Foundation
import GRDB
import RelanceCore
import Testing

@testable import RelanceStore

func temporaryLedger() throws -> Ledger {
    try Ledger(path: NSTemporaryDirectory() + "relance-ledger-" + UUID().uuidString + "/ledger.sqlite")
}

func reminder(
    _ id: String, amount: String = "10.00", channels: [Channel] = [.email], notBefore: Date? = nil, expiresAt: Date? = nil, debtor: String? = nil
) -> Reminder {
    Reminder(
        id: id, stage: "reminder_1", channels: channels, notBefore: notBefore, expiresAt: expiresAt,
        debtor: Debtor(
            id: debtor ?? "C-\(id)", name: "N", email: "n@example.org", phone: "+33612345678", country: "FR", locale: "fr-FR", timezone: "Europe/Paris",
            kind: .consumer),
        invoices: [
            Invoice(
                number: "F", amount: amount, currency: "EUR", issuedOn: CivilDate(year: 2026, month: 1, day: 1), dueOn: CivilDate(year: 2026, month: 2, day: 1))
        ])
}

let t0 = Date(timeIntervalSince1970: 1_800_000_000)

@Suite struct LedgerTests {
    @Test func ingestIsIdempotentAndDetectsConflicts() async throws {
        let ledger = try temporaryLedger()
        let first = try await ledger.ingest(
            [reminder("A"), reminder("B", channels: [.email, .sms])], sourceFile: "f1", queue: "default", priority: 0, now: t0)
        #expect(first.inserted == ["A", "B"])
        let again = try await ledger.ingest(
            [reminder("A"), reminder("B", amount: "99.00", channels: [.email, .sms])], sourceFile: "f2", queue: "default", priority: 0, now: t0)
        #expect(again.inserted.isEmpty)
        #expect(again.duplicates == ["A"])
        #expect(again.conflicts == ["B"])
        #expect(try await ledger.deliveries().count == 3)
    }

    @Test func dueHonoursNotBeforeAndPriority() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest([reminder("later", notBefore: t0.addingTimeInterval(60))], sourceFile: "f", queue: "default", priority: 0, now: t0)
        _ = try await ledger.ingest([reminder("low")], sourceFile: "f", queue: "bulk", priority: -1, now: t0)
        _ = try await ledger.ingest([reminder("high")], sourceFile: "f", queue: "urgent", priority: 10, now: t0)
        #expect(try await ledger.due(now: t0, limit: 10).map(\.key.reminderID) == ["high", "low"])
        #expect(try await ledger.due(now: t0.addingTimeInterval(61), limit: 10).map(\.key.reminderID) == ["high", "later", "low"])
        #expect(try await ledger.nextDueDate() == t0)
    }

    @Test func dueIsFairAcrossDebtorsAndOldestFirst() async throws {
        let ledger = try temporaryLedger()
        // Debtor A's batch of five comes first; B's and C's single reminders come a minute later.
        let batch = (1...5).map { reminder("A\($0)", debtor: "A") }
        _ = try await ledger.ingest(batch, sourceFile: "a", queue: "default", priority: 0, now: t0)
        _ = try await ledger.ingest(
            [reminder("B1", debtor: "B"), reminder("C1", debtor: "C")], sourceFile: "b", queue: "default", priority: 0, now: t0.addingTimeInterval(60))
        let now = t0.addingTimeInterval(120)
        #expect(try await ledger.due(now: now, limit: 10).map(\.key.reminderID) == ["A1", "B1", "C1"], "one per debtor, oldest first")
        #expect(try await ledger.due(now: now, limit: 10, skip: { _, debtor in debtor == "A" }).map(\.key.reminderID) == ["B1", "C1"], "a busy debtor waits")
        let next = try await ledger.due(now: now, limit: 10, skip: { key, debtor in key == DeliveryKey(reminderID: "A1", channel: .email) || debtor == "B" })
        #expect(next.map(\.key.reminderID) == ["A2", "C1"], "A's next reminder is still ahead of younger ones")
    }

    @Test func upgradingAnOlderLedgerFillsInDebtorsAndInvoices() async throws {
        let path = NSTemporaryDirectory() + "relance-ledger-" + UUID().uuidString + ".sqlite"
        let pool = try DatabasePool(path: path)
        try Ledger.migrator.migrate(pool, upTo: "v3-purge-indexes")
        let record = reminder("OLD-1", debtor: "D-9").canonicalJSON()
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO reminder (id, record, source_file, queue, ingested_at) VALUES ('OLD-1', ?, 'f', 'default', 0)", arguments: [record])
            try db.execute(
                sql:
                    "INSERT INTO delivery (reminder_id, channel, status, queue, priority, due_at, updated_at) VALUES ('OLD-1', 'email', 'pending', 'default', 0, 0, 0)"
            )
        }
        try pool.close()
        let ledger = try Ledger(path: path)
        #expect(try await ledger.due(now: t0, limit: 5, skip: { _, debtor in debtor == "D-9" }).isEmpty, "the delivery knows its debtor after the upgrade")
        #expect(try await ledger.due(now: t0, limit: 5).map(\.key.reminderID) == ["OLD-1"])
        let invoices = try await ledger.pool.read { db in try String.fetchAll(db, sql: "SELECT invoice FROM reminder_invoice WHERE reminder_id = 'OLD-1'") }
        #expect(invoices == ["F"])
    }

    @Test func sendingThenOutcomes() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest([reminder("A"), reminder("B"), reminder("C")], sourceFile: "f", queue: "default", priority: 0, now: t0)
        let a = DeliveryKey(reminderID: "A", channel: .email)
        let b = DeliveryKey(reminderID: "B", channel: .email)
        let c = DeliveryKey(reminderID: "C", channel: .email)
        #expect(try await ledger.markSending(a, transport: "smtp", recipient: "n@example.org", now: t0) == 1)
        #expect(try await ledger.markSending(a, transport: "smtp", recipient: "n@example.org", now: t0) == nil, "not pending any more")
        try await ledger.recordOutcome(a, attempt: 1, outcome: .sent(providerID: "P1", code: 250, detail: "250 ok"), retryAt: nil, now: t0)
        _ = try await ledger.markSending(b, transport: "smtp", recipient: "n@example.org", now: t0)
        try await ledger.recordOutcome(
            b, attempt: 1, outcome: .transient(code: 451, detail: "451 later", retryAfter: nil), retryAt: t0.addingTimeInterval(300), now: t0)
        _ = try await ledger.markSending(c, transport: "smtp", recipient: "n@example.org", now: t0)
        try await ledger.recordOutcome(c, attempt: 1, outcome: .permanent(code: 550, detail: "550 no such user"), retryAt: nil, now: t0)

        let statuses = Dictionary(uniqueKeysWithValues: try await ledger.deliveries().map { ($0.reminderID, $0.status) })
        #expect(statuses == ["A": "sent", "B": "pending", "C": "failed"])
        #expect(try await ledger.due(now: t0, limit: 10).isEmpty)
        #expect(try await ledger.due(now: t0.addingTimeInterval(300), limit: 10).map(\.key) == [b])
        let receipts = ReceiptCollector()
        try await ledger.receipts { receipts.append($0) }
        #expect(receipts.all.map(\.outcome) == ["sent", "transient", "permanent"])
        #expect(receipts.all.map(\.code) == [250, 451, 550])
        let failedOnly = ReceiptCollector()
        try await ledger.receipts(status: .failed) { failedOnly.append($0) }
        #expect(failedOnly.all.map(\.reminderID) == ["C"])
    }

    @Test func transientPastLifetimeExpires() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest([reminder("A")], sourceFile: "f", queue: "default", priority: 0, now: t0)
        let a = DeliveryKey(reminderID: "A", channel: .email)
        _ = try await ledger.markSending(a, transport: "smtp", recipient: "x", now: t0)
        try await ledger.recordOutcome(a, attempt: 1, outcome: .transient(code: 421, detail: "busy", retryAfter: nil), retryAt: nil, now: t0)
        #expect(try await ledger.deliveries().first?.status == "expired")
    }

    @Test func inDoubtAfterCrashIsHeldByDefault() async throws {
        let path = NSTemporaryDirectory() + "relance-ledger-" + UUID().uuidString + "/ledger.sqlite"
        do {
            let ledger = try Ledger(path: path)
            _ = try await ledger.ingest([reminder("A"), reminder("B")], sourceFile: "f", queue: "default", priority: 0, now: t0)
            _ = try await ledger.markSending(DeliveryKey(reminderID: "A", channel: .email), transport: "smtp", recipient: "x", now: t0)
        }
        let reopened = try Ledger(path: path)
        #expect(try await reopened.recoverInDoubt(resend: false, now: t0) == [DeliveryKey(reminderID: "A", channel: .email)])
        let statuses = Dictionary(uniqueKeysWithValues: try await reopened.deliveries().map { ($0.reminderID, $0.status) })
        #expect(statuses == ["A": "unknown", "B": "pending"])
        #expect(try await reopened.due(now: t0, limit: 10).map(\.key.reminderID) == ["B"])
        let events = try await reopened.events(reminderID: "A").map(\.to)
        #expect(events == ["pending", "sending", "unknown"])
    }

    @Test func inDoubtResendPolicy() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest([reminder("A")], sourceFile: "f", queue: "default", priority: 0, now: t0)
        _ = try await ledger.markSending(DeliveryKey(reminderID: "A", channel: .email), transport: "smtp", recipient: "x", now: t0)
        try await ledger.recoverInDoubt(resend: true, now: t0)
        #expect(try await ledger.due(now: t0, limit: 10).count == 1)
    }

    @Test func expiryOfWaitingDeliveries() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest(
            [reminder("A", expiresAt: t0.addingTimeInterval(10)), reminder("B")], sourceFile: "f", queue: "default", priority: 0, now: t0)
        #expect(try await ledger.expireOverdue(now: t0) == 0)
        #expect(try await ledger.expireOverdue(now: t0.addingTimeInterval(10)) == 1)
        #expect(try await ledger.due(now: t0.addingTimeInterval(10), limit: 10).map(\.key.reminderID) == ["B"])
    }

    @Test func concurrentWritesAreGroupCommitted() async throws {
        let ledger = try temporaryLedger()
        let ids = (0..<200).map { "R\($0)" }
        _ = try await ledger.ingest(ids.map { reminder($0) }, sourceFile: "f", queue: "default", priority: 0, now: t0)
        let attempts = try await withThrowingTaskGroup(of: Int?.self) { group in
            for id in ids {
                group.addTask { try await ledger.markSending(DeliveryKey(reminderID: id, channel: .email), transport: "t", recipient: "x", now: t0) }
            }
            return try await group.reduce(into: [Int?]()) { $0.append($1) }
        }
        #expect(attempts.count == 200)
        #expect(attempts.allSatisfy { $0 == 1 })
        #expect(try await ledger.statusCounts().map(\.count) == [200])
    }

    @Test func aFailingWriteIsUndoneAloneInItsGroupCommit() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest((0..<50).map { reminder("R\($0)") }, sourceFile: "f", queue: "default", priority: 0, now: t0)
        let keys = (0..<50).map { DeliveryKey(reminderID: "R\($0)", channel: .email) }
        let good = keys.dropLast()
        for key in good { _ = try await ledger.markSending(key, transport: "t", recipient: "x", now: t0) }
        // Recording an outcome for a delivery that is not `sending` writes, then throws: its
        // savepoint is rolled back while the writes around it in the same transaction commit.
        let failures = try await withThrowingTaskGroup(of: Bool.self) { group in
            for key in keys {
                group.addTask {
                    do {
                        try await ledger.recordOutcome(key, attempt: 1, outcome: .permanent(code: 550, detail: "no such user"), retryAt: nil, now: t0)
                        return false
                    } catch is StatusTransitionError { return true }
                }
            }
            return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(failures == 1)
        let bad = try #require(try await ledger.deliveries(reminderID: "R49").first)
        #expect(bad.status == "pending")
        #expect(bad.lastError == nil)
        #expect(try await ledger.events(reminderID: "R49").count == 1)
        #expect(try await ledger.deliveries(status: .failed).count == 49)
        // The savepoint statements are reused: the next writes still commit.
        _ = try await ledger.markSending(keys[49], transport: "t", recipient: "x", now: t0)
        #expect(try await ledger.deliveries(status: .sending).count == 1)
    }
}

/// Collects streamed receipts (the callback is @Sendable).
final class ReceiptCollector: @unchecked Sendable {
    // @unchecked: the ledger calls the callback serially, then the test reads after the await.
    private(set) var all: [Receipt] = []
    func append(_ r: Receipt) { all.append(r) }
}

@Suite struct ResolveTests {
    @Test func operatorsSettleInDoubtDeliveries() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest([reminder("A"), reminder("B")], sourceFile: "f", queue: "default", priority: 0, now: t0)
        let a = DeliveryKey(reminderID: "A", channel: .email)
        let b = DeliveryKey(reminderID: "B", channel: .email)
        _ = try await ledger.markSending(a, transport: "smtp", recipient: "x", now: t0)
        _ = try await ledger.markSending(b, transport: "smtp", recipient: "x", now: t0)
        try await ledger.recoverInDoubt(resend: false, now: t0)
        try await ledger.resolve(a, as: .sent, operator: "alice", now: t0)
        try await ledger.resolve(b, as: .resend, operator: "bob", now: t0.addingTimeInterval(60))
        let statuses = Dictionary(uniqueKeysWithValues: try await ledger.deliveries().map { ($0.reminderID, $0.status) })
        #expect(statuses == ["A": "sent", "B": "pending"])
        #expect(try await ledger.due(now: t0.addingTimeInterval(60), limit: 10).map(\.key) == [b])
        #expect(try await ledger.events(reminderID: "A").last?.reason == "resolved by alice as sent (relance resolve)")
        await #expect(throws: Ledger.ResolveError.self) { try await ledger.resolve(a, as: .resend, operator: "eve", now: t0) }
    }
}
