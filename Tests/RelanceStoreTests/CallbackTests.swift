import Foundation
import GRDB
import RelanceCore
import Testing

@testable import RelanceStore

@Suite struct CallbackTests {
    /// A ledger holding reminder A sent on SMS by `provider` with `ids`.
    func sentLedger(provider: String = "twilio", ids: String = "SM1") async throws -> (Ledger, DeliveryKey) {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest([reminder("A", channels: [.sms])], sourceFile: "f", queue: "default", priority: 0, now: t0)
        let key = DeliveryKey(reminderID: "A", channel: .sms)
        let attempt = try #require(try await ledger.markSending(key, transport: provider, recipient: "+33612345678", now: t0))
        try await ledger.recordOutcome(key, attempt: attempt, outcome: .sent(providerID: ids, code: 201, detail: "ok"), retryAt: nil, now: t0)
        return (ledger, key)
    }

    func status(_ ledger: Ledger) async throws -> String? { try await ledger.deliveries(reminderID: "A").first?.status }

    func callback(_ status: StatusCallback.Status, id: String = "SM1", provider: String = "twilio") -> StatusCallback {
        StatusCallback(provider: provider, messageID: id, status: status, raw: ["MessageStatus": status.rawValue])
    }

    @Test func forwardOnlyAndDuplicates() async throws {
        let (ledger, _) = try await sentLedger()
        #expect(try await ledger.apply(callback(.inFlight), now: t0) == .recorded)
        #expect(try await status(ledger) == "sent")
        #expect(try await ledger.apply(callback(.delivered), now: t0) == .applied)
        #expect(try await status(ledger) == "delivered")
        #expect(try await ledger.apply(callback(.delivered), now: t0) == .duplicate)
        #expect(try await ledger.apply(callback(.inFlight), now: t0) == .duplicate, "a late 'sent' after delivered changes nothing")
        #expect(try await ledger.apply(callback(.undelivered), now: t0) == .recorded, "no regress after delivered")
        #expect(try await status(ledger) == "delivered")
        let kept = try await ledger.callbacks(reminderID: "A")
        #expect(kept.map(\.result) == ["recorded", "applied", "duplicate", "duplicate", "recorded"], "every callback is kept")
        #expect(try await ledger.events(reminderID: "A").last?.reason.contains("kept as an event, no change") == true)
    }

    @Test func outOfOrderEndsRight() async throws {
        let (ledger, _) = try await sentLedger()
        _ = try await ledger.apply(callback(.delivered), now: t0)
        _ = try await ledger.apply(callback(.inFlight), now: t0)
        #expect(try await status(ledger) == "delivered")
    }

    @Test func multiPartMessageNeedsEveryPart() async throws {
        let (ledger, _) = try await sentLedger(provider: "vonage", ids: "P1,P2,P3")
        #expect(try await ledger.apply(callback(.delivered, id: "P1", provider: "vonage"), now: t0) == .recorded)
        #expect(try await ledger.apply(callback(.delivered, id: "P2", provider: "vonage"), now: t0) == .recorded)
        #expect(try await status(ledger) == "sent")
        #expect(try await ledger.apply(callback(.delivered, id: "P3", provider: "vonage"), now: t0) == .applied)
        #expect(try await status(ledger) == "delivered")

        let (other, _) = try await sentLedger(provider: "vonage", ids: "Q1,Q2")
        _ = try await other.apply(callback(.delivered, id: "Q1", provider: "vonage"), now: t0)
        #expect(try await other.apply(callback(.undelivered, id: "Q2", provider: "vonage"), now: t0) == .applied)
        #expect(try await status(other) == "undelivered", "one failed part fails the message")
    }

