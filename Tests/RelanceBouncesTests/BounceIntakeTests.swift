import Foundation
import Logging
import RelanceCore
import RelanceStore
import Testing

@testable import RelanceBounces

/// The bounce path from a message to the ledger, on a real SQLite ledger.
@Suite struct BounceIntakeTests {
    static let secret = "bounce-secret-for-the-tests-0001"
    let verp = VERP(domain: "relances.example.fr", secret: Self.secret)
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func reminder(_ id: String, email: String = "jean.martin@example.org", fallback: [Channel] = [.sms]) -> Reminder {
        Reminder(
            id: id, stage: "reminder_1", channels: [.email], fallback: fallback,
            debtor: Debtor(
                id: "C-1", name: "Jean Martin", email: email, phone: "+33612345678", country: "FR", locale: "fr-FR", timezone: "Europe/Paris",
                kind: .consumer),
            invoices: [
                Invoice(
                    number: "F-\(id)", amount: "120.00", currency: "EUR", issuedOn: CivilDate(year: 2026, month: 10, day: 1),
                    dueOn: CivilDate(year: 2026, month: 10, day: 31))
            ])
    }

    /// A ledger with these reminders' emails sent (`sent`), or only marked (`sending`) when `record` is false.
    func ledger(_ reminders: [Reminder], record: Bool = true) async throws -> Ledger {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("relance-bounce-\(UUID().uuidString)")
        let ledger = try Ledger(path: dir.appendingPathComponent("ledger.sqlite").path)
        _ = try await ledger.ingest(reminders, sourceFile: "f", queue: "default", priority: 0, now: t0)
        for r in reminders {
            let key = DeliveryKey(reminderID: r.id, channel: .email)
            let attempt = try #require(try await ledger.markSending(key, transport: "smtp", recipient: r.debtor.email ?? "", now: t0))
            if record {
                try await ledger.recordOutcome(key, attempt: attempt, outcome: .sent(providerID: nil, code: 250, detail: "250 OK"), retryAt: nil, now: t0)
            }
        }
        return ledger
    }

    func intake(_ ledger: Ledger, softLimit: Int = 3) -> BounceIntake {
        BounceIntake(verp: verp, rules: BounceRules(softLimit: softLimit), ledger: ledger, logger: Logger(label: "test"))
    }

    /// The Postfix hard-bounce fixture, returned to `reminderID`'s VERP address (or `token`).
    func bounce(_ reminderID: String, token: String? = nil, status: String = "5.1.1", action: String = "failed", messageID: String? = nil) throws -> Data {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/bounces/postfix-hard-5.1.1.eml")
        var text = try String(contentsOf: url, encoding: .utf8)
        let token = token ?? verp.token(reminderID: reminderID)
        text = text.replacingOccurrences(of: "abc123", with: token).replacingOccurrences(of: "R-1.email.tok", with: token)
        text = text.replacingOccurrences(of: "Status: 5.1.1", with: "Status: \(status)").replacingOccurrences(of: "Action: failed", with: "Action: \(action)")
        text = "Message-ID: <\(messageID ?? UUID().uuidString)@mx.example.fr>\n" + text
        return Data(text.utf8)
    }

    func status(_ ledger: Ledger, _ id: String, _ channel: Channel = .email) async throws -> String? {
        try await ledger.deliveries(reminderID: id).first { $0.channel == channel.rawValue }?.status
    }

