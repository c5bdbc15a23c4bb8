import Foundation
import Testing

@testable import RelanceCore

private func day(_ text: String) -> CivilDate { CivilDate(text)! }

private func eur(_ text: String) -> Int64 { MinorAmount(text, currency: "EUR")!.units }

private func debtor(_ id: String = "C-1", email: String? = "a@example.fr", phone: String? = nil, kind: DebtorKind = .business) -> ReceivableDebtor {
    ReceivableDebtor(
        debtor: Debtor(id: id, name: "Client \(id)", email: email, phone: phone, country: "FR", locale: "fr-FR", timezone: "Europe/Paris", kind: kind))
}

private func invoice(_ number: String, issued: String = "2026-01-01", due: String, amount: String, debtor: String = "C-1", instalments: [(String, String)] = [])
    -> ReceivableInvoice
{
    ReceivableInvoice(
        number: number, debtor: debtor, issuedOn: day(issued), dueOn: day(due), amount: eur(amount), currency: "EUR",
        instalments: instalments.map { Instalment(dueOn: day($0.0), amount: eur($0.1)) })
}

private let rules = PlanRules(ladders: ["default": PlanRules.defaultLadder], minGap: 7, afterPayment: 7, minAmount: ["EUR": 1500])

private func plan(_ snapshot: DebtorSnapshot, _ asOf: String, previousRun: String? = nil) -> (reminders: [PlannedReminder], held: [HeldItem]) {
    Planner.plan(snapshot, rules: rules, asOf: day(asOf), previousRun: previousRun.map(day))
}

private func item(_ invoice: String, _ instalment: Int? = nil) -> ItemID { ItemID(invoice: invoice, instalment: instalment) }