    @Test func callbackBeforeTheSendIsCommittedIsAppliedLater() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest([reminder("A", channels: [.sms])], sourceFile: "f", queue: "default", priority: 0, now: t0)
        let key = DeliveryKey(reminderID: "A", channel: .sms)
        let attempt = try #require(try await ledger.markSending(key, transport: "twilio", recipient: "+33612345678", now: t0))
        // The gateway is faster than our commit.
        #expect(try await ledger.apply(callback(.delivered, id: "SMfast"), now: t0) == .orphan)
        #expect(try await ledger.callbacks(reminderID: nil).map(\.messageID) == ["SMfast"])
        try await ledger.recordOutcome(key, attempt: attempt, outcome: .sent(providerID: "SMfast", code: 201, detail: "ok"), retryAt: nil, now: t0)
        #expect(try await status(ledger) == "delivered", "the orphan was applied as soon as the id was known")
        #expect(try await ledger.callbacks(reminderID: "A").map(\.result) == ["late-applied"])
    }

    @Test func orphansOfEveryPartAreAppliedInArrivalOrder() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest([reminder("A", channels: [.sms])], sourceFile: "f", queue: "default", priority: 0, now: t0)
        let key = DeliveryKey(reminderID: "A", channel: .sms)
        let attempt = try #require(try await ledger.markSending(key, transport: "vonage", recipient: "+33612345678", now: t0))
        // Both parts' callbacks come before the send is committed, the second part's first.
        #expect(try await ledger.apply(callback(.delivered, id: "Q2", provider: "vonage"), now: t0) == .orphan)
        #expect(try await ledger.apply(callback(.delivered, id: "Q1", provider: "vonage"), now: t0) == .orphan)
        try await ledger.recordOutcome(key, attempt: attempt, outcome: .sent(providerID: "Q1,Q2", code: 200, detail: "ok"), retryAt: nil, now: t0)
        #expect(try await status(ledger) == "delivered", "delivered once both parts are")
        let callbacks = try await ledger.callbacks(reminderID: "A")
        #expect(callbacks.map(\.messageID) == ["Q2", "Q1"])
        #expect(callbacks.map(\.result) == ["late-recorded", "late-applied"], "the first one alone does not settle the message")
    }

    @Test func orphansExpire() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.apply(callback(.delivered, id: "SMold"), now: t0)
        _ = try await ledger.apply(callback(.delivered, id: "SMnew"), now: t0.addingTimeInterval(90_000))
        #expect(try await ledger.callbacks(reminderID: nil).map(\.messageID) == ["SMnew"], "orphans older than the TTL (24 h) are dropped")
    }

    @Test func anOptOutCommittedBeforeTheMarkIsNeverMissed() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest([reminder("A", channels: [.sms])], sourceFile: "f", queue: "default", priority: 0, now: t0)
        try await ledger.suppress("+33612345678", reason: "STOP", source: "twilio", now: t0)
        let key = DeliveryKey(reminderID: "A", channel: .sms)
        #expect(try await ledger.markSending(key, transport: "twilio", recipient: "+33612345678", now: t0) == nil)
        #expect(try await ledger.deliveries(reminderID: "A").first?.status == "suppressed")
        let attempts = ReceiptCollector()
        try await ledger.receipts { attempts.append($0) }
        #expect(attempts.all.isEmpty, "no attempt: nothing was sent")
    }

    @Test func suppressionAndWebhookIDs() async throws {
        let ledger = try temporaryLedger()
        try await ledger.suppress("+33612345678", reason: "STOP", source: "twilio", now: t0)
        try await ledger.suppress("+33612345678", reason: "STOP", source: "twilio", now: t0)
        #expect(try await ledger.isSuppressed("+33612345678"))
        #expect(try await !ledger.isSuppressed("+33698765432"))
    }

    @Test func aReplayIDSeenLongerAgoThanTheWindowIsNotAReplayEvenBeforeItsPurge() async throws {
        let (ledger, _) = try await sentLedger(provider: "generic", ids: "GEN-1")
        let window = Duration.milliseconds(250)
        let first = try await ledger.apply(
            callback(.delivered, id: "GEN-1", provider: "generic"), replayID: "generic:m", now: t0, orphanTTL: .seconds(86400), replayWindow: window)
        #expect(first == .applied)
        // Within the window: a replay. Half a second later (no purge yet, they run once a second): past the window, not a replay.
        let soon = try await ledger.apply(
            callback(.delivered, id: "GEN-1", provider: "generic"), replayID: "generic:m", now: t0.addingTimeInterval(0.1), orphanTTL: .seconds(86400),
            replayWindow: window)
        #expect(soon == .replay)
        let later = try await ledger.apply(
            callback(.delivered, id: "GEN-1", provider: "generic"), replayID: "generic:m", now: t0.addingTimeInterval(0.5), orphanTTL: .seconds(86400),
            replayWindow: window)
        #expect(later == .duplicate)
        let again = try await ledger.apply(
            callback(.delivered, id: "GEN-1", provider: "generic"), replayID: "generic:m", now: t0.addingTimeInterval(0.6), orphanTTL: .seconds(86400),
            replayWindow: window)
        #expect(again == .replay, "seen again at +0.5 s: within the window")
    }

    /// The webhook id used to be committed as seen before the status was applied: when the apply
    /// failed (503), the gateway's retry was answered "duplicate" and the status was lost.
    @Test func aReplayIDIsRecordedOnlyWithItsApply() async throws {
        let (ledger, _) = try await sentLedger(provider: "generic", ids: "GEN-1")
        let failing = try DatabaseQueue(path: ledger.path)
        try await failing.write { db in
            try db.execute(sql: "CREATE TRIGGER fail_callbacks BEFORE INSERT ON callback BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        }
        await #expect(throws: (any Error).self) {
            try await ledger.apply(self.callback(.delivered, id: "GEN-1", provider: "generic"), replayID: "generic:msg_1", now: t0)
        }
        try await failing.write { db in try db.execute(sql: "DROP TRIGGER fail_callbacks") }
        #expect(try await ledger.apply(callback(.delivered, id: "GEN-1", provider: "generic"), replayID: "generic:msg_1", now: t0) == .applied)
        #expect(try await status(ledger) == "delivered")
        #expect(try await ledger.apply(callback(.delivered, id: "GEN-1", provider: "generic"), replayID: "generic:msg_1", now: t0) == .replay)
        #expect(try await ledger.callbacks(reminderID: "A").count == 1, "a replay leaves no second row")
    }
}

