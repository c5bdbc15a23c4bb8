import Foundation
import RelanceCore
import Testing

@testable import RelanceStore

/// A backend of the ledger under test: how to open a fresh, empty store.
struct StoreBackend: Sendable, CustomStringConvertible {
    var description: String
    var make: @Sendable () async throws -> any LedgerStore

    /// Every backend the conformance suite runs against. A new backend (PostgreSQL) adds itself here.
    static let all: [StoreBackend] = [
        StoreBackend(description: "sqlite") { try temporaryLedger() }
    ]
}

/// The contract of `LedgerStore`, through the protocol only, for every backend: what the
/// dispatcher, intake and the webhooks rely on. A backend that passes it plugs in unchanged.
/// The capabilities a new backend has so far are checked against it, with the same bodies, in
/// `IntegrationTests/StoreCapabilityConformance` (where the throwaway PostgreSQL cluster is).
@Suite struct LedgerStoreConformance {
    static func email(_ id: String) -> DeliveryKey { DeliveryKey(reminderID: id, channel: .email) }

    /// An SMS reminder ingested and marked `sending` through Twilio (attempt 1).
    static func sendingSMS(_ store: any LedgerStore, _ id: String) async throws -> DeliveryKey {
        _ = try await store.ingest([reminder(id, channels: [.sms])], sourceFile: "f-\(id)", queue: "default", priority: 0, now: t0)
        let key = DeliveryKey(reminderID: id, channel: .sms)
        #expect(try await store.markSending(key, transport: "twilio", recipient: "+33612345678", now: t0) == 1)
        return key
    }

    @Test(arguments: StoreBackend.all)
    func forgettingADebtorErasesItsBand(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await store.ingest([reminder("A", notBefore: t0.addingTimeInterval(-60), debtor: "LOW")], sourceFile: "a", queue: "bulk", priority: 0, now: t0)
        _ = try await store.ingest([reminder("B", notBefore: t0.addingTimeInterval(-20), debtor: "OTHER")], sourceFile: "b", queue: "bulk", priority: 0, now: t0)
        try await store.replaceRiskBands([(debtor: "LOW", band: 0)])
        #expect(try await store.dueKeys(now: t0).map(\.reminderID) == ["B", "A"])
        // Forgetting a debtor erases its band (receivables record or not): back to age order.
        _ = try await store.eraseReceivablesDebtor("LOW", now: t0)
        #expect(try await store.riskBand(debtorID: "LOW") == nil)
        #expect(try await store.dueKeys(now: t0).map(\.reminderID) == ["A", "B"])
    }

