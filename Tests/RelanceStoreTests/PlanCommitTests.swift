import Foundation
import GRDB
import RelanceCore
import Synchronization
import Testing

@testable import RelanceStore

private let validator = RecordValidator(rules: RecordRules())
private let rules = PlanRules(ladders: ["default": PlanRules.defaultLadder], minGap: 7, afterPayment: 7, minAmount: ["EUR": 1500])

private func day(_ text: String) -> CivilDate { CivilDate(text)! }
private func noon(_ text: String) -> Date { Timestamp.parse(text + "T12:00:00+01:00")! }

private func feed(_ ledger: Ledger, _ text: String, on date: String) async throws -> ReceivablesImport.Result {
    let v = ReceivableValidator(rules: RecordRules())
    let lines = try text.split(separator: "\n").enumerated().map { i, line in
        switch v.validate(Array(line.utf8)) {
        case .success(let record): return ReceivablesImport.Line(line: i + 1, record: record)
        case .failure(let issues): throw issues
        }
    }
    return try await ledger.importReceivables(lines, source: "test", defaults: .init(), now: noon(date))
}

/// Commits a run as the CLI does: the planner, each reminder as a validated spool record.
private func commit(_ ledger: Ledger, on date: String) async throws -> PlanCommitResult {
    let asOf = noon(date)
    return try await ledger.commitPlan(asOf: asOf, date: day(date), now: asOf) { snapshot, previous in
        PlanRecords.commit(snapshot, previousRun: previous, rules: rules, date: day(date), expiresAt: asOf.addingTimeInterval(7 * 86_400), validator: validator)
    }
}

private func statuses(_ ledger: Ledger) async throws -> [String: String] {
    Dictionary(try await ledger.deliveries().map { ($0.reminderID, $0.status) }, uniquingKeysWith: { a, _ in a })
}

private let base = """
    {"type":"debtor","id":"C-1","name":"Boulangerie Martin","email":"compta@martin.example.fr","kind":"business"}
    {"type":"invoice","number":"F-1","debtor":"C-1","issued_on":"2026-01-01","due_on":"2026-01-31","amount":"500.00","currency":"EUR"}
    {"type":"invoice","number":"F-2","debtor":"C-1","issued_on":"2026-01-01","due_on":"2026-01-31","amount":"200.00","currency":"EUR","instalments":[{"due_on":"2026-01-31","amount":"100.00"},{"due_on":"2026-02-28","amount":"100.00"}]}
    """

@Suite struct PlanCommitTests {
    @Test func aCommittedRunCreatesRemindersOnceAndRecordsItsSteps() async throws {
        let ledger = try temporaryLedger()
        _ = try await feed(ledger, base, on: "2026-01-10")
        let first = try await commit(ledger, on: "2026-02-08")
        #expect(first.created.count == 1, "F-1 and F-2#1 at reminder_1, one reminder")
        let reminderID = try #require(first.created.first)
        #expect(try await statuses(ledger) == [reminderID: "pending"])
        let stored = try #require(try await ledger.pendingDelivery(DeliveryKey(reminderID: reminderID, channel: .email)))
        #expect(stored.reminder.stage == "reminder_1" && stored.reminder.invoices.map(\.number) == ["F-1", "F-2"])
        #expect(stored.reminder.invoices.map(\.amount) == ["500.00", "100.00"], "the instalment's outstanding, not the invoice's amount")
        // The same day again: nothing new (steps taken, min_gap); an earlier day: refused.
        let again = try await commit(ledger, on: "2026-02-08")
        #expect(again.created.isEmpty)
        await #expect(throws: PlanCommitError.self) { _ = try await commit(ledger, on: "2026-02-07") }
        let runs = try await ledger.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM plan_run") }
        #expect(runs == 2, "the refused run left nothing")
        #expect(try await ledger.lastPlanRun() == day("2026-02-08"))
    }

    /// A run that fails halfway (here the second debtor's planning throws, as a kill would stop
    /// it) commits nothing: no run, no reminder, no step.
    @Test func aRunThatFailsHalfwayCommitsNothing() async throws {
        struct Halfway: Error {}
        let ledger = try temporaryLedger()
        _ = try await feed(
            ledger,
            base + "\n" + #"{"type":"debtor","id":"C-2","name":"Garage Dupont","email":"compta@dupont.example.fr","kind":"business"}"# + "\n"
                + #"{"type":"invoice","number":"G-1","debtor":"C-2","issued_on":"2026-01-01","due_on":"2026-01-31","amount":"90.00","currency":"EUR"}"#,
            on: "2026-01-10")
        let seen = Mutex(0)
        await #expect(throws: Halfway.self) {
            _ = try await ledger.commitPlan(asOf: noon("2026-02-08"), date: day("2026-02-08"), now: noon("2026-02-08")) { snapshot, previous in
                if seen.withLock({
                    $0 += 1; return $0
                }) == 2 {
                    throw Halfway()
                }
                return PlanRecords.commit(
                    snapshot, previousRun: previous, rules: rules, date: day("2026-02-08"), expiresAt: noon("2026-02-15"), validator: validator)
            }
        }
        #expect(seen.withLock { $0 } == 2, "the first debtor was planned before the failure")
        let counts = try await ledger.pool.read { db in
            try ["plan_run", "plan_step", "reminder", "delivery"].map { try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \($0)") ?? -1 }
        }
        #expect(counts == [0, 0, 0, 0])
        #expect(try await commit(ledger, on: "2026-02-08").created.count == 2, "the same run, committed whole afterwards")
    }