@Suite struct GroupedMessageTests {
    @Test func aCallbackForAGroupedMessageSettlesEveryReminderInIt() async throws {
        let ledger = try temporaryLedger()
        _ = try await ledger.ingest(
            [reminder("G1", channels: [.sms], debtor: "D"), reminder("G2", channels: [.sms], debtor: "D")], sourceFile: "f", queue: "default", priority: 0,
            now: t0)
        let keys = [DeliveryKey(reminderID: "G1", channel: .sms), DeliveryKey(reminderID: "G2", channel: .sms)]
        let marks = try await ledger.markGroup(keys, transport: "twilio", recipient: "+33612345678", now: t0)
        #expect(marks == [.attempt(1), .attempt(1)])
        for key in keys {
            try await ledger.recordOutcome(key, attempt: 1, outcome: .sent(providerID: "SMG", code: 201, detail: "queued"), retryAt: nil, now: t0)
        }
        // One contact for the caps, not two.
        #expect(try await ledger.contacts(debtorID: "D", excludingReminder: "X", since: t0.addingTimeInterval(-1)).count == 1)
        // A message of its own, sent meanwhile to another debtor, is not part of the group.
        _ = try await ledger.ingest([reminder("Z", channels: [.sms], debtor: "E")], sourceFile: "g", queue: "default", priority: 0, now: t0)
        let alone = DeliveryKey(reminderID: "Z", channel: .sms)
        _ = try await ledger.markSending(alone, transport: "twilio", recipient: "+33698765432", now: t0)
        try await ledger.recordOutcome(alone, attempt: 1, outcome: .sent(providerID: "SMZ", code: 201, detail: "queued"), retryAt: nil, now: t0)
        _ = try await ledger.apply(StatusCallback(provider: "twilio", messageID: "SMG", status: .delivered, raw: [:]), now: t0.addingTimeInterval(5))
        let statuses = Dictionary(uniqueKeysWithValues: try await ledger.deliveries().map { ($0.reminderID, $0.status) })
        #expect(statuses == ["G1": "delivered", "G2": "delivered", "Z": "sent"])
        #expect(try await ledger.apply(StatusCallback(provider: "twilio", messageID: "SMZ", status: .undelivered, raw: [:]), now: t0) == .applied)
        #expect(try await ledger.deliveries(reminderID: "Z").first?.status == "undelivered")
    }
}
