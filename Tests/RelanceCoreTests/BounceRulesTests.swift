import Foundation
import Testing

@testable import RelanceCore

/// What an authenticated bounce does, decided without I/O (`BounceRules`), and the poll schedule
/// of SMS reconciliation (`PollSchedule`).
@Suite struct BounceRulesTests {
    let rules = BounceRules(softLimit: 3, softWindow: .seconds(30 * 86_400))
    let hard = BounceClassifier.Recipient(address: "a@example.org", kind: .hard, status: "5.1.1", diagnostic: "550 5.1.1 User unknown")
    let soft = BounceClassifier.Recipient(address: "a@example.org", kind: .soft, status: "4.2.2", diagnostic: "mailbox full")

    @Test func everyStatusAndKind() {
        for status in DeliveryStatus.allCases {
            let h = rules.decide(hard, softCount: 0, current: status, source: "pipe")
            if status == .sending {
                #expect(h.retryLater && !h.suppress && !h.bounce, "a bounce before the send is recorded waits")
                continue
            }
            #expect(h.hard && h.suppress, "\(status): a hard bounce always suppresses the address")
            #expect(h.bounce == (status == .sent), "\(status): only a sent delivery becomes bounced (forward-only)")
            let s = rules.decide(soft, softCount: 1, current: status, source: "pipe")
            #expect(!s.hard && !s.suppress && !s.bounce, "\(status): one soft bounce changes nothing")
        }
        #expect(rules.decide(hard, softCount: 0, current: .unknown, source: "pipe").reason.contains("settle it with relance resolve"))
        #expect(rules.decide(hard, softCount: 0, current: .delivered, source: "imap").reason.hasSuffix("the delivery stays delivered"))
    }

    @Test func theSoftLimitMakesItHard() {
        #expect(!rules.decide(soft, softCount: 2, current: .sent, source: "pipe").hard)
        let third = rules.decide(soft, softCount: 3, current: .sent, source: "maildir")
        #expect(third.hard && third.bounce && third.suppress)
        #expect(third.reason == "soft bounce for a@example.org (4.2.2 mailbox full) via maildir; 3 messages soft-bounced within 30 days: counts as hard")
        #expect(rules.decide(soft, softCount: 1, current: .sent, source: "pipe").reason.hasSuffix("; 1 of 3 within 30 days"))
        #expect(BounceRules(softLimit: 1).decide(soft, softCount: 1, current: .sent, source: "pipe").bounce, "a limit of 1: every soft bounce is hard")
    }

    @Test func theRecipientAboutTheAddressSentToDecides() {
        let other = BounceClassifier.Recipient(address: "b@example.org", kind: .hard, status: "5.1.1")
        let mine = BounceClassifier.Recipient(address: "A@Example.org", kind: .soft, status: "4.2.2")
        #expect(BounceRules.concerning([other, mine], sentTo: "a@example.org") == mine, "another recipient's hard bounce is not ours")
        let mineHard = BounceClassifier.Recipient(address: "a@example.org", kind: .hard, status: "5.1.1")
        #expect(BounceRules.concerning([mine, mineHard], sentTo: "a@example.org") == mineHard, "several blocks for one address: the worst")
        #expect(BounceRules.concerning([other], sentTo: "alias@example.org") == other, "a forward rewrote it: the report's worst")
        #expect(BounceRules.concerning([], sentTo: "a@example.org") == nil)
    }

    @Test func diagnosticsAreKeptToOneLine() {
        let long = BounceClassifier.Recipient(address: "a@example.org", kind: .hard, status: nil, diagnostic: "550 first\r\n   second line " + String(repeating: "x", count: 400))
        let reason = rules.decide(long, softCount: 0, current: .sent, source: "pipe").reason
        #expect(!reason.contains("\n") && !reason.contains("\r") && reason.contains("550 first second line") && reason.count < 300)
    }

    @Test func thePollSchedule() {
        let schedule = PollSchedule(after: .seconds(900), every: .seconds(300), giveUp: .seconds(48 * 3600))
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        // Accepted at t (poll_at = t): due once t <= now - 15 min.
        #expect(schedule.dueBy(t.addingTimeInterval(899)) < t && schedule.dueBy(t.addingTimeInterval(900)) == t)
        // Polled at p: due again at p + 5 min.
        let p = t.addingTimeInterval(1000)
        let next = schedule.next(after: p)
        #expect(schedule.dueBy(p.addingTimeInterval(299)) < next && schedule.dueBy(p.addingTimeInterval(300)) == next)
        #expect(!schedule.givesUp(sentAt: t, now: t.addingTimeInterval(48 * 3600 - 1)) && schedule.givesUp(sentAt: t, now: t.addingTimeInterval(48 * 3600)))
        #expect(schedule.tick == .seconds(15) && PollSchedule(after: .seconds(1), every: .seconds(1), giveUp: .seconds(4)).tick == .milliseconds(500))
    }
}

@Suite struct MessageIDTests {
    @Test func aMessageIDNamesItsDeliveryBack() {
        for id in ["F2026-0042-R2", "a.b", "Facture été/3", "=41", "x"] {
            let messageID = MIME.messageID(reminderID: id, channel: "email", domain: "example.fr")
            let back = MIME.deliveryKey(fromMessageID: "<\(messageID)>")
            #expect(back?.reminderID == id && back?.channel == "email", "\(id) → \(messageID)")
        }
        for text in ["", "<>", "relance.@x", "relance..email@x", "abc@example.fr", "relance.=4.email@x", "relance.=ZZ.email@x", "relance.a b.email@x"] {
            #expect(MIME.deliveryKey(fromMessageID: text) == nil, "\(text)")
        }
    }
}
