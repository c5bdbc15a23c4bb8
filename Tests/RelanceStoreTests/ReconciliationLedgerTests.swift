import Foundation
import RelanceCore
import Testing

@testable import RelanceStore

/// The poll schedule of SMS reconciliation in the ledger: what is due, in what order, and what
/// never is (in doubt, not accepted, no status API, a final status already).
@Suite struct ReconciliationLedgerTests {
    func sent(_ ledger: Ledger, _ id: String, transport: String = "twilio", outcome: SendOutcome, at: Date) async throws {
        _ = try await ledger.ingest([reminder(id, channels: [.sms])], sourceFile: "f", queue: "default", priority: 0, now: at)
        let key = DeliveryKey(reminderID: id, channel: .sms)
        let n = try #require(try await ledger.markSending(key, transport: transport, recipient: "+33612345678", now: at))
        try await ledger.recordOutcome(key, attempt: n, outcome: outcome, retryAt: nil, now: at)
    }

    @Test func onlyAcceptedSMSWithAStatusAPIAreDueInOrder() async throws {
        let ledger = try temporaryLedger()
        try await sent(ledger, "B", outcome: .sent(providerID: "SM2", code: 201, detail: "ok"), at: t0.addingTimeInterval(10))
        try await sent(ledger, "A", outcome: .sent(providerID: "SM1", code: 201, detail: "ok"), at: t0)
        try await sent(ledger, "V", transport: "vonage", outcome: .sent(providerID: "P1,P2", code: 200, detail: "ok"), at: t0)
        try await sent(ledger, "U", outcome: .inDoubt(detail: "no answer"), at: t0)
        try await sent(ledger, "O", transport: "outbox", outcome: .sent(providerID: "line-1", code: nil, detail: "ok"), at: t0)
        try await sent(ledger, "G", transport: "generic", outcome: .sent(providerID: "g1", code: 200, detail: "ok"), at: t0)
        #expect(try await ledger.pollCandidates(dueBy: t0.addingTimeInterval(-1), limit: 10).isEmpty, "nothing is due before its time")
        let due = try await ledger.pollCandidates(dueBy: t0.addingTimeInterval(60), limit: 10)
        #expect(Set(due.map(\.key.reminderID)) == ["A", "V", "B"], "never the in-doubt one, the outbox or a gateway without a status API")
        #expect(due.last?.key.reminderID == "B", "oldest first")
        #expect(due.first { $0.key.reminderID == "V" }?.messageIDs == ["P1", "P2"], "every part")
        // A final status (a callback) takes it out; a poll puts it one interval later; giving up takes it out with an event.
        _ = try await ledger.apply(StatusCallback(provider: "twilio", messageID: "SM1", status: .delivered, raw: [:]), now: t0)
        try await ledger.polled(DeliveryKey(reminderID: "B", channel: .sms), next: t0.addingTimeInterval(100), giveUp: nil, now: t0)
        try await ledger.polled(DeliveryKey(reminderID: "V", channel: .sms), next: nil, giveUp: "vonage gave no final status", now: t0)
        #expect(try await ledger.pollCandidates(dueBy: t0.addingTimeInterval(60), limit: 10).isEmpty)
        #expect(try await ledger.pollCandidates(dueBy: t0.addingTimeInterval(100), limit: 10).map(\.key.reminderID) == ["B"])
        #expect(try await ledger.events(reminderID: "V").last?.reason == "no final status: vonage gave no final status")
        #expect(try await ledger.deliveries(reminderID: "V").first?.status == "sent")
    }

    @Test func aPartWithAFinalStatusIsNotAskedAboutAgain() async throws {
        let ledger = try temporaryLedger()
        try await sent(ledger, "V", transport: "vonage", outcome: .sent(providerID: "P1,P2", code: 200, detail: "ok"), at: t0)
        _ = try await ledger.apply(StatusCallback(provider: "vonage", messageID: "P1", status: .delivered, raw: [:]), now: t0)
        #expect(try await ledger.pollCandidates(dueBy: t0, limit: 10).first?.messageIDs == ["P2"])
    }
}