    @Test func aPaymentStopsTheWaitingReminderAndItsOpenItemsArePlannedAgain() async throws {
        let ledger = try temporaryLedger()
        _ = try await feed(ledger, base, on: "2026-01-10")
        let first = try await commit(ledger, on: "2026-02-08")
        let reminderID = try #require(first.created.first)
        // F-2's first instalment is paid before the reminder went out.
        _ = try await feed(
            ledger, #"{"type":"payment","id":"P-1","debtor":"C-1","amount":"100.00","currency":"EUR","paid_on":"2026-02-09","invoice":"F-2"}"#, on: "2026-02-09"
        )
        #expect(try await statuses(ledger)[reminderID] == "cancelled", "cancelled in the payment's transaction")
        // F-1 gave its step back: the next run plans reminder_1 again, for F-1 alone, with the right
        // amount, once the partial payment's hold (after_payment, 7 days) is over.
        #expect(try await commit(ledger, on: "2026-02-15").created.isEmpty)
        let next = try await commit(ledger, on: "2026-02-16")
        let again = try #require(next.created.first)
        let stored = try #require(try await ledger.pendingDelivery(DeliveryKey(reminderID: again, channel: .email)))
        #expect(stored.reminder.stage == "reminder_1" && stored.reminder.invoices.map(\.number) == ["F-1"])
    }

    @Test func payingOneInstalmentLeavesItsSiblingsRemindersAlone() async throws {
        let ledger = try temporaryLedger()
        _ = try await feed(
            ledger,
            """
            {"type":"debtor","id":"C-2","name":"Garage Dupont","email":"compta@dupont.example.fr","kind":"business"}
            {"type":"invoice","number":"F-9","debtor":"C-2","issued_on":"2026-01-01","due_on":"2026-01-10","amount":"300.00","currency":"EUR","instalments":[{"due_on":"2026-01-10","amount":"100.00"},{"due_on":"2026-02-10","amount":"200.00"}]}
            """, on: "2026-01-05")
        let courtesy = try await commit(ledger, on: "2026-01-08")
        #expect(courtesy.created.count == 1, "pre_due for the first instalment")
        let first = try #require(courtesy.created.first)
        try await ledger.pool.write { db in try db.execute(sql: "UPDATE delivery SET status = 'sent' WHERE reminder_id = ?", arguments: [first]) }
        // A month later: reminder_1 for the first instalment, pre_due for the second, one reminder each.
        let later = try await commit(ledger, on: "2026-02-08")
        #expect(later.created.count == 2)
        let overdue = try #require(later.created.first { $0.contains("reminder_1") })
        let sibling = try #require(later.created.first { $0.contains("pre_due") })
        // The first instalment is paid before they go out.
        _ = try await feed(
            ledger, #"{"type":"payment","id":"P-2","debtor":"C-2","amount":"100.00","currency":"EUR","paid_on":"2026-02-09","invoice":"F-9"}"#, on: "2026-02-09"
        )
        #expect(try await statuses(ledger) == [first: "sent", overdue: "cancelled", sibling: "pending"], "the second instalment's reminder still waits")
    }

    @Test func aSettledInvoiceStopsSpoolRemindersToo() async throws {
        let ledger = try temporaryLedger()
        _ = try await feed(ledger, base, on: "2026-01-10")
        var spool = reminder("SPOOL-1")
        spool.invoices[0].number = "F-1"
        _ = try await ledger.ingest([spool], sourceFile: "f", queue: "default", priority: 0, now: noon("2026-02-01"))
        _ = try await feed(ledger, #"{"type":"credit_note","id":"AV-1","invoice":"F-1","amount":"500.00","issued_on":"2026-02-02"}"#, on: "2026-02-02")
        #expect(try await statuses(ledger)["SPOOL-1"] == "cancelled")
        // Re-importing changes nothing and cancels nothing twice.
        let again = try await feed(ledger, #"{"type":"credit_note","id":"AV-1","invoice":"F-1","amount":"500.00","issued_on":"2026-02-02"}"#, on: "2026-02-02")
        #expect(again.unchanged == 1)
    }

    @Test func aReminderThatExpiredUnsentGivesItsStepBack() async throws {
        let ledger = try temporaryLedger()
        _ = try await feed(ledger, base, on: "2026-01-10")
        let first = try #require(try await commit(ledger, on: "2026-02-08").created.first)
        try await ledger.pool.write { db in try db.execute(sql: "UPDATE delivery SET status = 'expired' WHERE reminder_id = ?", arguments: [first]) }
        let next = try await commit(ledger, on: "2026-02-16")
        let again = try #require(next.created.first)
        #expect(again != first)
        #expect(try #require(try await ledger.pendingDelivery(DeliveryKey(reminderID: again, channel: .email))).reminder.stage == "reminder_1")
        // Sent this time: the next run goes on to reminder_2, once its day and min_gap allow.
        try await ledger.pool.write { db in try db.execute(sql: "UPDATE delivery SET status = 'sent' WHERE reminder_id = ?", arguments: [again]) }
        #expect(try await commit(ledger, on: "2026-02-22").created.isEmpty, "reminder_2 is due on 21 February but min_gap holds until the 23rd")
        let third = try #require(try await commit(ledger, on: "2026-02-23").created.first)
        #expect(try #require(try await ledger.pendingDelivery(DeliveryKey(reminderID: third, channel: .email))).reminder.stage == "reminder_2")
    }
}