@Suite struct AmountAndTermsTests {
    @Test func minorAmountsAreExact() {
        #expect(MinorAmount("1234.5", currency: "EUR")?.units == 123_450)
        #expect(MinorAmount("0.07", currency: "EUR")?.units == 7)
        #expect(MinorAmount("12", currency: "JPY")?.units == 12)
        #expect(MinorAmount("1.234", currency: "TND")?.units == 1234)
        #expect(MinorAmount("1.234", currency: "EUR") == nil, "more decimals than the currency has")
        for bad in ["", "-1", "1,5", "1.", ".5", "1e3", "１２"] { #expect(MinorAmount(bad, currency: "EUR") == nil, "\(bad)") }
        #expect(MinorAmount("5", currency: "XXX") == nil, "unknown currency")
        #expect(MinorAmount(units: 123_450, currency: "EUR").text == "1234.50")
        #expect(MinorAmount(units: 5, currency: "EUR").text == "0.05")
        #expect(MinorAmount(units: 5, currency: "JPY").text == "5")
    }

    @Test func paymentTermsGiveDueDates() throws {
        let issued = day("2026-01-20")
        #expect(try #require(PaymentTerms("30d")).dueDate(issued: issued) == day("2026-02-19"))
        #expect(try #require(PaymentTerms("45d-eom")).dueDate(issued: issued) == day("2026-03-31"), "45 days: 6 March, then the end of March")
        #expect(try #require(PaymentTerms("eom+45d")).dueDate(issued: issued) == day("2026-03-17"), "31 January, then 45 days")
        #expect(try #require(PaymentTerms("eom+45d")).description == "eom+45d")
        for bad in ["30", "d", "30days", "eom+", "-30d", "45d-eom+1"] { #expect(PaymentTerms(bad) == nil, "\(bad)") }
    }
}

@Suite struct AllocationTests {
    @Test func aPaymentNamingAnInvoiceSettlesItsOldestInstalmentFirst() {
        let inv = invoice(
            "F-1", due: "2026-02-01", amount: "300.00", instalments: [("2026-02-01", "100.00"), ("2026-03-01", "100.00"), ("2026-04-01", "100.00")])
        let standing = DebtorStanding.compute(
            invoices: [inv], movements: [.payment(id: "P-1", amount: eur("150.00"), currency: "EUR", paidOn: day("2026-02-10"), invoice: "F-1")],
            on: day("2026-02-15"))
        #expect(standing.items.map(\.outstanding) == [0, eur("50.00"), eur("100.00")])
        #expect(standing.items[0].settled?.on == day("2026-02-10"))
        #expect(standing.lastPartialPayment == day("2026-02-10"))
    }

    @Test func unallocatedMoneySettlesTheOldestItemsFirstAndWaitsForLaterInvoices() {
        let old = invoice("F-1", due: "2026-02-01", amount: "100.00")
        let young = invoice("F-2", due: "2026-03-01", amount: "100.00")
        let later = invoice("F-3", issued: "2026-04-01", due: "2026-05-01", amount: "80.00")
        let payment = ReceivableMovement.payment(id: "P-1", amount: eur("250.00"), currency: "EUR", paidOn: day("2026-03-10"), invoice: nil)
        let march = DebtorStanding.compute(invoices: [young, old, later], movements: [payment], on: day("2026-03-15"))
        #expect(march.items.map(\.id) == [item("F-1"), item("F-2")], "F-3 is not issued yet")
        #expect(march.items.allSatisfy { $0.outstanding == 0 } && march.credit == ["EUR": eur("50.00")])
        let april = DebtorStanding.compute(invoices: [young, old, later], movements: [payment], on: day("2026-04-15"))
        #expect(april.items.last?.outstanding == eur("30.00"), "the credit left settles the next invoice")
        #expect(april.credit.isEmpty)
    }

    @Test func noArithmeticAcrossCurrencies() {
        let inv = invoice("F-1", due: "2026-02-01", amount: "100.00")
        let standing = DebtorStanding.compute(
            invoices: [inv], movements: [.payment(id: "P-1", amount: 10_000, currency: "USD", paidOn: day("2026-02-02"), invoice: "F-1")],
            on: day("2026-02-03"))
        #expect(standing.items[0].outstanding == eur("100.00"))
        #expect(standing.credit == ["USD": 10_000])
    }

    @Test func creditNotesSettleAndWriteOffsEndAnInvoice() {
        let a = invoice("F-1", due: "2026-02-01", amount: "100.00")
        let b = invoice("F-2", due: "2026-02-01", amount: "100.00")
        let standing = DebtorStanding.compute(
            invoices: [a, b],
            movements: [
                .creditNote(id: "AV-1", invoice: "F-1", amount: eur("100.00"), issuedOn: day("2026-02-05")),
                .writeOff(invoice: "F-2", on: day("2026-02-06")),
                .writeOff(invoice: "F-2", on: day("2026-09-01")),
            ], on: day("2026-03-01"))
        #expect(standing.items.map(\.settled?.by) == [.paid, .writtenOff])
        #expect(standing.items.map(\.outstanding) == [0, 0])
    }

    @Test func movementsAfterTheDateAreInvisible() {
        let inv = invoice("F-1", due: "2026-02-01", amount: "100.00")
        let standing = DebtorStanding.compute(
            invoices: [inv], movements: [.payment(id: "P-1", amount: eur("100.00"), currency: "EUR", paidOn: day("2026-02-20"), invoice: "F-1")],
            on: day("2026-02-19"))
        #expect(standing.items[0].outstanding == eur("100.00"))
    }
}

@Suite struct PlannerTests {
    @Test func theCourtesyStepGoesBeforeTheDueDateAndIsDroppedAfter() {
        let snapshot = DebtorSnapshot(debtor: debtor(), invoices: [invoice("F-1", due: "2026-02-10", amount: "100.00")], movements: [])
        #expect(plan(snapshot, "2026-02-06").held.first?.nextOn == day("2026-02-07"), "pre_due at -3d: not yet")
        let before = plan(snapshot, "2026-02-08")
        #expect(before.reminders.map(\.stage) == ["pre_due"])
        let after = plan(snapshot, "2026-02-10")
        #expect(after.reminders.isEmpty)
        #expect(after.held.map(\.reason) == [.notDue] && after.held[0].nextStage == "reminder_1" && after.held[0].nextOn == day("2026-02-17"))
    }

    @Test func afterAnOutageAnItemMovesOneStepNeverTwo() {
        let snapshot = DebtorSnapshot(debtor: debtor(), invoices: [invoice("F-1", due: "2026-01-01", amount: "100.00")], movements: [])
        // 70 days late, nothing sent: the first step that is not a courtesy, not the hand-off.
        let first = plan(snapshot, "2026-03-12")
        #expect(first.reminders.map(\.stage) == ["reminder_1"])
        var next = snapshot
        next.taken[item("F-1")] = [TakenStep(stage: "reminder_1", on: day("2026-03-12"))]
        #expect(plan(next, "2026-03-18").reminders.isEmpty, "min_gap: 7 days after the contact")
        #expect(plan(next, "2026-03-18").held.first?.nextOn == day("2026-03-19"))
        #expect(plan(next, "2026-03-19").reminders.map(\.stage) == ["reminder_2"])
    }

    @Test func atAContactEveryDueItemAdvancesOneStepGroupedPerStep() {
        let snapshot = DebtorSnapshot(
            debtor: debtor(),
            invoices: [
                invoice("F-1", due: "2026-01-01", amount: "100.00"), invoice("F-2", due: "2026-01-02", amount: "50.00"),
                invoice("F-3", due: "2026-01-03", amount: "70.00"),
            ], movements: [], taken: [item("F-3"): [TakenStep(stage: "reminder_1", on: day("2026-01-10"))]])
        let result = plan(snapshot, "2026-02-01")
        #expect(result.reminders.map(\.stage) == ["reminder_1", "reminder_2"])
        #expect(result.reminders[0].items.map(\.id) == [item("F-1"), item("F-2")])
        #expect(result.reminders[1].items.map(\.id) == [item("F-3")])
        #expect(result.reminders[0].items[0].daysOverdue == 31)
        #expect(result.reminders[0].items[1].outstanding == MinorAmount(units: 5000, currency: "EUR"))
    }

    @Test func aPartialPaymentHoldsTheNextContact() {
        let snapshot = DebtorSnapshot(
            debtor: debtor(), invoices: [invoice("F-1", due: "2026-01-01", amount: "100.00")],
            movements: [.payment(id: "P-1", amount: eur("40.00"), currency: "EUR", paidOn: day("2026-01-28"), invoice: "F-1")])
        let held = plan(snapshot, "2026-02-01")
        #expect(held.reminders.isEmpty && held.held.first?.reason == .notDue && held.held.first?.nextOn == day("2026-02-04"))
        let resumed = plan(snapshot, "2026-02-04")
        #expect(resumed.reminders.first?.items.first?.outstanding.units == eur("60.00"))
    }

    @Test func instalmentsAreChasedAndSettledPerItem() {
        let inv = invoice("F-1", due: "2026-01-01", amount: "200.00", instalments: [("2026-01-01", "100.00"), ("2026-02-01", "100.00")])
        let snapshot = DebtorSnapshot(
            debtor: debtor(), invoices: [inv],
            movements: [.payment(id: "P-1", amount: eur("100.00"), currency: "EUR", paidOn: day("2026-01-05"), invoice: "F-1")],
            taken: [item("F-1", 1): [TakenStep(stage: "pre_due", on: day("2025-12-29"))]])
        let result = plan(snapshot, "2026-02-08", previousRun: "2026-01-01")
        #expect(result.reminders.map(\.stage) == ["reminder_1"])
        #expect(result.reminders[0].items.map(\.id) == [item("F-1", 2)], "the second instalment, its courtesy dropped")
        #expect(result.held.contains { $0.item == item("F-1", 1) && $0.reason == .paid }, "the paid instalment stopped its chase")
    }

    @Test func disputesPromisesAndHoldsHoldThroughTheirLastDay() {
        let base = [invoice("F-1", due: "2026-01-01", amount: "100.00"), invoice("F-2", due: "2026-01-01", amount: "100.00")]
        let snapshot = DebtorSnapshot(
            debtor: debtor(), invoices: base,
            movements: [
                .dispute(id: "D-1", invoice: "F-1", openedOn: day("2026-01-05"), closedOn: day("2026-02-10"), reason: "quantity"),
                .promise(id: "PR-1", scope: .invoice("F-2"), amount: nil, until: day("2026-02-12"), madeOn: day("2026-01-06")),
            ])
        let during = plan(snapshot, "2026-02-10")
        #expect(during.reminders.isEmpty)
        #expect(Set(during.held.map(\.reason)) == [.disputed, .promised])
        #expect(during.held.first { $0.reason == .disputed }?.until == day("2026-02-10"))
        let afterDispute = plan(snapshot, "2026-02-11")
        #expect(afterDispute.reminders.first?.items.map(\.id) == [item("F-1")])
        let brokenPromise = plan(snapshot, "2026-02-13")
        #expect(brokenPromise.reminders.first?.items.map(\.id) == [item("F-1"), item("F-2")], "a broken promise resumes")

        let held = DebtorSnapshot(
            debtor: debtor(), invoices: base, movements: [.hold(id: "H-1", scope: .debtor, until: nil, reason: "bankruptcy", from: nil)])
        #expect(plan(held, "2026-06-01").held.map(\.reason) == [.onHold, .onHold])
    }

    @Test func smallBalancesAreNotChased() {
        let snapshot = DebtorSnapshot(debtor: debtor(), invoices: [invoice("F-1", due: "2026-01-01", amount: "14.99")], movements: [])
        #expect(plan(snapshot, "2026-02-01").held.map(\.reason) == [.belowMinimum])
    }

    @Test func channelsFallBackToWhatTheDebtorCanReceive() {
        let invoices = [invoice("F-1", due: "2026-01-01", amount: "100.00")]
        let taken: [ItemID: [TakenStep]] = [item("F-1"): [TakenStep(stage: "reminder_1", on: day("2026-01-08"))]]
        // reminder_2 goes on email and SMS; a landline takes no SMS.
        let landline = DebtorSnapshot(debtor: debtor(phone: "+33144556677"), invoices: invoices, movements: [], taken: taken)
        #expect(plan(landline, "2026-01-22").reminders.first?.channels == [.email])
        let mobile = DebtorSnapshot(debtor: debtor(phone: "+33612345678"), invoices: invoices, movements: [], taken: taken)
        #expect(plan(mobile, "2026-01-22").reminders.first?.channels == [.email, .sms])
        // reminder_1 is email only: a debtor with only a mobile gets it by SMS.
        let smsOnly = DebtorSnapshot(debtor: debtor(email: nil, phone: "+33612345678"), invoices: invoices, movements: [])
        #expect(plan(smsOnly, "2026-01-10").reminders.first?.channels == [.sms])
        let nobody = DebtorSnapshot(debtor: debtor(email: nil), invoices: invoices, movements: [])
        let none = plan(nobody, "2026-01-10")
        #expect(none.reminders.isEmpty && none.held.map(\.reason) == [.noContact])
    }

    @Test func theHandOffSendsNothingAndEndsTheChase() {
        let steps = ["pre_due", "reminder_1", "reminder_2", "final_notice"].enumerated().map {
            TakenStep(stage: $0.element, on: day("2026-01-0\($0.offset + 1)"))
        }
        let snapshot = DebtorSnapshot(
            debtor: debtor(), invoices: [invoice("F-1", due: "2026-01-01", amount: "100.00")], movements: [], taken: [item("F-1"): steps])
        let handoff = plan(snapshot, "2026-03-02")
        #expect(handoff.reminders.map(\.stage) == ["handoff"] && handoff.reminders[0].action == .handoff && handoff.reminders[0].channels.isEmpty)
        var after = snapshot
        after.taken[item("F-1")]?.append(TakenStep(stage: "handoff", on: day("2026-03-02")))
        #expect(plan(after, "2026-06-01").held.map(\.reason) == [.handedOff])
    }

    @Test func settledItemsAreListedOnceWhenTheyStopAChase() {
        let snapshot = DebtorSnapshot(
            debtor: debtor(), invoices: [invoice("F-1", due: "2026-01-01", amount: "100.00"), invoice("F-2", due: "2026-01-01", amount: "100.00")],
            movements: [
                .payment(id: "P-1", amount: eur("100.00"), currency: "EUR", paidOn: day("2026-01-20"), invoice: "F-1"),
                .writeOff(invoice: "F-2", on: day("2026-01-20")),
            ], taken: [item("F-1"): [TakenStep(stage: "reminder_1", on: day("2026-01-08"))]])
        #expect(plan(snapshot, "2026-01-21", previousRun: "2026-01-15").held.map(\.reason) == [.paid], "F-2 was never chased")
        #expect(plan(snapshot, "2026-01-22", previousRun: "2026-01-21").held.isEmpty, "already reported")
    }

    @Test func reminderIDsDeriveFromDebtorStageDateAndItems() {
        let a = Planner.reminderID(debtor: "C-1", stage: "reminder_1", on: day("2026-02-01"), items: [item("F-1"), item("F-2")])
        #expect(a == Planner.reminderID(debtor: "C-1", stage: "reminder_1", on: day("2026-02-01"), items: [item("F-2"), item("F-1")]))
        #expect(a.hasPrefix("plan-C-1-reminder_1-20260201-"))
        #expect(a != Planner.reminderID(debtor: "C-1", stage: "reminder_1", on: day("2026-02-01"), items: [item("F-1")]))
        let long = Planner.reminderID(debtor: String(repeating: "x", count: 200), stage: "reminder_1", on: day("2026-02-01"), items: [item("F-1")])
        #expect(long.utf8.count <= 128)
    }

    @Test func laddersAreValidated() {
        #expect(Ladder.problem(PlanRules.defaultLadder.steps) == nil)
        #expect(Ladder.problem([]) != nil)
        #expect(Ladder.problem([LadderStep(stage: "a", at: 7, channels: [.email]), LadderStep(stage: "b", at: 7, channels: [.email])]) != nil)
        #expect(Ladder.problem([LadderStep(stage: "h", at: 7, action: .handoff), LadderStep(stage: "b", at: 9, channels: [.email])]) != nil)
        #expect(Ladder.problem([LadderStep(stage: "a", at: 7)]) != nil, "a sending step needs a channel")
    }
}

@Suite struct ScheduleTests {
    @Test func aServiceWaitsUntilTheNextRunAtMostAMinute() throws {
        let paris = TimeZone(identifier: "Europe/Paris")!
        let at = Timestamp.parse("2026-11-30T07:29:30+01:00")!
        #expect(try #require(Schedule("daily 07:30")).wait(from: at, in: paris) == .milliseconds(30_010))
        #expect(try #require(Schedule("daily 09:00")).wait(from: at, in: paris) == .seconds(60), "a reload is looked at within a minute")
        #expect(Schedule.off.wait(from: at, in: paris) == .seconds(60))
    }

    @Test func schedulesParseAndGiveTheNextRun() throws {
        let paris = TimeZone(identifier: "Europe/Paris")!
        func next(_ spec: String, after: String) throws -> String? {
            try #require(Schedule(spec)).next(after: Timestamp.parse(after)!, in: paris).map { Timestamp.format($0, in: paris) }
        }
        #expect(try next("daily 07:30", after: "2026-11-30T07:29:00+01:00") == "2026-11-30T07:30:00+01:00")
        #expect(try next("07:30", after: "2026-11-30T07:30:00+01:00") == "2026-12-01T07:30:00+01:00", "strictly after")
        #expect(try next("weekly mon 07:00", after: "2026-11-30T08:00:00+01:00") == "2026-12-07T07:00:00+01:00")
        #expect(try next("weekly sun 07:00", after: "2026-11-30T08:00:00+01:00") == "2026-12-06T07:00:00+01:00")
        #expect(try next("weekly", after: "2026-11-30T08:00:00+01:00") == "2026-12-06T03:00:00+01:00", "weekly alone: Sunday 03:00")
        #expect(try next("every 1h", after: "2026-11-30T08:10:00+01:00") == "2026-11-30T09:10:00+01:00")
        #expect(try next("every 30m", after: "2026-11-30T08:10:00+01:00") == "2026-11-30T08:40:00+01:00")
        // 29 March 2026: 02:30 does not exist in Paris; the run is at the first instant after the gap.
        #expect(try next("daily 02:30", after: "2026-03-29T01:00:00+01:00") == "2026-03-29T03:00:00+02:00")
        #expect(try #require(Schedule("off")).next(after: Date(), in: paris) == nil)
        func previous(_ spec: String, _ at: String) throws -> String? {
            try #require(Schedule(spec)).previous(atOrBefore: Timestamp.parse(at)!, in: paris).map { Timestamp.format($0, in: paris) }
        }
        #expect(try previous("daily 07:30", "2026-11-30T07:29:00+01:00") == "2026-11-29T07:30:00+01:00")
        #expect(try previous("daily 07:30", "2026-11-30T07:30:00+01:00") == "2026-11-30T07:30:00+01:00", "at or before")
        #expect(try previous("weekly mon 07:00", "2026-11-30T06:00:00+01:00") == "2026-11-23T07:00:00+01:00")
        #expect(try previous("every 1h", "2026-11-30T06:00:00+01:00") == "2026-11-30T05:00:00+01:00")
        for text in ["off", "daily 07:30", "weekly fri 18:00", "every 2h", "every 15m"] { #expect(Schedule(text)?.description == text) }
        for bad in ["", "daily", "daily 7:30", "25:00", "weekly 07:00", "weekly mon", "every", "every 0h", "every 1d", "hourly", "daily 07:30 utc"] {
            #expect(Schedule(bad) == nil, "\(bad)")
        }
    }
}