    @Test func aHardBounceBouncesSuppressesAndFallsBack() async throws {
        let ledger = try await ledger([reminder("R-1")])
        let outcome = try await intake(ledger).process(try bounce("R-1", messageID: "dsn-1"), source: "pipe", now: t0)
        #expect(outcome == .applied(DeliveryKey(reminderID: "R-1", channel: .email), .bounced(address: "jean.martin@example.org", fallback: [.sms])))
        #expect(try await status(ledger, "R-1") == "bounced")
        #expect(try await status(ledger, "R-1", .sms) == "pending", "the SMS fallback takes over")
        #expect(try await ledger.isSuppressed("Jean.Martin@example.org"))
        var entries: [Ledger.Suppression] = []
        let collected = Collected()
        try await ledger.forEachSuppression { collected.append($0) }
        entries = collected.items
        #expect(entries.map(\.reason) == ["bounced"] && entries.map(\.source) == ["bounce:pipe"])
        let events = try await ledger.events(reminderID: "R-1").map(\.reason)
        #expect(events.contains { $0.contains("hard bounce for jean.martin@example.org (5.1.1") && $0.contains("via pipe") })
        // The same message again, by another way in: applied once.
        #expect(try await intake(ledger).process(try bounce("R-1", messageID: "dsn-1"), source: "maildir", now: t0).recognised)
        #expect(
            try await intake(ledger).process(try bounce("R-1", messageID: "dsn-1"), source: "maildir", now: t0)
                == .applied(DeliveryKey(reminderID: "R-1", channel: .email), .duplicate))
        #expect(try await ledger.deliveries(reminderID: "R-1").count == 2, "one fallback, not two")
    }

    @Test func aForgedOrAlteredTokenChangesNothing() async throws {
        let ledger = try await ledger([reminder("R-1")])
        let forger = VERP(domain: "relances.example.fr", secret: "not-the-secret-of-this-ledger-00")
        let forged = try await intake(ledger).process(try bounce("R-1", token: forger.token(reminderID: "R-1")), source: "pipe", now: t0)
        guard case .forged = forged else { Issue.record("\(forged)"); return }
        var altered = verp.token(reminderID: "R-1")
        altered.removeLast()
        altered.append(altered.last == "a" ? "b" : "a")
        guard case .forged = try await intake(ledger).process(try bounce("R-1", token: altered), source: "pipe", now: t0) else {
            Issue.record("an altered token was accepted")
            return
        }
        #expect(try await status(ledger, "R-1") == "sent")
        #expect(!(try await ledger.isSuppressed("jean.martin@example.org")))
        #expect(try await ledger.deliveries(reminderID: "R-1").count == 1)
    }

    @Test func softBouncesCountPerMessageUntilTheLimit() async throws {
        let reminders = (1...3).map { reminder("S-\($0)", fallback: []) }
        let ledger = try await ledger(reminders)
        let intake = intake(ledger, softLimit: 3)
        // A delay warning then the expiry of the same message count once.
        #expect(
            try await intake.process(try bounce("S-1", status: "4.4.1", action: "delayed"), source: "pipe", now: t0)
                == .applied(DeliveryKey(reminderID: "S-1", channel: .email), .softCounted(count: 1, limit: 3)))
        #expect(
            try await intake.process(try bounce("S-1", status: "4.4.7"), source: "pipe", now: t0)
                == .applied(DeliveryKey(reminderID: "S-1", channel: .email), .softCounted(count: 1, limit: 3)))
        #expect(
            try await intake.process(try bounce("S-2", status: "4.2.2"), source: "pipe", now: t0.addingTimeInterval(86_400))
                == .applied(DeliveryKey(reminderID: "S-2", channel: .email), .softCounted(count: 2, limit: 3)))
        #expect(try await status(ledger, "S-1") == "sent", "a soft bounce changes no status")
        #expect(try await status(ledger, "S-2") == "sent")
        #expect(!(try await ledger.isSuppressed("jean.martin@example.org")))
        // The third message within 30 days: a hard bounce.
        #expect(
            try await intake.process(try bounce("S-3", status: "4.2.2"), source: "pipe", now: t0.addingTimeInterval(2 * 86_400))
                == .applied(DeliveryKey(reminderID: "S-3", channel: .email), .bounced(address: "jean.martin@example.org", fallback: [])))
        #expect(try await ledger.isSuppressed("jean.martin@example.org"))
        #expect(try await ledger.events(reminderID: "S-3").contains { $0.reason.contains("3 messages soft-bounced within 30 days: counts as hard") })
    }

    @Test func softBouncesOutsideTheWindowDoNotCount() async throws {
        let ledger = try await ledger((1...3).map { reminder("W-\($0)", fallback: []) })
        let intake = intake(ledger, softLimit: 3)
        _ = try await intake.process(try bounce("W-1", status: "4.2.2"), source: "pipe", now: t0)
        _ = try await intake.process(try bounce("W-2", status: "4.2.2"), source: "pipe", now: t0.addingTimeInterval(31 * 86_400))
        #expect(
            try await intake.process(try bounce("W-3", status: "4.2.2"), source: "pipe", now: t0.addingTimeInterval(32 * 86_400))
                == .applied(DeliveryKey(reminderID: "W-3", channel: .email), .softCounted(count: 2, limit: 3)))
    }

    @Test func aBounceBeforeTheSendIsRecordedIsKeptForLater() async throws {
        let ledger = try await ledger([reminder("R-1")], record: false)
        let early = try await intake(ledger).process(try bounce("R-1", messageID: "fast"), source: "pipe", now: t0)
        #expect(early.retryLater && !early.recognised)
        #expect(try await status(ledger, "R-1") == "sending")
        // Once the send is recorded, the same message applies.
        try await ledger.recordOutcome(
            DeliveryKey(reminderID: "R-1", channel: .email), attempt: 1, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: t0)
        #expect(try await intake(ledger).process(try bounce("R-1", messageID: "fast"), source: "pipe", now: t0).recognised)
        #expect(try await status(ledger, "R-1") == "bounced")
    }

    @Test func aHardBounceAfterAFinalStatusOrInDoubtSuppressesButMovesNothing() async throws {
        let ledger = try await ledger([reminder("R-1")], record: false)
        try await ledger.recordOutcome(
            DeliveryKey(reminderID: "R-1", channel: .email), attempt: 1, outcome: .inDoubt(detail: "timeout after DATA"), retryAt: nil, now: t0)
        let outcome = try await intake(ledger).process(try bounce("R-1"), source: "imap", now: t0)
        #expect(outcome == .applied(DeliveryKey(reminderID: "R-1", channel: .email), .suppressed(address: "jean.martin@example.org", status: .unknown)))
        #expect(try await status(ledger, "R-1") == "unknown", "a bounce never settles an in-doubt delivery")
        #expect(try await ledger.events(reminderID: "R-1").last?.reason.contains("settle it with relance resolve") == true)
        #expect(try await ledger.isSuppressed("jean.martin@example.org"))
    }

    @Test func notBouncesAndStrangersAreIgnored() async throws {
        let ledger = try await ledger([reminder("R-1")])
        let vacation = Data(
            """
            From: jean.martin@example.org
            To: bounces+\(verp.token(reminderID: "R-1"))@relances.example.fr
            Subject: Absence du bureau
            Auto-Submitted: auto-replied

            Je suis absent jusqu'au 3 décembre.
            """.utf8)
        #expect(try await intake(ledger).process(vacation, source: "pipe", now: t0) == .ignored(.autoReply))
        var text = String(decoding: try bounce("R-1"), as: UTF8.self)
        text = text.replacingOccurrences(of: verp.token(reminderID: "R-1"), with: "x")
            .replacingOccurrences(of: "relances.example.fr", with: "newsletter.example.com")
        #expect(try await intake(ledger).process(Data(text.utf8), source: "pipe", now: t0) == .unmatched)
        #expect(try await status(ledger, "R-1") == "sent")
    }

    @Test func aGroupedMessageBouncesForEveryReminderInIt() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("relance-bounce-\(UUID().uuidString)")
        let ledger = try Ledger(path: dir.appendingPathComponent("ledger.sqlite").path)
        _ = try await ledger.ingest([reminder("G-1", fallback: []), reminder("G-2", fallback: [])], sourceFile: "f", queue: "default", priority: 0, now: t0)
        let keys = ["G-1", "G-2"].map { DeliveryKey(reminderID: $0, channel: .email) }
        let marks = try await ledger.markGroup(keys, transport: "smtp", recipient: "jean.martin@example.org", now: t0)
        for (key, mark) in zip(keys, marks) {
            guard case .attempt(let n) = mark else { Issue.record("not marked"); return }
            try await ledger.recordOutcome(key, attempt: n, outcome: .sent(providerID: nil, code: 250, detail: "ok"), retryAt: nil, now: t0)
        }
        _ = try await intake(ledger).process(try bounce("G-1"), source: "pipe", now: t0)
        #expect(try await status(ledger, "G-1") == "bounced")
        #expect(try await status(ledger, "G-2") == "bounced", "the message was shared: so is its fate")
    }
}

/// Items collected from a `@Sendable` callback.
final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Ledger.Suppression] = []
    func append(_ item: Ledger.Suppression) { lock.withLock { storage.append(item) } }
    var items: [Ledger.Suppression] { lock.withLock { storage } }
}