    @Test(arguments: StoreBackend.all)
    func prefetchedContactsAndGroupCandidatesAreWhatTheQueriesSay(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await store.ingest(
            [reminder("P1", notBefore: t0.addingTimeInterval(-30), debtor: "G"), reminder("P2", notBefore: t0.addingTimeInterval(-20), debtor: "G")],
            sourceFile: "g", queue: "default", priority: 0, now: t0)
        _ = try await store.ingest(
            [reminder("EARLIER", notBefore: t0.addingTimeInterval(-90), debtor: "G")], sourceFile: "h", queue: "default", priority: 0, now: t0)
        let earlier = try #require(
            try await store.markSending(Self.email("EARLIER"), transport: "smtp", recipient: "n@example.org", now: t0.addingTimeInterval(-5)))
        try await store.recordOutcome(Self.email("EARLIER"), attempt: earlier, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: t0)
        let since = t0.addingTimeInterval(-86400)
        let due = try await store.due(now: t0, limit: 10, prefetch: Ledger.Prefetch(contactsSince: since, groupLimit: 49)) { _, _ in false }
        let lead = try #require(due.first)
        #expect(lead.key.reminderID == "P1")
        let contacts = try await store.contacts(debtorID: "G", excludingReminder: "P1", since: since)
        #expect(contacts.count == 1)
        #expect(lead.prefetched?.contacts == contacts)
        let group = try await store.groupCandidates(for: lead, now: t0, limit: 49)
        #expect(group.map(\.key.reminderID) == ["P2"])
        #expect(lead.prefetched?.groupCandidates?.map(\.key.reminderID) == group.map(\.key.reminderID))
        #expect(try await store.attemptCount(channel: .email, since: since) == 1)
        // Prefetching stops after the deliveries that can start; the rest come without it.
        _ = try await store.ingest(
            [reminder("OTHER", notBefore: t0.addingTimeInterval(-10), debtor: "H")], sourceFile: "i", queue: "default", priority: 0, now: t0)
        let partly = try await store.due(now: t0, limit: 10, prefetch: Ledger.Prefetch(contactsSince: since, groupLimit: 49, deliveries: 1)) { _, _ in false }
        #expect(partly.map(\.key.reminderID) == ["P1", "OTHER"])
        #expect(partly.map { $0.prefetched != nil } == [true, false])
    }

    @Test(arguments: StoreBackend.all)
    func markingChecksHoldsCancellationsSuppressionAndTheDailyCap(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await store.ingest(
            [reminder("M1"), reminder("M2"), reminder("M3"), reminder("M4"), reminder("M5")], sourceFile: "m", queue: "default", priority: 0, now: t0)
        #expect(try await store.markGroup([Self.email("M1")], transport: "smtp", recipient: "a@example.org", now: t0) == [.attempt(1)])
        #expect(try await store.markGroup([Self.email("M1")], transport: "smtp", recipient: "a@example.org", now: t0) == [.notPending])
        // The daily cap counts the attempt just made.
        #expect(
            try await store.markGroup([Self.email("M2")], transport: "smtp", recipient: "b@example.org", now: t0, dailyCap: (1, t0.addingTimeInterval(-60)))
                == [.overDailyVolume])
        try await store.hold(channel: .email, until: nil, reason: "test", now: t0)
        #expect(try await store.holds(now: t0).count == 1)
        #expect(try await store.markGroup([Self.email("M2")], transport: "smtp", recipient: "b@example.org", now: t0) == [.held])
        #expect(try await store.nextDueDate(now: t0) == nil)
        #expect(try await store.releaseHold(channel: .email) == 1)
        try await store.suppress("c@example.org", reason: "STOP", source: "test", now: t0)
        #expect(try await store.markGroup([Self.email("M3")], transport: "smtp", recipient: "c@example.org", now: t0) == [.suppressed])
        _ = try await store.cancel(CancellationRequest(scope: .reminder, value: "M4", reason: .paid), source: "test", now: t0)
        #expect(try await store.pendingDelivery(Self.email("M4")) == nil)
        let marks = try await store.markGroup([Self.email("M5"), Self.email("M2")], transport: "smtp", recipient: "d@example.org", now: t0)
        #expect(marks == [.attempt(1), .attempt(1)])
        let statuses = Dictionary(uniqueKeysWithValues: try await store.deliveries(reminderID: nil, status: nil).map { ($0.reminderID, $0.status) })
        #expect(statuses == ["M1": "sending", "M2": "sending", "M3": "suppressed", "M4": "cancelled", "M5": "sending"])
    }

    @Test(arguments: StoreBackend.all)
    func concurrentMarksOfOneDeliveryMakeOneAttempt(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await store.ingest([reminder("RACE")], sourceFile: "r", queue: "default", priority: 0, now: t0)
        let marks = try await withThrowingTaskGroup(of: Ledger.Mark?.self) { group in
            for _ in 0..<40 {
                group.addTask { try await store.markGroup([Self.email("RACE")], transport: "smtp", recipient: "n@example.org", now: t0).first }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(marks.filter { $0 == .attempt(1) }.count == 1)
        #expect(marks.filter { $0 == .notPending }.count == 39)
    }

    @Test(arguments: StoreBackend.all)
    func outcomesMoveTheDeliveryAndACrashLeavesItInDoubt(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await store.ingest(["S", "T", "P", "U", "X"].map { reminder($0) }, sourceFile: "o", queue: "default", priority: 0, now: t0)
        for id in ["S", "T", "P", "U", "X"] { _ = try await store.markSending(Self.email(id), transport: "smtp", recipient: "n@example.org", now: t0) }
        try await store.recordOutcome(Self.email("S"), attempt: 1, outcome: .sent(providerID: "MSG-S", code: 250, detail: "ok"), retryAt: nil, now: t0)
        let retry = t0.addingTimeInterval(300)
        try await store.recordOutcome(Self.email("T"), attempt: 1, outcome: .transient(code: 451, detail: "later", retryAfter: nil), retryAt: retry, now: t0)
        try await store.recordOutcome(Self.email("P"), attempt: 1, outcome: .permanent(code: 550, detail: "no such user"), retryAt: nil, now: t0)
        try await store.recordOutcome(Self.email("U"), attempt: 1, outcome: .inDoubt(detail: "no answer"), retryAt: nil, now: t0)
        // X stays `sending`, as a crash would leave it.
        #expect(try await store.recoverInDoubt(resend: false, now: t0) == [Self.email("X")])
        let statuses = Dictionary(uniqueKeysWithValues: try await store.deliveries(reminderID: nil, status: nil).map { ($0.reminderID, $0.status) })
        #expect(statuses == ["S": "sent", "T": "pending", "P": "failed", "U": "unknown", "X": "unknown"])
        #expect(try await store.pendingDelivery(Self.email("T"))?.attempts == 1)
        #expect(try await store.due(now: t0, limit: 10, prefetch: nil) { _, _ in false }.isEmpty)
        #expect(try await store.due(now: retry, limit: 10, prefetch: nil) { _, _ in false }.map(\.key.reminderID) == ["T"])
        let counts = try await store.statusCounts()
        #expect(counts.first { $0.status == "sent" }?.count == 1)
        #expect(await store.writeProblem(now: t0) == nil)
    }

    @Test(arguments: StoreBackend.all)
    func callbacksApplyOnceAndUnknownOnesWaitAsOrphans(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        let key = try await Self.sendingSMS(store, "CB")
        let early = StatusCallback(provider: "twilio", messageID: "SM-LATE", status: .delivered, raw: ["MessageStatus": "delivered"])
        #expect(try await store.apply(early, now: t0) == .orphan)
        try await store.recordOutcome(key, attempt: 1, outcome: .sent(providerID: "SM-1", code: 201, detail: "queued"), retryAt: nil, now: t0)
        let delivered = StatusCallback(provider: "twilio", messageID: "SM-1", status: .delivered, raw: ["MessageStatus": "delivered", "Quote": "\"é\\"])
        #expect(try await store.apply(delivered, replayID: "twilio:token-1", now: t0) == .applied)
        #expect(try await store.apply(delivered, replayID: "twilio:token-1", now: t0) == .replay)
        #expect(try await store.apply(delivered, now: t0) == .duplicate)
        #expect(try await store.deliveries(reminderID: "CB").first?.status == "delivered")
    }

    @Test(arguments: StoreBackend.all)
    func aFailoverRecordsTheProviderThatWasUsed(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        let key = try await Self.sendingSMS(store, "FO")
        // Twilio was down: the backup provider took the message and gave its own id.
        try await store.recordOutcome(key, attempt: 1, outcome: .sent(providerID: "V-1", code: 200, detail: "ok"), retryAt: nil, now: t0, via: "vonage")
        let fromPrimary = StatusCallback(provider: "twilio", messageID: "V-1", status: .delivered, raw: [:])
        #expect(try await store.apply(fromPrimary, now: t0) == .orphan)
        let fromBackup = StatusCallback(provider: "vonage", messageID: "V-1", status: .delivered, raw: [:])
        #expect(try await store.apply(fromBackup, now: t0) == .applied)
        #expect(try await store.deliveries(reminderID: "FO").first?.status == "delivered")
    }

    @Test(arguments: StoreBackend.all)
    func policyDecisionsExpiryAndPauses(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await store.ingest(
            [reminder("DEF"), reminder("EXP", expiresAt: t0.addingTimeInterval(60)), reminder("CAN"), reminder("FAIL"), reminder("PAUSE")],
            sourceFile: "p", queue: "default", priority: 0, now: t0)
        let later = t0.addingTimeInterval(3600)
        try await store.deferDelivery(Self.email("DEF"), until: later, reason: "quiet hours", now: t0)
        #expect(try await store.pendingDelivery(Self.email("DEF")) != nil)
        #expect(!(try await store.dueKeys(now: t0).contains(Self.email("DEF"))))
        #expect(try await store.dueKeys(now: later).contains(Self.email("DEF")))
        #expect(try await store.expireOverdue(now: t0.addingTimeInterval(120)) == 1)
        try await store.cancelDelivery(Self.email("CAN"), reason: "paid", now: t0)
        try await store.fail(Self.email("FAIL"), recipient: "n@example.org", reason: "no window", now: t0)
        _ = try await store.cancel(CancellationRequest(scope: .reminder, value: "PAUSE", reason: .promiseToPay, until: later), source: "test", now: t0)
        var statuses = Dictionary(uniqueKeysWithValues: try await store.deliveries(reminderID: nil, status: nil).map { ($0.reminderID, $0.status) })
        #expect(statuses == ["DEF": "pending", "EXP": "expired", "CAN": "cancelled", "FAIL": "failed", "PAUSE": "paused"])
        #expect(try await store.resumePaused(now: later.addingTimeInterval(1)) == 1)
        statuses = Dictionary(uniqueKeysWithValues: try await store.deliveries(reminderID: nil, status: nil).map { ($0.reminderID, $0.status) })
        #expect(statuses["PAUSE"] == "pending")
        let paid = try await store.paymentsFor(invoices: ["F"])
        #expect(paid.isEmpty)
    }

    @Test(arguments: StoreBackend.all)
    func retentionErasesWhatIsDone(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await store.ingest([reminder("R1", debtor: "ERASE"), reminder("R2")], sourceFile: "r", queue: "default", priority: 0, now: t0)
        _ = try await store.markSending(Self.email("R1"), transport: "smtp", recipient: "n@example.org", now: t0)
        try await store.recordOutcome(Self.email("R1"), attempt: 1, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: t0)
        #expect(try await store.reminderIDs(debtorID: "ERASE") == ["R1"])
        let candidates = try await store.retentionCandidates(before: t0.addingTimeInterval(86400), limit: 10)
        #expect(candidates == ["R1"])
        let erasure = try await store.erase(reminderIDs: candidates, reason: "retention", now: t0)
        #expect(erasure != Ledger.Erasure())
        // An erased reminder dropped again is a duplicate, never sent twice.
        #expect(try await store.ingest([reminder("R1", debtor: "ERASE")], sourceFile: "again", queue: "default", priority: 0, now: t0).duplicates == ["R1"])
    }
}
